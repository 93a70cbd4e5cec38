// The caseworker page: one citizen's score in plain words, its reasons, its course over time,
// what works for similar citizens, and a one-page print for the case file.
"use strict";

// Bands on the probability, the same cut points as the evaluation's readiness bands, so the
// "what works" panel speaks of the band the caseworker sees (a published evaluation's own cuts
// win). Explained against the base rate.
const BANDS = { low: 0.03, high: 0.10 };
const FOLD_PP = 0.1;     // contributions smaller than this (percentage points) are folded into "other"
const MAX_SHOWN = 8;     // at most this many reasons are listed one by one

const T = {
  da: {
    page_title: "BIP-score · sagsbehandler", title: "BIP-score: borgerens chance for job eller uddannelse",
    choose_heading: "Vælg borger",
    citizen: "Borger", by_id: "Borgerens id", by_id_help: "Borgerens pseudonyme id fra jobcentrets data.",
    fetch_citizen: "Hent og beregn", demo_intro: "Eller vælg fra listen over de borgere, din nøgle giver adgang til (i demoen syntetiske personer):",
    load_list: "Hent liste", demo: "Borger fra listen", choose: "Vælg …",
    demo_option: c => `Borger ${c.person_id} · jobcenter ${c.jobcenter} · ${c.measurements} målinger` +
      (c.last_measured_at ? `, senest ${BIP.date(c.last_measured_at)}` : ""),
    own_history: "Eller indsæt eller upload en historik", paste: "Historik (JSON i samme format som POST /v1/score)",
    upload: "Upload en fil med historikken", score: "Beregn score",
    result: "Resultat", result_heading: (id, d) => `Resultat for borger ${id} pr. ${d}`,
    probability_label: h => `Sandsynlighed for job eller uddannelse inden for ${h} måneder`,
    low: "Lav chance", middle: "Middel chance", high: "Høj chance",
    words: (band, n, h, avg) => `${band}: ${n} borgere med en score som denne var i job eller uddannelse inden for ${h} måneder` +
      (avg === null ? "." : `; gennemsnittet for borgerne i modellens data er ${avg}.`),
    bands: (lo, hi) => `Grupperne: lav chance under ${lo}, middel ${lo} til ${hi}, høj ${hi} eller mere.`,
    interval: (lo, hi) => `Interval ${lo} – ${hi}: så meget flytter scoren sig, alt efter hvilke borgere modellen er trænet på. ` +
      "Det siger ikke, hvor sikkert det er, at borgeren kommer i job.",
    meta: (m, d) => `Model ${m.name}, version ${m.version} · vurderet pr. ${d}`,
    decision: "Scoren er et hjælpemiddel. Det er sagsbehandleren, der træffer afgørelsen, og borgeren kan altid bede om at få grundlaget for scoren forklaret.",
    print: "Udskriv / gem som PDF", print_title: "BIP-score til sagen", printed: d => `udskrevet ${d}`,
    changed: "Hvad har ændret sig siden sidste måling", first: "Første måling: ingen tidligere score at sammenligne med.",
    since: (d, p) => `Ved målingen ${d} var scoren ${p}. Det har flyttet den mest:`,
    reasons: "Hvad trækker scoren op og ned",
    curve: "Hvor hurtigt: chancen inden for hver tidshorisont", th_within: "Inden for", months: n => `${n} måneder`, months_short: n => `${n} mdr.`,
    curve_caption: "Chancen for job eller uddannelse inden for hver horisont; stregerne er intervallet. Tabellen har de samme tal.",
    waterfall_caption: (b, p) => `Fra modellens udgangspunkt (${b}) til borgerens score (${p}), én bjælke pr. forhold, i procent på aksen. ` +
      "Grøn hæver, rød sænker. Tabellen siger det samme i ord.",
    start: "Udgangspunkt", total: "Borgerens score", axis: "Sandsynlighed",
    others: n => `Øvrige ${n} forhold`, others_reason: (n, max) => `${n} forhold, der hver flytter scoren højst ${max} procentpoint.`,
    what: "Hvad", effect: "Virkning", why: "Hvorfor",
    trajectory: "Scoren over tid",
    trajectory_caption: "Scoren ved hver måling; det lyse bånd er intervallet. Indsatserne står som bjælker under kurven. Tabellen har de samme tal.",
    quarter: (q, y) => `${q}. kvt. ${y}`, th_date: "Dato", th_score: "Score", th_interval: "Interval", activities_heading: "Indsatser",
    ongoing: "i gang", no_activities: "Ingen indsatser registreret.",
    ratings: "Borgerens og sagsbehandlerens vurdering (seneste måling)", indicator: "Indikator",
    by_citizen: "Borger", by_caseworker: "Sagsbehandler", not_answered: "ikke besvaret", of: (v, max) => `${v} af ${max}`,
    what_works: "Hvad virker for borgere som denne",
    what_works_note: "Tallene er den gennemsnitlige virkning af at starte en indsats for borgere i samme gruppe (samme chance-gruppe) i en offentliggjort evaluering. De er et gennemsnit for lignende borgere, ikke en forudsigelse for netop denne borger.",
    th_kind: "Indsats", th_effect: "Virkning på chancen", th_ci: "95 %-interval", no_estimate: "for få borgere til et skøn",
    ww_source: (d, band, h) => `Gruppe: ${band}. Virkning på chancen for job eller uddannelse inden for ${h} måneder, i procentpoint. Evaluering offentliggjort ${d}.`,
    rating_band: b => `${b.toLowerCase()} efter sagsbehandlerens vurderinger`,
    targeting: (who, kind, v, lo, hi, now) => `Offentliggjort fund om grupper: for borgere, hvor ${who}, gav ${kind} flest i job i evalueringen. Fulgte alle beslutninger reglen, ville ${v} % være i job (95 %-interval ${lo}–${hi} %) mod ${now} % med nuværende praksis. Det er et gennemsnit for grupper, ikke en anvisning: du og borgeren beslutter.`,
    targeting_none: "ingen indsats lige nu", cond_rating: (label, op, cut) => `sagsbehandlerens vurdering af ${label.toLowerCase()} er ${op === "<=" ? "højst" : "over"} ${cut}`,
    cond_readiness: (op, cut) => `parathed er ${op === "<=" ? "højst" : "over"} ${cut}`, and: " og ",
    loading: "Beregner …", scored: "Færdig. Resultatet står nedenfor.", loaded: n => `${n} borgere hentet.`,
    choose_first: "Vælg en borger på listen, skriv et id, eller indsæt en historik.", need_id: "Skriv borgerens id.",
    no_source: "Denne server har ingen borgerkilde. Indsæt en historik i stedet.",
    not_found: "Der findes ingen borger med dette id, som du har adgang til.",
  },
  en: {
    page_title: "BIP score · caseworker", title: "BIP score: the citizen's chance of a job or education",
    choose_heading: "Choose a citizen",
    citizen: "Citizen", by_id: "Citizen's id", by_id_help: "The citizen's pseudonymous id from the jobcentre's data.",
    fetch_citizen: "Fetch and score", demo_intro: "Or choose from the citizens your key gives access to (synthetic people in the demo):",
    load_list: "Load list", demo: "Citizen from the list", choose: "Choose …",
    demo_option: c => `Citizen ${c.person_id} · jobcentre ${c.jobcenter} · ${c.measurements} measurements` +
      (c.last_measured_at ? `, latest ${BIP.date(c.last_measured_at)}` : ""),
    own_history: "Or paste or upload a history", paste: "History (JSON in the POST /v1/score format)",
    upload: "Upload a file with the history", score: "Score",
    result: "Result", result_heading: (id, d) => `Result for citizen ${id} as of ${d}`,
    probability_label: h => `Probability of a job or education within ${h} months`,
    low: "Low chance", middle: "Medium chance", high: "High chance",
    words: (band, n, h, avg) => `${band}: ${n} citizens with a score like this were in a job or education within ${h} months` +
      (avg === null ? "." : `; the average for the citizens in the model's data is ${avg}.`),
    bands: (lo, hi) => `The bands: low chance below ${lo}, medium ${lo} to ${hi}, high ${hi} or more.`,
    interval: (lo, hi) => `Range ${lo} – ${hi}: how much the score moves depending on which citizens the model was trained on. ` +
      "It does not say how certain it is that the citizen gets a job.",
    meta: (m, d) => `Model ${m.name}, version ${m.version} · assessed as of ${d}`,
    decision: "The score is an aid. The caseworker makes the decision, and the citizen may always ask for the basis of the score to be explained.",
    print: "Print / save as PDF", print_title: "BIP score for the case file", printed: d => `printed ${d}`,
    changed: "What changed since the last measurement", first: "First measurement: no earlier score to compare with.",
    since: (d, p) => `At the measurement on ${d} the score was ${p}. What moved it most:`,
    reasons: "What pushes the score up and down",
    curve: "How soon: the chance within each horizon", th_within: "Within", months: n => `${n} months`, months_short: n => `${n} mo.`,
    curve_caption: "The chance of a job or education within each horizon; the whiskers are the range. The table has the same figures.",
    waterfall_caption: (b, p) => `From the model's starting point (${b}) to the citizen's score (${p}), one bar per factor, in per cent on the axis. ` +
      "Green raises, red lowers. The table says the same in words.",
    start: "Starting point", total: "The citizen's score", axis: "Probability",
    others: n => `Other ${n} factors`, others_reason: (n, max) => `${n} factors that each move the score by at most ${max} percentage points.`,
    what: "What", effect: "Effect", why: "Why",
    trajectory: "The score over time",
    trajectory_caption: "The score at each measurement; the light band is the range. Activities are the bars below the curve. The table has the same figures.",
    quarter: (q, y) => `Q${q} ${y}`, th_date: "Date", th_score: "Score", th_interval: "Range", activities_heading: "Activities",
    ongoing: "ongoing", no_activities: "No activities recorded.",
    ratings: "The citizen's and the caseworker's ratings (latest measurement)", indicator: "Indicator",
    by_citizen: "Citizen", by_caseworker: "Caseworker", not_answered: "not answered", of: (v, max) => `${v} of ${max}`,
    what_works: "What works for citizens like this one",
    what_works_note: "These are the average effects of starting an activity for citizens in the same group (the same chance band) in a published evaluation. They are an average for similar citizens, not a prediction for this citizen.",
    th_kind: "Activity", th_effect: "Effect on the chance", th_ci: "95% interval", no_estimate: "too few citizens for an estimate",
    ww_source: (d, band, h) => `Group: ${band}. Effect on the chance of a job or education within ${h} months, in percentage points. Evaluation published ${d}.`,
    rating_band: b => `${b.toLowerCase()} by the caseworker's ratings`,
    targeting: (who, kind, v, lo, hi, now) => `Published finding about groups: for citizens where ${who}, ${kind} put the most people in a job in the evaluation. Had every decision followed the rule, ${v}% would be in a job (95% interval ${lo}–${hi}%) against ${now}% under current practice. An average for groups, not an instruction: you and the citizen decide.`,
    targeting_none: "no activity right now", cond_rating: (label, op, cut) => `the caseworker's rating of ${label.toLowerCase()} is ${op === "<=" ? "at most" : "above"} ${cut}`,
    cond_readiness: (op, cut) => `readiness is ${op === "<=" ? "at most" : "above"} ${cut}`, and: " and ",
    loading: "Scoring …", scored: "Done. The result is below.", loaded: n => `${n} citizens loaded.`,
    choose_first: "Choose a citizen from the list, enter an id, or paste a history.", need_id: "Enter the citizen's id.",
    no_source: "This server has no citizen source. Paste a history instead.",
    not_found: "There is no citizen with this id that you have access to.",
  },
};
const t = k => BIP.t(k);
const $ = id => document.getElementById(id);
let last = null;          // {body, result, model, trajectory, published}
let statusKey = null;     // the status is kept as a key, so a language switch re-words it
let lastError = null;
let demoList = null;
let modelInfo = null;

