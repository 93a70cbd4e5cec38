"""The monitoring report: one self-contained HTML file (figures embedded) and the figures as PNG."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

COLOURS = {"ok": "tab:green", "watch": "tab:orange", "act": "tab:red", "insufficient_data": "tab:grey"}


def performance_figure(by_cohort: pd.DataFrame, path: Path) -> Path:
    """Estimated (from scores alone) against realized (from outcomes) ROC AUC and positive
    rate per cohort, with 95% bands."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    x = pd.to_datetime(by_cohort["cohort_start"])
    for ax, metric, title in ((axes[0], "roc_auc", "ROC AUC"), (axes[1], "positive_rate", "job or education rate")):
        ax.plot(x, by_cohort[f"estimated_{metric}"], "-", color="tab:blue", label="estimated, all occasions")
        ax.fill_between(x, by_cohort[f"estimated_{metric}_low"], by_cohort[f"estimated_{metric}_high"],
                        color="tab:blue", alpha=0.15, label="estimate's 95% band")
        if f"realized_{metric}" in by_cohort:
            ax.plot(x, by_cohort.get(f"estimated_{metric}_labelled"), "--", color="tab:blue", lw=1,
                    label="estimated, labelled occasions")
            ax.plot(x, by_cohort[f"realized_{metric}"], "o-", color="tab:red", ms=3, label="realized (outcomes)")
        ax.set_title(f"{title} by cohort month")
        ax.set_xlabel("month of the measurement occasion")
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def drift_figure(drift: dict, path: Path) -> Path:
    """PSI per indicator (its worst aspect) and for the score, coloured by status, with the
    watch and act thresholds."""
    items = sorted(drift["indicators"].items(), key=lambda kv: kv[1]["psi"])
    items.append(("score", drift["score"]))
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(items) + 1.2))
    ax.barh([k for k, _ in items], [v["psi"] for _, v in items], color=[COLOURS[v["status"]] for _, v in items])
    t = drift["thresholds"]
    ax.axvline(t["psi_watch"], color="tab:orange", ls="--", lw=1, label=f"watch (PSI {t['psi_watch']})")
    ax.axvline(t["psi_act"], color="tab:red", ls="--", lw=1, label=f"act (PSI {t['psi_act']})")
    ax.set_xlabel(f"PSI against the training profile (flagged only when also p < {t['p_value']})")
    ax.set_title("Drift per indicator (its worst aspect)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def score_figure(drift: dict, path: Path) -> Path:
    """Share of scores per training decile bin: training profile against this cohort."""
    score = drift["score"]
    bins = np.arange(len(score["categories"]))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(bins - 0.2, score["reference_shares"], width=0.4, label="training profile")
    ax.bar(bins + 0.2, score["current_shares"], width=0.4, label="this cohort")
    ax.axhline(0.1, color="k", lw=0.6)
    ax.set_xticks(bins, [f"D{i + 1}" for i in bins])
    ax.set_xlabel("score bin (deciles of the training scores)")
    ax.set_ylabel("share")
    ax.set_title(f"Score distribution, PSI {score['psi']:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def write_report(summary: dict, by_cohort: pd.DataFrame, out: Path) -> list[Path]:
    """report.html plus performance.png, drift.png, scores.png in `out`; returns the files."""
    files = [performance_figure(by_cohort, out / "performance.png")]
    sections = []
    model = summary["model"]
    e, r = summary["estimated"], summary.get("realized") or {}
    el = summary.get("estimated_labelled") or {}
    sections.append(f"""<h2>Performance: estimated without outcomes, realized with them</h2>
<table><tr><th></th><th>occasions</th><th>ROC AUC</th><th>positive rate</th><th>Brier</th></tr>
<tr><td>estimated, all occasions</td><td>{e['n']}</td><td>{_fmt(e['roc_auc'])} ({_fmt(e['roc_auc_low'])}–{_fmt(e['roc_auc_high'])})</td>
<td>{_fmt(e['positive_rate'], 4)}</td><td>{_fmt(e['brier'], 4)}</td></tr>
<tr><td>estimated, labelled occasions</td><td>{el.get('n', 0)}</td><td>{_fmt(el.get('roc_auc'))}</td>
<td>{_fmt(el.get('positive_rate'), 4)} ({_fmt(el.get('positive_rate_low'), 4)}–{_fmt(el.get('positive_rate_high'), 4)})</td>
<td>{_fmt(el.get('brier'), 4)}</td></tr>
<tr><td>realized</td><td>{r.get('n', 0)}</td><td>{_fmt(r.get('roc_auc'))} ({_fmt(r.get('roc_auc_low'))}–{_fmt(r.get('roc_auc_high'))})</td>
<td>{_fmt(r.get('positive_rate'), 4)}</td><td>{_fmt(r.get('brier'), 4)}</td></tr></table>
<p>The estimate assumes the model is still calibrated on this population; it follows a change in
who is scored, not a change in how readiness turns into jobs. A realized rate outside the
estimate's band means calibration has moved: retrain or recalibrate.</p>
{_img(files[0], 'estimated and realized ROC AUC and positive rate by cohort month')}""")
    drift = summary.get("drift")
    if drift:
        files += [drift_figure(drift, out / "drift.png"), score_figure(drift, out / "scores.png")]
        t = drift["thresholds"]
        rows = "".join(
            f"<tr class='{v['status']}'><td>{html.escape(k)}</td><td>{v['status']}</td><td>{_fmt(v['psi'])}</td>"
            f"<td>{v['p_value']:.2g}</td><td>{html.escape(v['worst_aspect'])}</td></tr>"
            for k, v in sorted(drift["indicators"].items(), key=lambda kv: -kv[1]["psi"]))
        s = drift["score"]
        sections.append(f"""<h2>Drift against the training profile</h2>
<p>{drift['n']} occasions. Status per indicator (worst of its ratings and changes, caseworker and
citizen): <b>watch</b> from PSI {t['psi_watch']}, <b>act</b> from PSI {t['psi_act']}, and only when a
chi-square test also gives p &lt; {t['p_value']}. Score: PSI {_fmt(s['psi'])}, p {s['p_value']:.2g},
status <b>{s['status']}</b>. Overall: <b>{drift['overall']}</b>.</p>
<div class="row">{_img(files[1], 'PSI per indicator')}{_img(files[2], 'score distribution')}</div>
<table><tr><th>indicator</th><th>status</th><th>PSI</th><th>p-value</th><th>worst aspect</th></tr>{rows}</table>""")
    else:
        sections.append("<h2>Drift</h2><p>The model's run has no reference profile (trained before profiles "
                        "were logged): retrain to get drift.</p>")
    cohort_rows = "".join(
        f"<tr><td>{c['cohort']}</td><td>{c['n']}</td><td>{c['n_labelled']}</td><td>{_fmt(c.get('estimated_roc_auc'))}</td>"
        f"<td>{_fmt(c.get('realized_roc_auc'))}</td><td>{_fmt(c.get('estimated_positive_rate'), 4)}</td>"
        f"<td>{_fmt(c.get('realized_positive_rate'), 4)}</td></tr>" for c in summary["cohorts"])
    sections.append(f"""<h2>By cohort month</h2><table><tr><th>cohort</th><th>occasions</th><th>labelled</th>
<th>est. ROC AUC</th><th>realized ROC AUC</th><th>est. rate</th><th>realized rate</th></tr>{cohort_rows}</table>""")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>bip-score monitoring: {html.escape(str(model['name']))} version {html.escape(str(model['version']))}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1250px;margin:1.5em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:.8em 0}}td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
td:first-child,th:first-child{{text-align:left}}tr.watch td{{background:#fff3d6}}tr.act td{{background:#fde0dc}}
img{{max-width:100%}}.row{{display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap}}.row img{{max-width:49%}}</style>
</head><body><h1>Monitoring report</h1>
<p>Model <b>{html.escape(str(model['name']))}</b> version <b>{html.escape(str(model['version']))}</b>
(trained {html.escape(str(model.get('trained_at')))}), data <code>{html.escape(summary['data'])}</code>,
{summary['n_occasions']} occasions ({summary['n_labelled']} with outcomes over the horizon), made {summary['created_at']}.</p>
{''.join(sections)}</body></html>"""
    report = out / "report.html"
    report.write_text(page, encoding="utf-8")
    return files + [report]
