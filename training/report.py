"""Artifacts logged with every model: calibration plot, contributions by indicator, model card."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from features.schema import IndicatorSchema  # noqa: E402


def calibration_plot(y, p, oracle, path: Path, title: str) -> Path:
    """Observed rate against mean predicted probability in deciles of the prediction."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, prob in (("model", p), ("oracle (true probability)", oracle)):
        if prob is None:
            continue
        order = np.argsort(prob)
        bins = np.array_split(order, 10)
        ax.plot([prob[b].mean() for b in bins], [np.mean(y[b]) for b in bins], "o-", label=name)
    top = max(0.05, float(np.max(p)) if len(p) else 0.05)
    ax.plot([0, top], [0, top], "k--", lw=1, label="perfect calibration")
    ax.set_xlabel("mean predicted probability (decile)")
    ax.set_ylabel("observed rate")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def contribution_plot(mean_abs: dict[str, float], schema: IndicatorSchema, path: Path) -> Path:
    """Mean |contribution| (log-odds) per indicator and other input group."""
    items = sorted(mean_abs.items(), key=lambda kv: kv[1])
    labels = [f"{schema[g].label_en}" if g in schema else g.replace("_", " ") for g, _ in items]
    colours = ["tab:blue" if g in schema else "tab:grey" for g, _ in items]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(items) + 1))
    ax.barh(labels, [v for _, v in items], color=colours)
    ax.set_xlabel("mean |contribution| to the log-odds (out-of-time test)")
    ax.set_title("What drives the score (blue: indicators)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _row(name: str, m: dict) -> str:
    return (f"| {name} | {int(m['n'])} | {int(m['positives'])} | {m['roc_auc']:.3f} | {m['brier']:.4f} | "
            f"{m['log_loss']:.4f} | {m['ece']:.4f} | {m['calibration_slope']:.2f} | {m['calibration_intercept']:.2f} |")


def model_card(kind: str, params: dict, evaluation: dict, context: dict, schema: IndicatorSchema) -> str:
    header = ("| data | n | positives | ROC AUC | Brier | log loss | ECE | cal. slope | cal. intercept |\n"
              "|---|---|---|---|---|---|---|---|---|")
    rows = []
    for horizon, part in evaluation["horizons"].items():
        rows += [_row(f"{horizon} m, validation (out-of-fold)", part["validation"]),
                 _row(f"{horizon} m, out-of-time test", part["test"])]
        if "oracle_test" in part:
            rows.append(_row(f"{horizon} m, oracle, out-of-time test", part["oracle_test"]))
    groups = []
    for column, values in evaluation["test_groups"].items():
        groups.append(f"\n**By {column}** (out-of-time test, {context['horizon']} months)\n\n{header}")
        groups += [_row(value, m) for value, m in values.items()]
    ranking = sorted(evaluation["mean_abs_contribution"].items(), key=lambda kv: -kv[1])
    drivers = ", ".join(f"{schema[g].label_en if g in schema else g} ({v:.3f})" for g, v in ranking[:10])
    return f"""# Model card: bip-employment ({kind})

## Intended use
Probabilities that a citizen in the BIP target group (activity-ready cash-benefit recipients) is in
ordinary job or education within {', '.join(str(h) for h in context['horizons'])} months of a progression
measurement (the readiness curve; `probability` is the {context['horizon']}-month one). It
supports, and never replaces, a caseworker's judgement and an evaluator's analysis. Not for
sanctions, eligibility decisions or ranking citizens against each other.

## Data
- Source folder: `{context['data']}` (fingerprint `{context['fingerprint']}`), schema `{schema.name}`.
- Each horizon trains and tests on the measurement occasions where that horizon is observed in the register.
- Training: occasions before {context['test_from']}, 5-fold cross-validation grouped by person.
- Out-of-time test: occasions from {context['test_from']} on.
- Git commit: `{context['git_commit']}`.

## Model
- Kind: {kind}; parameters: {params}.
- One head per horizon, each Platt-calibrated on its out-of-fold margins (keeps explanations exact).
- The curve is the cumulative maximum of the heads' log-odds, so it never decreases; where a shorter
  head binds, that head's exact explanation is the horizon's. Share of test occasions where a
  shorter head binds: {', '.join(f"{k[len('held_share_'):]} {v:.1%}" for k, v in evaluation['curve'].items() if k.startswith('held_share_'))}.

## Metrics
{header}
{chr(10).join(rows)}
{chr(10).join(groups)}

## What drives the score
Mean |contribution| to the log-odds on the test set: {drivers}.

## Limits
- Trained on a synthetic cohort unless the data folder says otherwise; figures on real BIP data
  will differ.
- The score describes who is likely to find work under current practice; it says nothing about
  which intervention would help (see the evaluation module).
- Small groups have wide error bars: read group metrics with their n.
- Caseworker belief is the strongest input and is itself a judgement; a score moves when the
  caseworker does.
- The score cannot see how lenient a caseworker rates. In the simulator's realistic regime
  (docs/realistic-regime.md) the citizens of the most lenient fifth of raters are over-predicted:
  worst ECE by leniency fifth 0.016-0.019 at 12 months and 0.035-0.039 at 24 months, against 0.016-0.028
  for the truth itself (4,000 persons).
"""
