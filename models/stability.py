"""What a change of model changes for people: champion against challenger on the same citizens.

Figures (all at each model's default horizon, which like-for-like promotion makes the same):
share of citizens whose readiness band changes, up and down; overlap of the lowest-decile and
highest-decile sets; mean absolute change in percentage points; the same per jobcentre, gender,
age band and origin; and the share whose top reason (the group with the largest |contribution|)
changes. Risk scores of equal accuracy can flag different people: this says how many.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import add_group_columns
from models.scoring import ScoringModel, sigmoid

GROUP_COLUMNS = ["jobcenter", "gender", "age_band", "origin"]
BAND_NAMES = ["low", "middle", "high"]


def band(probability: np.ndarray, edges) -> np.ndarray:
    """0 low, 1 middle, 2 high: a probability below edges[0], below edges[1], or above."""
    return np.searchsorted(np.asarray(edges, dtype=float), probability, side="right")


def decile_overlap(before: np.ndarray, after: np.ndarray, highest: bool) -> float:
    """Share of the citizens in the lowest (or highest) tenth by `before` who are there by `after`."""
    size = max(1, int(round(len(before) / 10)))
    order = -1 if highest else 1
    first = set(np.argsort(order * before, kind="stable")[:size])
    second = set(np.argsort(order * after, kind="stable")[:size])
    return len(first & second) / size


def _figures(p0, p1, b0, b1, reason0, reason1) -> dict[str, float]:
    return {"n": float(len(p0)),
            "band_changed": float(np.mean(b0 != b1)) if len(p0) else 0.0,
            "band_up": float(np.mean(b1 > b0)) if len(p0) else 0.0,
            "band_down": float(np.mean(b1 < b0)) if len(p0) else 0.0,
            "mean_abs_change_pp": float(100 * np.mean(np.abs(p1 - p0))) if len(p0) else 0.0,
            "top_reason_changed": float(np.mean(reason0 != reason1)) if len(p0) else 0.0}


def stability_report(champion: ScoringModel, challenger: ScoringModel, requests: pd.DataFrame,
                     tables: dict[str, pd.DataFrame], band_edges) -> dict:
    """Champion vs challenger on the same occasions (`requests`: person_id, as_of; typically each
    citizen's latest measurement). Returns the figures overall and per group, and the band moves
    as a from -> to table."""
    parts = {}
    for name, model in (("champion", champion), ("challenger", challenger)):
        features = model.features(requests, tables)
        contributions, base = model.explain(features.to_numpy())
        top = np.asarray(model.groups)[np.argmax(np.abs(contributions), axis=1)]
        parts[name] = (sigmoid(model.explained_log_odds(contributions, base)), top)
    p0, reason0 = parts["champion"]
    p1, reason1 = parts["challenger"]
    b0, b1 = band(p0, band_edges), band(p1, band_edges)
    report = {"horizon_months": challenger.horizon_months, "band_edges": list(band_edges),
              **_figures(p0, p1, b0, b1, reason0, reason1),
              "lowest_decile_overlap": decile_overlap(p0, p1, highest=False),
              "highest_decile_overlap": decile_overlap(p0, p1, highest=True),
              "band_moves": {f"{BAND_NAMES[i]}->{BAND_NAMES[j]}": int(((b0 == i) & (b1 == j)).sum())
                             for i in range(3) for j in range(3) if i != j}}
    people = add_group_columns(requests[["person_id", "as_of"]].reset_index(drop=True), tables["persons"])
    report["groups"] = {}
    for column in GROUP_COLUMNS:
        values = people[column].astype(str).to_numpy()
        report["groups"][column] = {str(v): _figures(p0[values == v], p1[values == v], b0[values == v],
                                                     b1[values == v], reason0[values == v], reason1[values == v])
                                    for v in sorted(set(values))}
    return report


def format_stability(report: dict) -> str:
    """The report as text for the terminal."""
    edges = report["band_edges"]
    lines = [f"stability on {int(report['n'])} citizens at {report['horizon_months']} months "
             f"(bands: low < {edges[0]:.0%} <= middle < {edges[1]:.0%} <= high):",
             f"  band changed {report['band_changed']:.1%} (up {report['band_up']:.1%}, down {report['band_down']:.1%}); "
             + ", ".join(f"{k} {v}" for k, v in report["band_moves"].items() if v),
             f"  lowest decile overlap {report['lowest_decile_overlap']:.1%}, highest decile overlap "
             f"{report['highest_decile_overlap']:.1%}",
             f"  mean absolute change {report['mean_abs_change_pp']:.2f} pp; top reason changed for "
             f"{report['top_reason_changed']:.1%}",
             f"  {'group':28s} {'n':>6s} {'changed':>8s} {'up':>7s} {'down':>7s} {'mean |pp|':>9s} {'reason':>7s}"]
    for column, values in report["groups"].items():
        for value, f in values.items():
            lines.append(f"  {column + '=' + value:28s} {int(f['n']):6d} {f['band_changed']:8.1%} {f['band_up']:7.1%} "
                         f"{f['band_down']:7.1%} {f['mean_abs_change_pp']:9.2f} {f['top_reason_changed']:7.1%}")
    return "\n".join(lines)


def flat_stability(report: dict) -> dict[str, float]:
    """MLflow metric names: stability_{figure} and stability_{column}_{value}_{figure}."""
    out = {f"stability_{k}": float(report[k]) for k in ("n", "band_changed", "band_up", "band_down",
                                                         "mean_abs_change_pp", "top_reason_changed",
                                                         "lowest_decile_overlap", "highest_decile_overlap")}
    for column, values in report["groups"].items():
        for value, figures in values.items():
            safe = "".join(c if c.isalnum() or c in "_-." else "_" for c in value)
            for name in ("band_changed", "mean_abs_change_pp"):
                out[f"stability_{column}_{safe}_{name}"] = figures[name]
    return out
