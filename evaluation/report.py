"""report.html for policy evaluators: Danish first with an English switch, self-contained (plots
inlined as PNG, no external files), one page for one evaluation (every kind in BIP mode).

Each text comes in both languages; the page shows one at a time (`<body class="da|en">`,
a button switches). Effects are in percentage points with the interval in words.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from features.schema import load_schema  # noqa: E402
from features.names import labels  # noqa: E402  (kind and indicator names in both languages)
from evaluation.limits import read_known_limits  # noqa: E402

esc = html.escape


def T(da: str, en: str) -> str:
    """Both languages; the page's class shows one."""
    return f'<span lang="da">{da}</span><span lang="en">{en}</span>'


def _num(x: float, language: str, digits: int = 1) -> str:
    text = f"{x:.{digits}f}"
    return text.replace(".", ",") if language == "da" else text


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def overlap_plot(propensity, treated) -> str:
    e, t = np.asarray(propensity), np.asarray(treated)
    fig, ax = plt.subplots(figsize=(6, 3))
    bins = np.linspace(0, max(0.05, float(np.quantile(e, 0.999))), 41)
    ax.hist(e[t == 0], bins=bins, alpha=0.6, density=True, label="comparison / sammenligning")
    ax.hist(e[t == 1], bins=bins, alpha=0.6, density=True, label="treated / behandlede")
    ax.set_xlabel("propensity / sandsynlighed for at starte")
    ax.legend(fontsize=8)
    return _png(fig)


def balance_plot(balance: list[dict], threshold: float) -> str:
    rows = sorted(balance, key=lambda b: abs(b["smd_before"]))[-20:]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.scatter([abs(b["smd_before"]) for b in rows], y, label="before / før vægtning", marker="o")
    ax.scatter([abs(b["smd_after"]) for b in rows], y, label="after / efter vægtning", marker="x")
    ax.axvline(threshold, color="grey", ls="--", lw=1)
    ax.set_yticks(y, [b["covariate"][:40] for b in rows], fontsize=7)
    ax.set_xlabel("|standardized mean difference|")
    ax.legend(fontsize=8)
    return _png(fig)


def interval_words(low: float, high: float, binary: bool, language: str, what_da: str, what_en: str) -> str:
    """'between 1.6 and 4.1 points more people in a job ...' in one language."""
    scale = 100 if binary else 1
    a, b = low * scale, high * scale
    digits = 1 if binary else 3
    unit = ("procentpoint" if language == "da" else "points") if binary else ("enheder" if language == "da" else "units")
    n = lambda x: _num(abs(x), language, digits)  # noqa: E731
    if language == "da":
        if a >= 0:
            return f"mellem {n(a)} og {n(b)} {unit} flere {what_da}"
        if b <= 0:
            return f"mellem {n(b)} og {n(a)} {unit} færre {what_da}"
        return f"mellem {n(a)} {unit} færre og {n(b)} {unit} flere {what_da}"
    if a >= 0:
        return f"between {n(a)} and {n(b)} {unit} more {what_en}"
    if b <= 0:
        return f"between {n(b)} and {n(a)} {unit} fewer {what_en}"
    return f"between {n(a)} {unit} fewer and {n(b)} {unit} more {what_en}"


def _effect(x: float | None, binary: bool, language: str) -> str:
    if x is None:
        return "–"
    if binary:
        return f"{'+' if x >= 0 else '−'}{_num(abs(100 * x), language)}"
    return f"{'+' if x >= 0 else '−'}{_num(abs(x), language, 3)}"


def _both_effect(x, binary):
    return T(_effect(x, binary, "da"), _effect(x, binary, "en"))


