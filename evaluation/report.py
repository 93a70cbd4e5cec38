"""report.html: a self-contained page (plots inlined as PNG) an evaluator can hand on."""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def overlap_plot(propensity, treated) -> str:
    e, t = np.asarray(propensity), np.asarray(treated)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(0, 1, 41)
    ax.hist(e[t == 0], bins=bins, alpha=0.6, density=True, label="comparison")
    ax.hist(e[t == 1], bins=bins, alpha=0.6, density=True, label="treated")
    ax.set_xlabel("propensity to be treated")
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title("Overlap")
    return _png(fig)


def balance_plot(balance: list[dict]) -> str:
    rows = sorted(balance, key=lambda b: abs(b["smd_before"]))[-25:]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.scatter([abs(b["smd_before"]) for b in rows], y, label="before weighting", marker="o")
    ax.scatter([abs(b["smd_after"]) for b in rows], y, label="after weighting", marker="x")
    ax.axvline(0.1, color="grey", ls="--", lw=1)
    ax.set_yticks(y, [b["covariate"][:40] for b in rows], fontsize=7)
    ax.set_xlabel("|standardized mean difference|")
    ax.legend(fontsize=8)
    ax.set_title("Covariate balance")
    return _png(fig)


def subgroup_plot(subgroups: list[dict], overall: dict) -> str | None:
    rows = [s for s in subgroups if s["estimate"] is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(rows) + 1.4))
    y = np.arange(len(rows))
    est = np.array([s["estimate"] for s in rows])
    ax.errorbar(est, y, xerr=[est - [s["ci_low"] for s in rows], np.array([s["ci_high"] for s in rows]) - est],
                fmt="o", capsize=3)
    ax.axvline(overall["estimate"], color="tab:red", lw=1, label="overall")
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(y, [f"{s['group']}: {s['value']}" for s in rows], fontsize=7)
    ax.set_xlabel("effect (95% interval)")
    ax.legend(fontsize=8)
    ax.set_title("Subgroup effects")
    return _png(fig)


def render_report(result: dict, title: str) -> str:
    d = result["diagnostics"]
    esc = html.escape
    fmt = lambda x: "–" if x is None else f"{x:+.4f}"  # noqa: E731
    warnings = "".join(f"<li>{esc(w)}</li>" for w in d["warnings"]) or "<li>none</li>"
    subgroup_rows = "".join(
        f"<tr><td>{esc(s['group'])}</td><td>{esc(s['value'])}</td><td>{fmt(s['estimate'])}</td>"
        f"<td>{fmt(s['ci_low'])} to {fmt(s['ci_high'])}</td><td>{s['n_treated']}</td><td>{s['n_control']}</td></tr>"
        for s in result["subgroups"])
    balance_rows = "".join(
        f"<tr><td>{esc(b['covariate'])}</td><td>{b['smd_before']:+.3f}</td><td>{b['smd_after']:+.3f}</td></tr>"
        for b in sorted(d["balance"], key=lambda b: -abs(b["smd_before"]))[:30])
    subgroup_png = subgroup_plot(result["subgroups"], result)
    extra = "".join(f"<h2>{esc(k)}</h2><pre>{esc(str(v))}</pre>" for k, v in result.get("extra", {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#111;line-height:1.45}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}
.big{{font-size:1.4em}}.warn{{color:#8a4b00}}</style></head><body>
<h1>{esc(title)}</h1>
<p class="big">{esc(result['estimand'])}: <strong>{result['estimate']:+.4f}</strong>
(95% interval {result['ci_low']:+.4f} to {result['ci_high']:+.4f})</p>
<p>Naive difference (treated minus comparison, no adjustment): {result['naive']['estimate']:+.4f}
(95% interval {result['naive']['ci_low']:+.4f} to {result['naive']['ci_high']:+.4f}).
The gap between the two is what confounding would have done to a naive reading.</p>
<p>Treated: {result['n_treated']}, comparison: {result['n_control']} (after trimming).
Outcome: <code>{esc(str(result['outcome']))}</code>; treatment: <code>{esc(str(result['treatment']))}</code>.</p>
<p>Method: {esc(result['method'])}.</p>
<h2>Warnings</h2><ul class="warn">{warnings}</ul>
<h2>Overlap</h2><p>Share trimmed: {100 * d['share_trimmed']:.1f}%.</p>
<img alt="Histogram of propensity scores for treated and comparison rows" src="{overlap_plot(d['_propensity'], d['_treated'])}">
<h2>Balance</h2><p>Largest |SMD| before weighting {d['max_abs_smd_before']:.3f}, after {d['max_abs_smd_after']:.3f}.</p>
<img alt="Standardized mean differences before and after weighting" src="{balance_plot(d['balance'])}">
<table><tr><th>covariate</th><th>SMD before</th><th>SMD after</th></tr>{balance_rows}</table>
<h2>Subgroups</h2>
{f'<img alt="Subgroup effects with 95% intervals" src="{subgroup_png}">' if subgroup_png else ''}
<table><tr><th>group</th><th>value</th><th>effect</th><th>95% interval</th><th>treated</th><th>comparison</th></tr>{subgroup_rows}</table>
{extra}
<p><small>Effects are differences in the outcome's mean (percentage points /100 for a 0/1 outcome).
Intervals are for the estimand among rows with overlap. Assignment to interventions is not random:
the estimate is only as good as the covariates' ability to capture why people were assigned.</small></p>
</body></html>"""