function setStatus(key, ...args) { statusKey = key ? [key, args] : null; showStatus(); }
function showStatus() {
  if (!statusKey) { $("status").textContent = ""; return; }
  const v = t(statusKey[0]);
  $("status").textContent = typeof v === "function" ? v(...statusKey[1]) : v;
}
function setError(error) { lastError = error; showError(); }
function showError() { if (lastError) BIP.showError($("error"), lastError); else $("error").replaceChildren(); }
function fail(error) { setStatus(null); setError(error); }

function baseRate(model) {
  // the model's training base rate when the API gives it; else the observed rate of its test data
  if (!model) return null;
  for (const v of [model.base_rate, model.training_base_rate, model.metrics && model.metrics.observed_rate]) {
    if (typeof v === "number" && isFinite(v)) return v;
  }
  return null;
}
function bandOf(p) { return p < BANDS.low ? "low" : p < BANDS.high ? "middle" : "high"; }
function kindLabel(kind) { const k = KIND_LABELS[kind]; return k ? k[BIP.lang] : kind.replace(/_/g, " "); }
const label = item => BIP.lang === "da" ? item.label_da : item.label_en;

async function model() {
  if (!modelInfo) {
    modelInfo = await BIP.call("/v1/model");
    for (const i of modelInfo.indicator_schema.indicators) BIP.indicatorLabels[i.key] = { da: i.label_da, en: i.label_en };
  }
  return modelInfo;
}