def _headline(result: dict, name_da: str, name_en: str, horizon: int | None) -> str:
    binary = result.get("binary_outcome", True)
    if horizon is not None:
        what_da = f"i job eller uddannelse inden for {horizon} måneder"
        what_en = f"people in a job or education within {horizon} months"
    else:
        what_da = f"i udfaldet {esc(str(result['outcome']))}" if binary else f"i {esc(str(result['outcome']))}"
        what_en = f"with {esc(str(result['outcome']))}" if binary else f"in {esc(str(result['outcome']))}"
    unit_da, unit_en = ("procentpoint", "percentage points") if binary else ("", "")
    low, high = result["ci_low"], result["ci_high"]
    who_da = "for dem, der startede" if result["estimand"] == "ATT" else "for alle"
    who_en = "for those who started" if result["estimand"] == "ATT" else "for everyone"
    words_da = "95 %-interval: " + interval_words(low, high, binary, "da", what_da, what_en) + "."
    words_en = "95% interval: " + interval_words(low, high, binary, "en", what_da, what_en) + "."
    effect = _both_effect(result["estimate"], binary)
    return (f'<p class="big">{T(name_da, name_en)}: <strong>{effect} {T(unit_da, unit_en)}</strong> '
            f'{T(who_da, who_en)}</p><p>{T(words_da, words_en)}</p>')


def _diagnostics_table(d: dict, randomized: bool) -> str:
    th = d["thresholds"]
    top = d.get("top_share")
    rows = [
        (T("Andel fjernet pga. ekstreme sandsynligheder", "Share trimmed for extreme propensities"),
         f"{100 * d['share_trimmed']:.1f}%", f"≤ {100 * th['share_trimmed']:.0f}%", d["share_trimmed"] <= th["share_trimmed"]),
        (T("Største |SMD| efter vægtning", "Largest |SMD| after weighting"),
         f"{d['max_abs_smd_after']:.3f}", f"≤ {th['smd']}", d["max_abs_smd_after"] <= th["smd"]),
        (T("Største |SMD| før vægtning (til sammenligning)", "Largest |SMD| before weighting (for comparison)"),
         f"{d['max_abs_smd_before']:.3f}", "", None),
        (T("Balancetest: mindste Holm-justerede p", "Balance test: smallest Holm-adjusted p"),
         f"{d['balance_test']['smallest_adjusted_p']:.3f}", f"≥ {th['balance_test_adjusted_p']}"
         + T(" (kun krav ved randomisering)", " (a requirement under randomization only)"),
         (d["balance_test"]["smallest_adjusted_p"] >= th["balance_test_adjusted_p"]) if randomized else None),
    ]
    if top is not None:
        rows.insert(2, (T("Vægtandel for de tungeste 1 % sammenligninger", "Weight share of the heaviest 1% comparisons"),
                        f"{100 * top:.0f}%", f"≤ {100 * th['top_1pct_weight_share']:.0f}%",
                        top <= th["top_1pct_weight_share"]))
    mark = {True: T("ok", "ok"), False: T("over grænsen", "beyond the threshold"), None: ""}
    body = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td><td>{mark[ok]}</td></tr>" for a, b, c, ok in rows)
    return (f"<table><tr><th>{T('Diagnostik', 'Diagnostic')}</th><th>{T('Værdi', 'Value')}</th>"
            f"<th>{T('Grænse', 'Threshold')}</th><th></th></tr>{body}</table>")


