"""Promotion that compares like with like, and says what changes for people.

A challenger replaces the champion only when both answer the same question (horizon set, default
horizon, indicator schema: `models.store.unlike`); `bip train --promote-if-better` then compares
them on the same out-of-time occasions per horizon. Before the alias moves, the stability report
(models/stability.py) is computed on each citizen's latest measurement; more band changes than
`stability_max_band_change` need a stated reason. `bip promote` can override both checks with
--force (or the gate with --reason); every promotion is logged as an MLflow run with its report.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from bip.config import get_settings
from features.build import latest_occasions
from models import store
from models.scoring import ScoringModel
from models.stability import flat_stability, format_stability, stability_report


@dataclass
class Promotion:
    """What a promotion attempt did and why."""

    version: str
    before: str | None
    promoted: bool = False
    refused: str | None = None          # why the alias did not move
    unlike: list[str] = field(default_factory=list)
    comparison: dict | None = None      # horizon -> {champion, challenger} log loss, same occasions
    stability: dict | None = None
    forced: bool = False
    reason: str | None = None

    def describe(self) -> str:
        lines = []
        if self.comparison:
            lines.append("out-of-time log loss on the same occasions (champion -> challenger): " + ", ".join(
                f"{h}m {c['champion']:.4f} -> {c['challenger']:.4f}" for h, c in self.comparison.items()))
        if self.stability:
            lines.append(format_stability(self.stability))
        if self.promoted:
            lines.append(f"champion: version {self.before} -> {self.version}"
                         + (" (forced: " + "; ".join(self.unlike) + ")" if self.forced and self.unlike else "")
                         + (f" (reason: {self.reason})" if self.reason else ""))
        else:
            lines.append(f"champion unchanged (version {self.before}): {self.refused}")
        return "\n".join(lines)


def citizens_now(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The occasions the stability report uses: each citizen's latest measurement."""
    return latest_occasions(tables["measurements"])


def promote_version(version: str, tables: dict[str, pd.DataFrame] | None, *, force: bool = False,
                    reason: str | None = None, challenger: ScoringModel | None = None,
                    comparison_rows: tuple | None = None) -> Promotion:
    """Check and move the champion alias to `version`.

    With `comparison_rows` = (requests, labels, observed) (as `bip train --promote-if-better`
    passes its out-of-time test occasions) the challenger must also beat the champion: lower log
    loss at the default horizon and no horizon worse by more than `promotion_tolerance`; that
    path never forces. `tables` are the citizens for the stability report (None: no report, only
    with force)."""
    settings = get_settings()
    before = store.champion_version()
    result = Promotion(str(version), before, forced=force, reason=reason)
    if before is None or before == str(version):
        store.promote(version)
        result.promoted = True
        return result
    champion = store.load_scoring_model(store.version_uri(before))
    challenger = challenger or store.load_scoring_model(store.version_uri(version))
    result.unlike = store.unlike(champion, challenger)
    if result.unlike and not force:
        result.refused = ("not like for like: " + "; ".join(result.unlike)
                          + (". Promote it with `bip promote " + str(version) + " --force` (logged) if that is meant"
                             if comparison_rows is None else ""))
        return result
    if comparison_rows is not None and not result.unlike:
        requests, labels, observed = comparison_rows
        result.comparison = store.compare(champion, challenger, requests, tables, labels, observed)
        default = result.comparison[challenger.horizon_months]
        worse = [h for h, c in result.comparison.items()
                 if c["challenger"] > c["champion"] * (1 + settings.promotion_tolerance)]
        if default["challenger"] >= default["champion"] or worse:
            result.refused = (f"the challenger is not better: {challenger.horizon_months}-month log loss "
                              f"{default['challenger']:.4f} against the champion's {default['champion']:.4f}"
                              + (f"; worse at {', '.join(f'{h}m' for h in worse)}" if worse else ""))
            return result
    if tables is not None:
        result.stability = stability_report(champion, challenger, citizens_now(tables), tables, settings.band_edges)
        changed, limit = result.stability["band_changed"], settings.stability_max_band_change
        if changed > limit and not (reason or force):
            result.refused = (f"{changed:.1%} of citizens would change band (limit {limit:.0%}, "
                              f"BIP_STABILITY_MAX_BAND_CHANGE); state why with `bip promote {version} --reason TEXT`")
            return result
    elif not force:
        result.refused = "no data for the stability report (give --data, or --force)"
        return result
    store.promote(version)
    result.promoted = True
    log_promotion(result)
    return result


def log_promotion(result: Promotion) -> None:
    """One MLflow run per promotion (report, forced, reason) and tags on the new champion."""
    store.configure_tracking()
    experiment = store.ensure_experiment()
    tags = {"bip.role": "promotion", "bip.promoted_version": result.version, "bip.previous_version": str(result.before),
            "bip.forced": str(result.forced), "bip.reason": result.reason or "", "bip.unlike": "; ".join(result.unlike)}
    with mlflow.start_run(experiment_id=experiment, run_name=f"promote v{result.version} over v{result.before}",
                          tags=tags, nested=mlflow.active_run() is not None):
        if result.stability:
            mlflow.log_metrics(flat_stability(result.stability))
        if result.comparison:
            mlflow.log_metrics({f"h{h}m_{name}_log_loss": v for h, c in result.comparison.items() for name, v in c.items()})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "promotion.json"
            path.write_text(json.dumps({**result.__dict__}, indent=2, default=str))
            mlflow.log_artifact(str(path))
    version_tags = {"promoted_over": str(result.before), "promotion_forced": str(result.forced)}
    if result.reason:
        version_tags["promotion_reason"] = result.reason
    if result.stability:
        version_tags["stability_band_changed"] = f"{result.stability['band_changed']:.4f}"
    store.set_version_tags(result.version, version_tags)