let listSource = "citizens";   // where the list came from: the citizen source, or (older servers) the demo route

async function loadDemo() {
  setError(null);
  try {
    let list;
    try { list = await BIP.call("/v1/citizens"); listSource = "citizens"; }
    catch (e) {
      // no citizen route on this server (FastAPI's own "Not Found"): the demo cohort's route
      if (e.status !== 404 || e.detail !== "Not Found") throw e;
      list = await BIP.call("/v1/demo/citizens"); listSource = "demo";
    }
    demoList = list.citizens;
    renderDemoOptions();
    setStatus("loaded", demoList.length);
    $("demo-citizen").focus();
  } catch (e) { fail(e); }
}

function renderDemoOptions() {
  const select = $("demo-citizen"), chosen = select.value;
  // replaced, never appended: loading twice gives the same list
  select.replaceChildren(BIP.el("option", { value: "", "data-t": "choose" }, t("choose")));
  for (const c of demoList || []) select.append(BIP.el("option", { value: c.person_id }, t("demo_option")(c)));
  select.value = chosen;
}

const postScore = body => BIP.call("/v1/score", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** The score at every measurement date up to as_of, each with its interval. */
async function trajectoryOf(body, result) {
  const dates = [...new Set(body.measurements.map(m => m.measured_at))].sort().filter(d => d <= result.as_of);
  const points = [];
  for (const d of dates) {
    const r = d === result.as_of ? result : await postScore(Object.assign({}, body, { as_of: d }));
    points.push({ date: d, p: r.probability, low: r.interval.low, high: r.interval.high });
  }
  return points;
}

async function published() {
  try { return await BIP.call("/v1/evaluations/published"); }
  catch (e) { return null; }   // none published yet, or no such route on this server: the panel stays hidden
}

async function show(body, result) {
  modelInfo = null;   // asked again each time: the champion may have changed since
  const [m, pub] = await Promise.all([model(), published()]);
  if (pub && pub.bands && pub.bands.by === "score" && pub.bands.cuts.length === 2) [BANDS.low, BANDS.high] = pub.bands.cuts;
  const trajectory = body ? await trajectoryOf(body, result) : (result.trajectory || null);
  last = { body, result, model: m, trajectory, published: pub };
  render();
  setStatus("scored");
  $("result-heading").focus();
}

async function scoreChosen() {
  setError(null); setStatus("loading");
  try {
    const text = $("history").value.trim(), id = $("demo-citizen").value;
    let body;
    if (text) {
      try { body = JSON.parse(text); } catch (e) { throw BIP.userError("bad_json"); }
    } else if (id && listSource === "citizens") {
      return await scoreStored(id);
    } else if (id) {
      body = await BIP.call(`/v1/demo/citizens/${encodeURIComponent(id)}`);
    } else throw BIP.userError("choose_first");
    await show(body, await postScore(body));
  } catch (e) {
    if (e.status === 422) await model().catch(() => null);   // indicator names for the fields in the error
    fail(e);
  }
}

async function fetchCitizen() {
  setError(null);
  const id = $("person-id").value.trim();
  if (!id) { fail(BIP.userError("need_id")); $("person-id").focus(); return; }
  setStatus("loading");
  try { await scoreStored(id); } catch (e) { fail(e); }
}

/** A citizen from the server's citizen source: GET /v1/citizens/{id}/score, and the history for the course over time. */
async function scoreStored(id) {
  const path = `/v1/citizens/${encodeURIComponent(id)}`;
  let result;
  try { result = await BIP.call(`${path}/score`); }
  catch (e) {
    // FastAPI's own "Not Found" means the route is missing; the citizen route words its own 404
    if (e.status === 404) throw BIP.userError(e.detail === "Not Found" ? "no_source" : "not_found");
    throw e;
  }
  // the history, when the answer carries it or the source serves it, gives the course over time
  let body = result.history || null;
  if (!body) { try { body = await BIP.call(path); } catch (e) { body = null; } }
  await show(body && body.measurements ? body : null, result);
}

function render() {
  renderDemoOptions();
  showStatus(); showError();
  if (!last) return;
  const { result, model: m } = last;
  $("result").hidden = false;
  const p = result.probability, base = baseRate(m), h = result.horizon_months;
  $("result-heading").textContent = t("result_heading")(result.person_id, BIP.date(result.as_of));
  $("printed").textContent = t("printed")(BIP.date(new Date().toISOString()));
  $("probability-label").textContent = t("probability_label")(h);
  const prob = $("probability");
  prob.textContent = BIP.pct(p); prob.dataset.value = String(p);
  const words = $("words");
  words.textContent = t("words")(t(bandOf(p)), BIP.per100(p), h, base === null ? null : String(Math.round(100 * base)));
  words.dataset.value = String(p); words.dataset.base = base === null ? "" : String(base);
  words.dataset.band = bandOf(p);
  $("bands").textContent = t("bands")(BIP.pct(BANDS.low, 0), BIP.pct(BANDS.high, 0));
  const interval = $("interval");
  interval.textContent = t("interval")(BIP.pct(result.interval.low), BIP.pct(result.interval.high));
  interval.dataset.low = String(result.interval.low); interval.dataset.high = String(result.interval.high);
  $("meta").textContent = t("meta")(result.model, BIP.date(result.as_of));
  renderChange(result);
  renderCurve(result);
  const shown = renderContributions(result);
  renderWaterfall(result, shown);
  renderTrajectory();
  renderWhatWorks();
  renderRatings();
}

function renderChange(result) {
  const c = result.change, list = $("drivers");
  list.replaceChildren();
  $("change-summary").textContent = c.previous_as_of ? t("since")(BIP.date(c.previous_as_of), BIP.pct(c.previous_probability)) : t("first");
  for (const d of c.drivers) {
    list.append(BIP.el("li", { class: d.change_pp >= 0 ? "up" : "down", "data-group": d.group, "data-pp": String(d.change_pp) },
      `${label(d)}: ${BIP.pp(d.change_pp, Math.abs(d.change_pp) < 0.1 ? 2 : 1)}`));
  }
}

/** The readiness curve (when the model gives one): the chance within 3, 6, 12, 24 months. */
function renderCurve(result) {
  const curve = result.curve, card = $("curve-card");
  card.hidden = !Array.isArray(curve) || !curve.length;
  if (card.hidden) return;
  document.querySelector("#curve-table tbody").replaceChildren(...curve.map(c =>
    BIP.el("tr", { "data-horizon": String(c.horizon_months), "data-value": String(c.probability) },
      BIP.el("th", { scope: "row" }, t("months")(c.horizon_months)), BIP.el("td", { class: "num" }, BIP.pct(c.probability)),
      BIP.el("td", { class: "num" }, `${BIP.pct(c.interval.low)} – ${BIP.pct(c.interval.high)}`))));
  const host = $("curve"), W = BIP.widthOf(host), H = 170, font = 12, left = 46, right = W - 12, top = 14, bottom = H - 34;
  const pmax = Math.max(0.05, ...curve.map(c => c.interval.high)) * 1.1, Y = p => bottom - p / pmax * (bottom - top);
  const slot = (right - left) / curve.length, bw = Math.min(56, slot * 0.5);
  const svg = BIP.svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true", focusable: "false", class: "chart-svg" });
  const yt = ticks(0, pmax, 4);
  for (const v of yt.values) {
    svg.append(BIP.svg("line", { x1: left, x2: right, y1: Y(v), y2: Y(v), class: "grid-line" }));
    svg.append(BIP.svg("text", { x: left - 4, y: Y(v) + 4, "text-anchor": "end", "font-size": font }, BIP.pct(v, yt.digits)));
  }
  curve.forEach((c, i) => {
    const cx = left + slot * (i + 0.5);
    svg.append(BIP.svg("rect", { x: cx - bw / 2, y: Y(c.probability), width: bw, height: bottom - Y(c.probability), class: c.horizon_months === result.horizon_months ? "bar-total" : "bar-base" }));
    svg.append(BIP.svg("line", { x1: cx, x2: cx, y1: Y(c.interval.low), y2: Y(c.interval.high), class: "whisker" }));
    svg.append(BIP.svg("text", { x: cx, y: bottom + 16, "text-anchor": "middle", "font-size": font }, t(slot < 90 ? "months_short" : "months")(c.horizon_months)));
  });
  svg.append(BIP.svg("line", { x1: left, x2: right, y1: bottom, y2: bottom, class: "axis" }));
  host.replaceChildren(svg);
}

/** The reasons table: the larger contributions one by one, the rest folded into one row. */
function renderContributions(result) {
  const all = result.explanation.contributions;   // sorted by size by the API
  const shown = all.filter(c => Math.abs(c.contribution_pp) >= FOLD_PP).slice(0, MAX_SHOWN);
  const folded = all.filter(c => !shown.includes(c));
  const tbody = document.querySelector("#contributions tbody");
  tbody.replaceChildren();
  for (const c of shown) {
    tbody.append(BIP.el("tr", { "data-group": c.group, "data-value": String(c.contribution), "data-pp": String(c.contribution_pp) },
      BIP.el("th", { scope: "row" }, label(c)),
      BIP.el("td", { class: "num " + (c.contribution >= 0 ? "up" : "down") }, BIP.pp(c.contribution_pp)),
      BIP.el("td", {}, BIP.lang === "da" ? c.reason_da : c.reason_en)));
  }
  if (folded.length) {
    const max = Math.max(...folded.map(c => Math.abs(c.contribution_pp)));
    tbody.append(BIP.el("tr", { "data-group": "other", "data-folded": folded.map(c => c.group).join(" "), "data-max-pp": String(max) },
      BIP.el("th", { scope: "row" }, t("others")(folded.length)), BIP.el("td", { class: "num" }, ""),
      BIP.el("td", {}, t("others_reason")(folded.length, BIP.num(max, 1)))));
  }
  return { shown, folded };
}

const sigmoid = x => 1 / (1 + Math.exp(-x));

/** Ticks at a round step across [lo, hi] (probabilities). */
function ticks(lo, hi, count = 5) {
  const span = Math.max(hi - lo, 1e-4), raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map(s => s * mag).find(s => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Number(v.toFixed(10)));
  return { values: out, digits: Math.max(0, -Math.floor(Math.log10(step * 100) + 1e-9)) };
}

/** The waterfall, drawn at the container's pixel width: from the model's starting point through
 *  each shown factor (and the folded rest) to the score, on a probability axis in per cent. */
function renderWaterfall(result, { shown, folded }) {
  const e = result.explanation, host = $("waterfall"), W = BIP.widthOf(host);
  const narrow = W < 560, font = 13, rowH = narrow ? 40 : 26, labelW = narrow ? 0 : Math.min(240, Math.floor(W * 0.38));
  const steps = [{ name: `${t("start")} ${BIP.pct(sigmoid(e.base_value))}`, from: e.base_value, to: e.base_value, kind: "base" }];
  let x = e.base_value;
  for (const c of shown) { steps.push({ name: label(c), from: x, to: x + c.contribution, kind: c.contribution >= 0 ? "up" : "down" }); x += c.contribution; }
  const rest = folded.reduce((s, c) => s + c.contribution, 0);
  if (folded.length) { steps.push({ name: t("others")(folded.length), from: x, to: x + rest, kind: rest >= 0 ? "up" : "down" }); x += rest; }
  steps.push({ name: `${t("total")} ${BIP.pct(result.probability)}`, from: e.log_odds, to: e.log_odds, kind: "total" });
  const probs = steps.flatMap(s => [sigmoid(s.from), sigmoid(s.to)]);
  const lo = Math.max(0, Math.min(...probs) * 0.9), hi = Math.min(1, Math.max(...probs) * 1.05 + 0.002);
  const top = 8, axisH = 40, plotL = narrow ? 8 : labelW + 12, plotR = W - 16, H = top + steps.length * rowH + axisH;
  const X = p => plotL + (p - lo) / (hi - lo) * (plotR - plotL);
  const svg = BIP.svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true", focusable: "false", class: "chart-svg" });
  const tk = ticks(lo, hi);
  for (const v of tk.values) {
    svg.append(BIP.svg("line", { x1: X(v), x2: X(v), y1: top, y2: top + steps.length * rowH, class: "grid-line" }));
    svg.append(BIP.svg("text", { x: X(v), y: top + steps.length * rowH + 16, "text-anchor": "middle", "font-size": font }, BIP.pct(v, tk.digits)));
  }
  svg.append(BIP.svg("text", { x: (plotL + plotR) / 2, y: H - 6, "text-anchor": "middle", "font-size": font, class: "axis-title" }, `${t("axis")} (%)`));
  steps.forEach((s, i) => {
    const y = top + i * rowH, barY = narrow ? y + 18 : y + 4, barH = narrow ? rowH - 22 : rowH - 8;
    if (narrow) svg.append(BIP.svg("text", { x: plotL, y: y + 13, "font-size": font }, s.name));
    else svg.append(BIP.svg("text", { x: labelW, y: y + rowH / 2 + 4, "text-anchor": "end", "font-size": font }, s.name));
    const a = s.kind === "base" || s.kind === "total" ? lo : sigmoid(s.from), b = sigmoid(s.to);
    svg.append(BIP.svg("rect", { x: Math.min(X(a), X(b)), y: barY, width: Math.max(2, Math.abs(X(b) - X(a))), height: barH, class: `bar-${s.kind}` }));
  });
  host.replaceChildren(svg);
  $("waterfall-caption").textContent = t("waterfall_caption")(BIP.pct(sigmoid(e.base_value)), BIP.pct(result.probability));
}

function renderTrajectory() {
  const points = last.trajectory, body = last.body, card = $("trajectory").closest(".card");
  card.hidden = !points || !points.length;
  if (card.hidden) return;
  const activities = (body && body.activities) || [];
  const tbody = document.querySelector("#trajectory-table tbody");
  tbody.replaceChildren(...points.map(p => BIP.el("tr", { "data-date": p.date, "data-value": String(p.p), "data-low": String(p.low), "data-high": String(p.high) },
    BIP.el("th", { scope: "row" }, BIP.date(p.date)), BIP.el("td", { class: "num" }, BIP.pct(p.p)),
    BIP.el("td", { class: "num" }, `${BIP.pct(p.low)} – ${BIP.pct(p.high)}`))));
  const list = $("activities");
  const day = iso => BIP.el("span", { class: "nowrap" }, BIP.date(iso));
  list.replaceChildren(...(activities.length ? activities.map(a => BIP.el("li", { "data-kind": a.kind }, `${kindLabel(a.kind)}: `,
                                                day(a.start), " – ", a.end ? day(a.end) : t("ongoing")))
                                              : [BIP.el("li", {}, t("no_activities"))]));
  const host = $("trajectory"), W = BIP.widthOf(host), font = 12, lane = 22;
  const left = 46, right = W - 14, top = 12, plotH = 170, axisY = top + plotH;
  const H = axisY + 24 + activities.length * lane + 6;
  const times = points.map(p => Date.parse(p.date));
  activities.forEach(a => { times.push(Date.parse(a.start)); if (a.end) times.push(Date.parse(a.end)); });
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 30 * 864e5);
  const pmax = Math.max(0.05, ...points.map(p => p.high)) * 1.1;
  const X = v => left + (v - t0) / (t1 - t0) * (right - left), Y = p => axisY - p / pmax * plotH;
  const edge = x => x > right - 36 ? "end" : x < left + 36 ? "start" : "middle";   // labels stay inside the chart
  const svg = BIP.svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true", focusable: "false", class: "chart-svg" });
  const yt = ticks(0, pmax, 4);
  for (const v of yt.values) {
    svg.append(BIP.svg("line", { x1: left, x2: right, y1: Y(v), y2: Y(v), class: "grid-line" }));
    svg.append(BIP.svg("text", { x: left - 4, y: Y(v) + 4, "text-anchor": "end", "font-size": font }, BIP.pct(v, yt.digits)));
  }
  // x axis: one tick per year (per quarter when the course is short)
  const y0 = new Date(t0).getUTCFullYear(), y1 = new Date(t1).getUTCFullYear(), quarters = y1 - y0 < 2;
  const xticks = [];
  for (let y = y0; y <= y1; y++) for (let q = 0; q < (quarters ? 4 : 1); q++) {
    const at = Date.UTC(y, q * 3, 1);
    if (at >= t0 && at <= t1) xticks.push({ at, text: quarters ? t("quarter")(q + 1, y) : String(y) });
  }
  const room = quarters ? 84 : 44, every = Math.max(1, Math.ceil(room / ((right - left) / Math.max(1, (t1 - t0) / (quarters ? 91 : 365) / 864e5))));
  xticks.filter((_, i) => i % every === 0).forEach(k => {
    svg.append(BIP.svg("line", { x1: X(k.at), x2: X(k.at), y1: axisY, y2: axisY + 4, class: "axis" }));
    svg.append(BIP.svg("text", { x: X(k.at), y: axisY + 16, "text-anchor": edge(X(k.at)), "font-size": font }, k.text));
  });
  svg.append(BIP.svg("line", { x1: left, x2: right, y1: axisY, y2: axisY, class: "axis" }));
  const band = points.map(p => `${X(Date.parse(p.date))},${Y(p.high)}`).concat(points.slice().reverse().map(p => `${X(Date.parse(p.date))},${Y(p.low)}`));
  svg.append(BIP.svg("polygon", { points: band.join(" "), class: "band" }));
  svg.append(BIP.svg("polyline", { points: points.map(p => `${X(Date.parse(p.date))},${Y(p.p)}`).join(" "), class: "line" }));
  const spacing = (right - left) / Math.max(1, points.length - 1);
  points.forEach((p, i) => {
    const cx = X(Date.parse(p.date)), cy = Y(p.p);
    svg.append(BIP.svg("circle", { cx, cy, r: 4, class: "point", "data-date": p.date }));
    if (spacing >= 48 || i === points.length - 1) svg.append(BIP.svg("text", { x: cx, y: cy - 8, "text-anchor": edge(cx), "font-size": font }, BIP.pct(p.p)));
  });
  activities.forEach((a, i) => {
    const x0 = X(Date.parse(a.start)), x1 = X(a.end ? Date.parse(a.end) : t1), y = axisY + 24 + i * lane;
    svg.append(BIP.svg("rect", { x: x0, y: y + 2, width: Math.max(3, x1 - x0), height: lane - 6, class: "activity" }));
    // the full name after the bar's start where it fits, else ending at the chart's right edge
    const name = kindLabel(a.kind), wide = 0.6 * font * name.length, fits = x0 + 4 + wide <= right;
    svg.append(BIP.svg("text", { x: fits ? x0 + 4 : right, y: y + lane / 2 + 3, "text-anchor": fits ? "start" : "end", "font-size": font }, name));
  });
  host.replaceChildren(svg);
}