def _subgroups(result: dict) -> str:
    rows = result.get("subgroups") or []
    if not rows:
        return ""
    binary = result.get("binary_outcome", True)
    estimated = [s for s in rows if s["estimate"] is not None]
    note = T(f"Der er {len(estimated)} delgruppe-estimater. Med så mange intervaller vil nogle udelukke nul "
             "eller den samlede effekt alene ved tilfældighed (ved 95 % ca. 1 ud af 20). Kolonnen "
             "'justeret' giver Bonferroni-justerede intervaller, der samlet dækker alle delgruppers sande "
             "effekter mindst 95 % af gangene; læs forskelle mellem grupper ud fra dem.",
             f"There are {len(estimated)} subgroup estimates. With so many intervals some will exclude zero "
             "or the overall effect by chance alone (at 95%, about 1 in 20). The 'adjusted' column gives "
             "Bonferroni-adjusted intervals that together cover every subgroup's true effect at least 95% "
             "of the time; read differences between groups from those.")

    def interval(s, suffix=""):
        if s["estimate"] is None:
            return T("for få", "too few")
        return f"{_both_effect(s['ci_low' + suffix], binary)} {T('til', 'to')} {_both_effect(s['ci_high' + suffix], binary)}"

    body = "".join(
        f"<tr><td>{esc(s['group'])}</td><td>{esc(s['value'])}</td><td>{_both_effect(s['estimate'], binary)}</td>"
        f"<td>{interval(s)}</td><td>{interval(s, '_adjusted') if s['estimate'] is not None else ''}</td>"
        f"<td>{s['n_treated']}</td><td>{s['n_control']}</td></tr>" for s in rows)
    return (f"<h3>{T('Delgrupper', 'Subgroups')}</h3><p>{note}</p><table><tr><th>{T('gruppe', 'group')}</th>"
            f"<th>{T('værdi', 'value')}</th><th>{T('effekt', 'effect')}</th><th>95 %</th>"
            f"<th>{T('justeret', 'adjusted')}</th><th>{T('behandlede', 'treated')}</th>"
            f"<th>{T('sammenligning', 'comparison')}</th></tr>{body}</table>")


def _progression(result: dict) -> str:
    effects = result.get("progression") or {}
    if not effects:
        return ""
    schema = load_schema()
    rows = {}
    for column, e in effects.items():
        name, follow_up = column[len("change_"):].rsplit("_", 1)
        rows.setdefault(name, {})[follow_up] = e

    def cell(e):
        if e is None:
            return "–"
        return T(f"{_num(e['estimate'], 'da', 2)} <small>({_num(e['ci_low'], 'da', 2)} til {_num(e['ci_high'], 'da', 2)})</small>",
                 f"{_num(e['estimate'], 'en', 2)} <small>({_num(e['ci_low'], 'en', 2)} to {_num(e['ci_high'], 'en', 2)})</small>")

    body = ""
    for name, by in rows.items():
        da, en = labels(name, schema) if name != "score" else ("Scoren (sandsynlighed)", "The score (probability)")
        body += f"<tr><td>{T(esc(da), esc(en))}</td><td>{cell(by.get('3m'))}</td><td>{cell(by.get('6m'))}</td></tr>"
    return (f"<h3>{T('Progression', 'Progression')}</h3><p>"
            + T("Effekt på ændringen i sagsbehandlerens vurdering (trin på skalaen) ved næste måling ca. 3 og 6 "
                "måneder senere, blandt dem der stadig blev målt. Borgere, der forlod forløbet for et job, mangler "
                "her, så tallene beskriver dem, der stadig var i forløbet.",
                "Effect on the change in the caseworker's rating (steps on the scale) at the next measurement about "
                "3 and 6 months later, among those still measured. Citizens who left the series for a job are "
                "missing here, so the figures describe those still enrolled.")
            + f"</p><table><tr><th>{T('indikator', 'indicator')}</th><th>3 {T('mdr.', 'months')}</th>"
              f"<th>6 {T('mdr.', 'months')}</th></tr>{body}</table>")


def _benchmark_name(name: str) -> tuple[str, str]:
    """A benchmark covariate group in words: an indicator's label, else the column name."""
    schema = load_schema()
    if name in schema:
        da, en = labels(name, schema)
        return f"vurderingerne af {esc(da.lower())}", f"the ratings of {esc(en.lower())}"
    return f"kovariaten {esc(name)}", f"the covariate {esc(name)}"


def _sensitivity(result: dict) -> str:
    """Omitted-variable-bias bounds in words (evaluation.sensitivity), observational estimates only."""
    s = result.get("sensitivity")
    if not s:
        return ""
    binary = result.get("binary_outcome", True)
    b, sc = s["bounds"], s["scenario"]
    pct = lambda x, lang: _num(100 * x, lang, 1)  # noqa: E731
    rng = lambda lo, hi, lang: f"{_effect(lo, binary, lang)} {'til' if lang == 'da' else 'to'} {_effect(hi, binary, lang)}"  # noqa: E731
    unit_da, unit_en = ("procentpoint", "points") if binary else ("", "")
    text = T(
        f"En ikke-målt faktor, der forklarer {pct(sc['cf_y'], 'da')} % af den resterende variation i udfaldet og "
        f"{pct(sc['cf_d'], 'da')} % af variationen i, hvem der starter, kunne flytte estimatet til mellem "
        f"{rng(b['lower'], b['upper'], 'da')} {unit_da} (med statistisk usikkerhed: {rng(b['ci_lower'], b['ci_upper'], 'da')}). "
        f"For at fjerne effekten helt skulle en ikke-målt faktor forklare mindst {pct(s['robustness_value'], 'da')} % af "
        f"både den resterende variation i udfaldet og i, hvem der starter (robusthedsværdien); for at gøre den "
        f"ikke-signifikant: {pct(s['robustness_value_ci'], 'da')} %.",
        f"An unmeasured factor that explains {pct(sc['cf_y'], 'en')}% of the remaining variation in the outcome and "
        f"{pct(sc['cf_d'], 'en')}% of the variation in who starts could move the estimate to between "
        f"{rng(b['lower'], b['upper'], 'en')} {unit_en} (with statistical uncertainty: {rng(b['ci_lower'], b['ci_upper'], 'en')}). "
        f"To erase the effect, an unmeasured factor would have to explain at least {pct(s['robustness_value'], 'en')}% of "
        f"both the remaining variation in the outcome and in who starts (the robustness value); to make it "
        f"not significant: {pct(s['robustness_value_ci'], 'en')}%.")
    rows = ""
    for name, m in (s.get("benchmarks") or {}).items():
        da, en = _benchmark_name(name)
        rows += "<li>" + T(
            f"En skjult faktor lige så stærk som {da} (forklarer {pct(m['cf_y'], 'da')} % af udfaldets rest og "
            f"{pct(m['cf_d'], 'da')} % af hvem der starter; de målte faktorer flyttede estimatet "
            f"{_effect(m['delta_theta'], binary, 'da')} {unit_da}, når den blev udeladt): grænser "
            f"{rng(m['lower'], m['upper'], 'da')} {unit_da}, med usikkerhed {rng(m['ci_lower'], m['ci_upper'], 'da')}.",
            f"A hidden factor as strong as {en} (explains {pct(m['cf_y'], 'en')}% of the outcome's remainder and "
            f"{pct(m['cf_d'], 'en')}% of who starts; leaving it out moved the estimate {_effect(m['delta_theta'], binary, 'en')} "
            f"{unit_en}): bounds {rng(m['lower'], m['upper'], 'en')} {unit_en}, with uncertainty "
            f"{rng(m['ci_lower'], m['ci_upper'], 'en')}.") + "</li>"
    fragile = [name for name, m in (s.get("benchmarks") or {}).items() if m["ci_lower"] <= 0 <= m["ci_upper"]]
    if fragile:
        da, en = _benchmark_name(fragile[0])
        verdict = T(f"<b>Estimatet er skrøbeligt:</b> en skjult faktor, der ikke er stærkere end {da}, kunne fjerne "
                    "effekten eller vende den. Læs det som et muligt, ikke et sikkert, resultat.",
                    f"<b>The estimate is fragile:</b> a hidden factor no stronger than {en} could erase the effect "
                    "or reverse it. Read it as a possible, not a sure, result.")
    elif s.get("benchmarks"):
        verdict = T("Estimatet holder over for en skjult faktor lige så stærk som de målte faktorer ovenfor; en "
                    "stærkere faktor kan ikke udelukkes.", "The estimate holds against a hidden factor as strong as "
                    "the measured factors above; a stronger one cannot be ruled out.")
    else:
        verdict = ""
    method = T("Metode: udeladt-variabel-grænser for dobbelt robuste estimater (Chernozhukov, Cinelli, Newey, Sharma "
               "& Syrgkanis 2022) fra de krydstilpassede modeller; værste fald (rho = 1).",
               "Method: omitted-variable-bias bounds for doubly robust estimates (Chernozhukov, Cinelli, Newey, Sharma "
               "& Syrgkanis 2022) from the cross-fitted models; worst case (rho = 1).")
    return (f"<h3>{T('Følsomhed over for skjulte forskelle', 'Sensitivity to hidden confounding')}</h3><p>{text}</p>"
            + (f"<ul>{rows}</ul>" if rows else "") + (f"<p class=\"warn\">{verdict}</p>" if fragile else
                                                       f"<p>{verdict}</p>" if verdict else "")
            + f"<p><small>{method}</small></p>")