/** The citizen's band in the published evaluation's terms: by score (the probability), or, for an
 *  evaluation run without a model, by the mean of the caseworker's latest ratings. */
function publishedBand(bands) {
  const cuts = bands.cuts, labels = bands.labels || ["low", "middle", "high"];
  let x = last.result.probability;
  if (bands.by !== "score") {
    const cw = last.body && last.body.measurements.filter(m => m.respondent === "caseworker" && m.measured_at <= last.result.as_of)
      .sort((a, b) => a.measured_at.localeCompare(b.measured_at)).pop();
    const values = cw ? Object.values(cw.values).filter(v => typeof v === "number") : [];
    if (!values.length) return null;
    x = values.reduce((a, b) => a + b, 0) / values.length;
  }
  let i = 0;
  while (i < cuts.length && x >= cuts[i]) i++;
  return labels[i];
}

/** GET /v1/evaluations/published: per intervention kind, the effect for this citizen's band. */
function renderWhatWorks() {
  const panel = $("what-works"), pub = last.published;
  const band = pub && pub.kinds && pub.bands ? publishedBand(pub.bands) : null;
  // only kinds whose band intervals passed the truth check (evaluation/known_limits.json)
  const rows = band ? Object.entries(pub.kinds).filter(([, k]) => k.band_intervals_checked === true && k.by_band && k.by_band[band])
    .map(([kind, k]) => ({ kind, e: k.by_band[band] })) : [];
  const targeting = targetingFinding(pub);
  $("targeting").hidden = !targeting;
  $("targeting").textContent = targeting || "";
  panel.hidden = !rows.length && !targeting;
  $("what-works-table").hidden = !rows.length;
  if (!rows.length) return;
  document.querySelector("#what-works-table tbody").replaceChildren(...rows.map(({ kind, e }) =>
    BIP.el("tr", { "data-kind": kind, "data-value": String(e.effect_points) },
      BIP.el("th", { scope: "row" }, kindLabel(kind)),
      BIP.el("td", { class: "num" }, BIP.pp(e.effect_points)),
      BIP.el("td", { class: "num" }, `${BIP.num(e.ci_low_points)} – ${BIP.num(e.ci_high_points)}`))));
  const bandName = pub.bands.by === "score" ? t(band) : t("rating_band")(t(band));
  $("what-works-source").textContent = t("ww_source")(BIP.date(pub.published_at), bandName, pub.horizon_months);
}