def _assumptions(randomized: bool, bip: bool) -> str:
    if randomized:
        items = [T("Tildelingen var tilfældig som oplyst (lodtrækning), og ingen valgte selv gruppe.",
                   "Assignment was random as declared (a lottery), and nobody chose their group."),
                 T("Udfaldet er målt ens og lige fuldstændigt i begge grupper (frafald afhænger ikke af gruppen).",
                   "The outcome is measured alike and equally completely in both groups (drop-out does not depend on the group)."),
                 T("Hvad ville bryde det: omgåelse af lodtrækningen, frafald der afhænger af gruppen, "
                   "at deltagere påvirker hinanden.",
                   "What would break it: getting round the lottery, drop-out that depends on the group, "
                   "participants affecting each other.")]
    else:
        items = [T("Ingen skjulte forskelle: alt, hvad der både påvirker hvem der starter og deres jobchance, er med "
                   "i kovariaterne. Hvad ville bryde det: sagsbehandlerens indtryk fra samtalen, motivation, "
                   "helbred eller tilbud, der ikke står i data. I simulatorens realistiske regime gjorde en skjult "
                   "motivation af beskeden styrke estimaterne for de jobrettede tilbud op til 4 procentpoint for høje, "
                   "og intervallet tager ikke højde for det.",
                   "No hidden differences: everything that affects both who starts and their job chances is in the "
                   "covariates. What would break it: the caseworker's impression from the conversation, motivation, "
                   "health or offers that are not in the data. In the simulator's realistic regime a hidden "
                   "motivation of modest strength made the job-oriented kinds' estimates up to 4 points too high, "
                   "and the interval does not allow for it."),
                 T("Overlap: for hver slags borger findes både nogle, der startede, og nogle, der ikke gjorde "
                   "(se diagnostikken).",
                   "Overlap: for every kind of citizen there are some who started and some who did not "
                   "(see the diagnostics)."),
                 T("Kovariaterne er målt før starten; intet efter tidspunktet indgår.",
                   "The covariates are measured before the start; nothing after the occasion enters.")]
        if bip:
            items.append(T("Sammenligningsgruppen kan starte senere: effekten er 'start nu' mod 'ikke nu', ikke "
                           "'aldrig'.", "The comparison group may start later: the effect is 'start now' "
                           "against 'not now', not against 'never'."))
    return f"<h2>{T('Antagelser', 'Assumptions')}</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _kind_section(result: dict, name_da: str, name_en: str, horizon: int | None, bip: bool) -> str:
    d = result["diagnostics"]
    binary = result.get("binary_outcome", True)
    randomized = result.get("design") == "randomized"
    limits = read_known_limits().get(result.get("kind", ""), {}) if bip else {}
    warnings = [T(esc(w), esc(w)) for w in d["warnings"]]
    if limits:
        # from the last truth check (evaluation/known_limits.json); below 0.93 it is a warning
        text_da, text_en = limits["note_da"], limits["note_en"]
        if limits["coverage"] < 0.93:
            text_da, text_en = text_da + " Læs intervallet med forsigtighed.", text_en + " Read the interval with care."
        warnings.append(T(esc(text_da), esc(text_en)))
    naive = result["naive"]
    sampling = result.get("sampling") or {}
    sampled = sampling.get("comparison_kept_share", 1) < 1 or sampling.get("treated_kept_share", 1) < 1
    parts = [
        _headline(result, name_da, name_en, horizon),
        "<p>" + T(f"Naiv forskel (behandlede minus sammenligning, uden justering): {_effect(naive['estimate'], binary, 'da')}. "
                  "Forskellen mellem de to tal er, hvad skævheden i hvem der starter ville have gjort ved en naiv læsning.",
                  f"Naive difference (treated minus comparison, no adjustment): {_effect(naive['estimate'], binary, 'en')}. "
                  "The gap between the two is what the imbalance in who starts would have done to a naive reading.")
        + "</p>",
        f"<p>{T('Behandlede', 'Treated')}: {result['n_treated']}, {T('sammenligning', 'comparison')}: {result['n_control']}"
        + (T(f" (stikprøve af sammenligningerne: {100 * sampling['comparison_kept_share']:.0f} % med kendt vægt)",
             f" (comparisons sampled: {100 * sampling['comparison_kept_share']:.0f}% with known weight)") if sampled else "")
        + f". {T('Metode', 'Method')}: <small>{esc(result['method'])}</small></p>",
        f"<h3>{T('Advarsler', 'Warnings')}</h3><ul class='warn'>"
        + ("".join(f"<li>{w}</li>" for w in warnings) or f"<li>{T('ingen', 'none')}</li>") + "</ul>",
        f"<h3>{T('Diagnostik', 'Diagnostics')}</h3>" + _diagnostics_table(d, randomized),
    ]
    if "_propensity" in d:
        parts.append(f'<img alt="propensity overlap" src="{overlap_plot(d["_propensity"], d["_treated"])}">')
    parts.append(f'<img alt="covariate balance" src="{balance_plot(d["balance"], d["thresholds"]["smd"])}">')
    parts += [_sensitivity(result), _subgroups(result), _progression(result)]
    return "".join(parts)