/** The published targeting rule's leaf for this citizen, in words, or null: only a rule whose
 *  intervals passed the truth check (`checked`), and only when every condition can be read off
 *  the caseworker's latest ratings (or the readiness the evaluation banded by). A group-level
 *  finding with its interval, never an instruction, and never from the score's explanation. */
function targetingFinding(pub) {
  const rule = pub && pub.targeting;
  if (!rule || rule.checked !== true || !last.body) return null;
  const cw = last.body.measurements.filter(m => m.respondent === "caseworker" && m.measured_at <= last.result.as_of)
    .sort((a, b) => a.measured_at.localeCompare(b.measured_at)).pop();
  const indicators = Object.fromEntries(last.model.indicator_schema.indicators.map(i => [i.key, i]));
  const read = feature => {
    if (feature.endsWith("__cw_level")) {
      const key = feature.slice(0, -"__cw_level".length), v = cw && cw.values[key];
      return typeof v === "number" && indicators[key] ? { value: v, label: BIP.lang === "da" ? indicators[key].label_da : indicators[key].label_en } : null;
    }
    if (feature === "readiness" && pub.bands && pub.bands.by !== "score" && cw) {
      const values = Object.values(cw.values).filter(v => typeof v === "number");
      return values.length ? { value: values.reduce((a, b) => a + b, 0) / values.length, readiness: true } : null;
    }
    return null;
  };
  for (const leaf of rule.leaves) {
    const parts = leaf.conditions.map(c => { const [feature, op, cut] = c.split(" "); return { f: read(feature), op, cut: Number(cut) }; });
    if (parts.some(p => !p.f)) return null;              // a condition this page cannot read: say nothing
    if (!parts.every(p => (p.op === "<=") === (p.f.value <= p.cut))) continue;
    const who = parts.map(p => p.f.readiness ? t("cond_readiness")(p.op, BIP.num(p.cut)) : t("cond_rating")(p.f.label, p.op, BIP.num(p.cut, Number.isInteger(p.cut) ? 0 : 1))).join(t("and"));
    const kind = leaf.arm === "none" ? t("targeting_none") : kindLabel(leaf.arm);
    return t("targeting")(who, kind, BIP.num(rule.value.points), BIP.num(rule.value.ci_low_points),
      BIP.num(rule.value.ci_high_points), BIP.num(rule.current_practice.points));
  }
  return null;
}

function renderRatings() {
  const body = last.body, card = $("ratings").closest(".card");
  card.hidden = !body;
  if (!body) return;
  const tbody = document.querySelector("#ratings tbody"), asOf = last.result.as_of;
  const latest = respondent => body.measurements.filter(m => m.respondent === respondent && m.measured_at <= asOf)
    .sort((a, b) => a.measured_at.localeCompare(b.measured_at)).pop();
  const cw = latest("caseworker"), cit = latest("citizen");
  tbody.replaceChildren(...last.model.indicator_schema.indicators.map(i => {
    const value = m => (m && m.values[i.key] != null) ? t("of")(m.values[i.key], i.scale.max) : t("not_answered");
    return BIP.el("tr", { "data-indicator": i.key }, BIP.el("th", { scope: "row" }, BIP.lang === "da" ? i.label_da : i.label_en),
      BIP.el("td", { class: "num" }, value(cit)), BIP.el("td", { class: "num" }, value(cw)));
  }));
}

$("load-demo").addEventListener("click", loadDemo);
$("score").addEventListener("click", scoreChosen);
$("fetch-citizen").addEventListener("click", fetchCitizen);
$("person-id").addEventListener("keydown", ev => { if (ev.key === "Enter") fetchCitizen(); });
$("print").addEventListener("click", () => window.print());
$("history-file").addEventListener("change", async ev => {
  const file = ev.target.files[0]; if (file) $("history").value = await file.text();
});
BIP.wireHeader(T, render);