def _policy(result: dict) -> str:
    """Which intervention for whom (evaluation.policy): the learned rule in words, its value
    beside current practice, treating nobody and the best single programme. A group-level
    finding, never an instruction for one citizen."""
    p = result.get("policy")
    if not p:
        return ""
    schema = load_schema()
    v = p["value"]

    def arm(name):
        if name == "none":
            return T("ingen indsats nu", "no programme now")
        da, en = labels(f"activity_{name}", schema)
        return T(da, en)

    def condition(text):
        feature, op, cut = text.split(" ")
        key = feature.removesuffix("__cw_level")
        if key in schema:
            da, en = labels(key, schema)
            return T(f"sagsbehandlerens vurdering af {esc(da.lower())} {op} {esc(cut)}",
                     f"the caseworker's rating of {esc(en.lower())} {op} {esc(cut)}")
        names = {"person__age": ("alder", "age"), "readiness": ("parathed", "readiness")}
        da, en = names.get(feature, (feature, feature))
        return T(f"{esc(da)} {op} {esc(cut)}", f"{esc(en)} {op} {esc(cut)}")

    leaves = "".join(f"<li>{T('Hvis ', 'If ')}{T(' og ', ' and ').join(condition(c) for c in leaf['conditions']) or T('alle', 'everyone')}: "
                     f"<b>{arm(leaf['arm'])}</b></li>" for leaf in p["rule"]["leaves"])

    def share(x):
        return f"{_num(100 * x['value'], 'da')} % ({_num(100 * x['ci_low'], 'da')}–{_num(100 * x['ci_high'], 'da')})"

    def share_en(x):
        return f"{_num(100 * x['value'], 'en')}% ({_num(100 * x['ci_low'], 'en')}–{_num(100 * x['ci_high'], 'en')})"
    best = v["best_single_programme"]
    rows = [(T("Reglen ovenfor", "The rule above"), v["learned_rule"]),
            (T("Nuværende praksis", "Current practice"), v["current_practice"]),
            (T("Ingen indsats til nogen", "No programme for anyone"), v["treat_nobody"]),
            (T("Bedste enkelte indsats til alle: ", "Best single programme for all: ") + arm(best["kind"]), best)]
    table = "".join(f"<tr><td>{name}</td><td>{T(share(x), share_en(x))}</td></tr>" for name, x in rows)
    g = p["gain_over_current_practice"]
    capacity = ", ".join(f"{arm(k)} ≤ {c:g}" for k, c in p["capacity"].items())
    return (f"<h2>{T('Hvilken indsats til hvem', 'Which intervention for whom')}</h2>"
            f"<p>{T('En regel med højst to spørgsmål, lært af data, om hvilken indsats der giver flest i job inden for ', 'A rule of at most two questions, learned from the data, on which programme puts most people in a job within ')}"
            f"{p['horizon_months']} {T('måneder:', 'months:')}</p><ul>{leaves}</ul>"
            f"<table><tr><th>{T('Tildeling', 'Assignment')}</th><th>{T('Andel i job (95 %-interval)', 'Share in a job (95% interval)')}</th></tr>{table}</table>"
            f"<p>{T('Gevinst ved reglen frem for nuværende praksis: ', 'Gain of the rule over current practice: ')}"
            f"{T(interval_words(g['ci_low'], g['ci_high'], True, 'da', 'i job', ''), interval_words(g['ci_low'], g['ci_high'], True, 'en', '', 'in a job'))}.</p>"
            + (f"<p>{T('Pladser højst: ', 'Places at most: ')}{capacity}.</p>" if capacity else "")
            + f"<p class=\"warn\">{T('Et fund om grupper til planlægning, ikke en anvisning for den enkelte borger: sagsbehandleren og borgeren beslutter. Reglens værdi er målt på personer, den ikke blev lært på (krydstilpasning).', 'A finding about groups for planning, not an instruction for one citizen: the caseworker and the citizen decide. The rule is valued on persons it was not learned on (cross-fitting).')}</p>"
            f"<p><small>{esc(p['method'])}; {p['decision_points']} {T('beslutningstidspunkter', 'decision points')}, {p['persons']} {T('personer', 'persons')}.</small></p>")


def render_report(result: dict, title: str | None = None, language: str = "da") -> str:
    """The whole page for a generic result, one BIP kind's result, or a BIP all-kinds result."""
    schema = load_schema()
    bip = result.get("mode") == "bip" or "kind" in result
    randomized = result.get("design") == "randomized"
    if result.get("mode") == "bip":
        horizon = result["horizon"]
        kinds = result["kinds"]
        design = result["design"]
        covariates, score = result["covariates"], result["score_included"]
    else:
        horizon = result.get("horizon", 12) if bip else None
        kinds = {result.get("kind", "effect"): result}
        design = result.get("design") if isinstance(result.get("design"), dict) else {}
        covariates, score = result.get("covariates", []), "readiness" in (result.get("covariates") or [])
    if title:
        heading = esc(title)
    elif bip:
        title = f"Effekter af indsatser på job eller uddannelse inden for {horizon} måneder"
        heading = T(title, f"Effects of interventions on a job or education within {horizon} months")
    else:
        treatment, outcome = esc(str(result.get("treatment"))), esc(str(result.get("outcome")))
        title = f"Effekt af {result.get('treatment')} på {result.get('outcome')}"
        heading = T(f"Effekt af {treatment} på {outcome}", f"Effect of {treatment} on {outcome}")
    sections = []
    for kind, r in kinds.items():
        name_da, name_en = labels(f"activity_{kind}", schema) if bip else (esc(str(r.get("treatment"))),) * 2
        if r.get("estimate") is None:
            sections.append(f"<h2>{T(name_da, name_en)}</h2><p>{esc(r.get('note', ''))}</p>")
            continue
        sections.append(f"<h2>{T(name_da, name_en)}</h2>" + _kind_section(r, name_da, name_en, horizon, bip))
    if bip:
        window = design.get("window_days", 31)
        design_text = T(
            f"Hvem blev sammenlignet med hvem: ved hvert måletidspunkt, hvor borgeren ikke allerede var i indsatsen, "
            f"sammenlignes dem, der startede inden for {window} dage, med dem, der ikke gjorde (de kan starte senere). "
            f"Enheden er måletidspunktet, ikke personen: en borger bidrager med flere tidspunkter, og intervallerne "
            f"tager højde for det. Udfald: job eller uddannelse inden for {horizon} måneder efter tidspunktet. "
            "Estimand: den gennemsnitlige effekt for dem, der startede (ATT).",
            f"Who was compared with whom: at every measurement occasion where the citizen was not already in the "
            f"intervention, those who started within {window} days are compared with those who did not (they may "
            f"start later). The unit is the measurement occasion, not the person: a citizen contributes several "
            f"occasions, and the intervals allow for that. Outcome: a job or education within {horizon} months "
            "after the occasion. Estimand: the average effect on those who started (ATT).")
    elif randomized:
        design_text = T("Randomiseret forsøg (oplyst): tildelingen var tilfældig, så forskellen mellem grupperne er "
                        "forsøgets effekt; kovariaterne bruges kun til at gøre estimatet mere præcist.",
                        "Randomized trial (declared): assignment was random, so the difference between the groups "
                        "is the experiment's effect; the covariates only make the estimate more precise.")
    else:
        looks = next(iter(kinds.values())).get("diagnostics", {}).get("looks_randomized")
        design_text = T("Observationsdata: tildelingen var ikke tilfældig, så estimatet er kun så godt som "
                        "kovariaternes evne til at forklare, hvem der blev behandlet.",
                        "Observational data: assignment was not random, so the estimate is only as good as the "
                        "covariates' ability to explain who was treated.")
        if looks:
            design_text += " " + T("Kovariaterne er i balance som ved lodtrækning; var tildelingen tilfældig, så "
                                   "angiv --design randomized.", "The covariates are balanced as under a lottery; "
                                   "if assignment was random, declare --design randomized.")
    excluded = result.get("excluded_covariates") or []
    covariate_text = (T(f"Kovariater ({len(covariates)}): ", f"Covariates ({len(covariates)}): ")
                      + esc(", ".join(map(str, covariates)))
                      + ". " + (T("Scoren indgår som kovariat (som på evalueringssiden med en model).",
                                  "The score is a covariate (as on the evaluator page with a model).") if score else
                                T("Scoren indgår ikke som kovariat (bip evaluate uden --model); med scoren kan "
                                  "estimaterne afvige lidt.", "The score is not a covariate (bip evaluate without "
                                  "--model); with the score the estimates may differ slightly.") if bip else ""))
    if excluded:
        covariate_text += " " + T("Udeladt som id-lignende: ", "Left out as id-like: ") + esc(
            ", ".join(f"{e['column']} ({e['reason']})" for e in excluded))
    return f"""<!doctype html>
<html lang="{language}"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#111;line-height:1.45;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}
.big{{font-size:1.35em}}.warn{{color:#8a4b00}}body.da [lang=en]{{display:none}}body.en [lang=da]{{display:none}}
button{{font-size:1em}}</style></head><body class="{language}">
<p><button type="button" onclick="document.body.className=document.body.className==='da'?'en':'da'">
<span lang="da">English</span><span lang="en">Dansk</span></button></p>
<h1>{heading}</h1>
<h2>{T('Design', 'Design')}</h2><p>{design_text}</p>
<p>{covariate_text}</p>
{_assumptions(randomized, bip)}
{''.join(sections)}
{_policy(result)}
<p><small>{T('Effekter er forskelle i andelen med udfaldet, i procentpoint. Intervallerne gælder estimandet blandt '
             'tidspunkter/rækker med overlap.', 'Effects are differences in the share with the outcome, in percentage '
             'points. Intervals are for the estimand among occasions/rows with overlap.')}</small></p>
</body></html>"""
