"use strict";
const T = {
  da: { title: "BIP-score: borgerens jobchance", nav_cw: "Sagsbehandler", nav_ev: "Evaluering", language: "Sprog",
        access: "Adgang", api_key: "API-nøgle", citizen: "Borger", demo: "Borger fra demo-kohorten", choose: "Vælg …",
        load_list: "Hent liste", paste: "Eller indsæt en historik (JSON, samme format som POST /v1/score)",
        upload: "eller upload en fil", score: "Beregn score", result: "Resultat",
        changed: "Hvad har ændret sig siden sidste måling", waterfall: "Hvad trækker scoren op og ned",
        waterfall_caption: "Bidrag i log-odds fra gennemsnittet (grundværdi) til borgerens score. Grøn hæver, rød sænker.",
        what: "Hvad", pp: "Procentpoint", why: "Hvorfor", trajectory: "Scoren over tid",
        trajectory_caption: "Score ved hver måling. Skraverede felter: indsatser.",
        ratings: "Borgerens og sagsbehandlerens vurdering (seneste måling)", indicator: "Indikator",
        by_citizen: "Borger", by_caseworker: "Sagsbehandler",
        low: "Lav chance", middle: "Middel chance", high: "Høj chance",
        words: (p, h) => `Sandsynlighed for job eller uddannelse inden for ${h} måneder`,
        interval: (lo, hi) => `Interval (modelusikkerhed): ${lo} – ${hi}`,
        meta: (m, d) => `Model ${m.name} version ${m.version} · vurderet pr. ${d}`,
        first: "Første måling: ingen tidligere score at sammenligne med.",
        since: (d, p) => `Ved målingen ${d} var scoren ${p}.`, base: "Grundværdi", total: "Borgerens score",
        loading: "Beregner …", scored: "Færdig.", loaded: n => `${n} borgere hentet.`, others: "Øvrige" },
  en: { title: "BIP score: the citizen's job chances", nav_cw: "Caseworker", nav_ev: "Evaluation", language: "Language",
        access: "Access", api_key: "API key", citizen: "Citizen", demo: "Citizen from the demo cohort", choose: "Choose …",
        load_list: "Load list", paste: "Or paste a history (JSON, the POST /v1/score format)",
        upload: "or upload a file", score: "Score", result: "Result",
        changed: "What changed since the last measurement", waterfall: "What pushes the score up and down",
        waterfall_caption: "Contributions in log-odds from the average (base value) to the citizen's score. Green raises, red lowers.",
        what: "What", pp: "Percentage points", why: "Why", trajectory: "The score over time",
        trajectory_caption: "Score at each measurement. Shaded: interventions.",
        ratings: "The citizen's and the caseworker's ratings (latest measurement)", indicator: "Indicator",
        by_citizen: "Citizen", by_caseworker: "Caseworker",
        low: "Low chance", middle: "Medium chance", high: "High chance",
        words: (p, h) => `Probability of a job or education within ${h} months`,
        interval: (lo, hi) => `Interval (model uncertainty): ${lo} – ${hi}`,
        meta: (m, d) => `Model ${m.name} version ${m.version} · as of ${d}`,
        first: "First measurement: no earlier score to compare with.",
        since: (d, p) => `At the measurement on ${d} the score was ${p}.`, base: "Base value", total: "The citizen's score",
        loading: "Scoring …", scored: "Done.", loaded: n => `${n} citizens loaded.`, others: "Other" },
};
const t = k => T[BIP.lang][k];
let last = null;  // {body, result, schema, trajectory}

function band(p) { return p < 0.05 ? t("low") : p < 0.15 ? t("middle") : t("high"); }

async function loadDemo() {
  const select = document.getElementById("demo-citizen");
  const list = await BIP.call("/v1/demo/citizens");
  for (const c of list.citizens) select.append(BIP.el("option", { value: c.person_id }, `${c.person_id} · ${c.jobcenter} · ${c.measurements}`));
  document.getElementById("status").textContent = t("loaded")(list.citizens.length);
}

async function chosenBody() {
  const id = document.getElementById("demo-citizen").value;
  const text = document.getElementById("history").value.trim();
  if (text) return JSON.parse(text);
  if (id) return BIP.call(`/v1/demo/citizens/${encodeURIComponent(id)}`);
  throw new Error("Vælg en borger eller indsæt en historik / choose a citizen or paste a history");
}

async function score() {
  const status = document.getElementById("status"), error = document.getElementById("error");
  error.textContent = ""; status.textContent = t("loading");
  try {
    const body = await chosenBody();
    const [result, model] = await Promise.all([BIP.call("/v1/score", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
                                               BIP.call("/v1/model")]);
    const dates = [...new Set(body.measurements.map(m => m.measured_at))].sort().filter(d => d <= result.as_of);
    const trajectory = [];
    for (const d of dates) {
      const r = d === result.as_of ? result : await BIP.call("/v1/score", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(Object.assign({}, body, { as_of: d })) });
      trajectory.push({ date: d, p: r.probability });
    }
    last = { body, result, schema: model.indicator_schema, trajectory };
    render();
    status.textContent = t("scored");
  } catch (e) { status.textContent = ""; error.textContent = e.message; }
}

function render() {
  if (!last) return;
  const { result, body, schema, trajectory } = last;
  document.getElementById("result").hidden = false;
  const p = result.probability;
  document.getElementById("words").textContent = `${band(p)} · ${t("words")(p, result.horizon_months)}`;
  const prob = document.getElementById("probability");
  prob.textContent = BIP.pct(p); prob.dataset.value = String(p);
  const interval = document.getElementById("interval");
  interval.textContent = t("interval")(BIP.pct(result.interval.low), BIP.pct(result.interval.high));
  interval.dataset.low = String(result.interval.low); interval.dataset.high = String(result.interval.high);
  document.getElementById("meta").textContent = t("meta")(result.model, result.as_of);
  renderChange(result);
  renderContributions(result);
  renderWaterfall(result);
  renderTrajectory(trajectory, body.activities || []);
  renderRatings(body, schema, result.as_of);
}

function renderChange(result) {
  const c = result.change, list = document.getElementById("drivers");
  list.replaceChildren();
  document.getElementById("change-summary").textContent = c.previous_as_of ? t("since")(c.previous_as_of, BIP.pct(c.previous_probability)) : t("first");
  for (const d of c.drivers) {
    const label = BIP.lang === "da" ? d.label_da : d.label_en;
    const sign = d.change_pp >= 0 ? "+" : "−";
    const size = Math.abs(d.change_pp).toFixed(Math.abs(d.change_pp) < 0.1 ? 2 : 1);
    list.append(BIP.el("li", { class: d.change_pp >= 0 ? "up" : "down", "data-group": d.group },
                       `${label}: ${sign}${BIP.lang === "da" ? size.replace(".", ",") : size} ${BIP.lang === "da" ? "procentpoint" : "percentage points"}`));
  }
}

function renderContributions(result) {
  const tbody = document.querySelector("#contributions tbody");
  tbody.replaceChildren();
  for (const c of result.explanation.contributions.slice(0, 12)) {
    const pp = (c.contribution_pp >= 0 ? "+" : "−") + Math.abs(c.contribution_pp).toFixed(1).replace(".", BIP.lang === "da" ? "," : ".");
    tbody.append(BIP.el("tr", { "data-group": c.group, "data-value": String(c.contribution) },
      BIP.el("td", {}, BIP.lang === "da" ? c.label_da : c.label_en),
      BIP.el("td", { class: "num " + (c.contribution >= 0 ? "up" : "down") }, pp),
      BIP.el("td", {}, BIP.lang === "da" ? c.reason_da : c.reason_en)));
  }
}

function renderWaterfall(result) {
  const e = result.explanation, top = e.contributions.slice(0, 10);
  const rest = e.contributions.slice(10).reduce((s, c) => s + c.contribution, 0);
  const steps = top.map(c => ({ label: BIP.lang === "da" ? c.label_da : c.label_en, value: c.contribution }));
  if (Math.abs(rest) > 1e-9) steps.push({ label: t("others"), value: rest });
  const width = 640, row = 22, left = 230, height = (steps.length + 2) * row + 30;
  let x = e.base_value;
  const xs = [e.base_value, e.log_odds]; steps.forEach(s => { x += s.value; xs.push(x); });
  const lo = Math.min(...xs) - 0.1, hi = Math.max(...xs) + 0.1, scale = v => left + (v - lo) / (hi - lo) * (width - left - 20);
  const svg = BIP.el("svg", { svg: true, viewBox: `0 0 ${width} ${height}`, width: "100%" });
  const bar = (i, from, to, colour, label) => {
    const y = 10 + i * row;
    svg.append(BIP.el("text", { svg: true, x: left - 6, y: y + 14, "text-anchor": "end" }, label));
    svg.append(BIP.el("rect", { svg: true, x: Math.min(scale(from), scale(to)), y: y + 3, width: Math.max(2, Math.abs(scale(to) - scale(from))), height: row - 6, fill: colour }));
  };
  bar(0, lo, e.base_value, "#8899aa", `${t("base")} (${BIP.pct(1 / (1 + Math.exp(-e.base_value)))})`);
  x = e.base_value;
  steps.forEach((s, i) => { bar(i + 1, x, x + s.value, s.value >= 0 ? "#2e8b47" : "#c0392b", s.label); x += s.value; });
  bar(steps.length + 1, lo, e.log_odds, "#0b5cad", `${t("total")} (${BIP.pct(result.probability)})`);
  document.getElementById("waterfall").replaceChildren(svg);
}

function renderTrajectory(points, activities) {
  const width = 640, height = 220, left = 50, bottom = 30, top = 10;
  const times = points.map(p => Date.parse(p.date));
  activities.forEach(a => { times.push(Date.parse(a.start)); if (a.end) times.push(Date.parse(a.end)); });
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 864e5);
  const pmax = Math.max(0.05, ...points.map(p => p.p)) * 1.15;
  const X = v => left + (v - t0) / (t1 - t0) * (width - left - 15), Y = p => height - bottom - p / pmax * (height - bottom - top);
  const svg = BIP.el("svg", { svg: true, viewBox: `0 0 ${width} ${height}`, width: "100%" });
  activities.forEach(a => {
    const x0 = X(Date.parse(a.start)), x1 = X(a.end ? Date.parse(a.end) : t1);
    svg.append(BIP.el("rect", { svg: true, x: x0, y: top, width: Math.max(2, x1 - x0), height: height - bottom - top, fill: "#f2c94c", opacity: 0.35 }));
    svg.append(BIP.el("text", { svg: true, x: x0 + 2, y: top + 12 }, a.kind));
  });
  svg.append(BIP.el("line", { svg: true, x1: left, y1: height - bottom, x2: width - 10, y2: height - bottom, stroke: "#555" }));
  [0, pmax / 2, pmax].forEach(v => svg.append(BIP.el("text", { svg: true, x: 4, y: Y(v) + 4 }, BIP.pct(v, 0))));
  svg.append(BIP.el("polyline", { svg: true, fill: "none", stroke: "#0b5cad", "stroke-width": 2, points: points.map(p => `${X(Date.parse(p.date))},${Y(p.p)}`).join(" ") }));
  points.forEach(p => svg.append(BIP.el("circle", { svg: true, cx: X(Date.parse(p.date)), cy: Y(p.p), r: 4, fill: "#0b5cad" })));
  [points[0], points[points.length - 1]].forEach(p => svg.append(BIP.el("text", { svg: true, x: X(Date.parse(p.date)) - 20, y: height - 10 }, p.date)));
  document.getElementById("trajectory").replaceChildren(svg);
}

function renderRatings(body, schema, asOf) {
  const tbody = document.querySelector("#ratings tbody");
  tbody.replaceChildren();
  const latest = respondent => body.measurements.filter(m => m.respondent === respondent && m.measured_at <= asOf)
                                  .sort((a, b) => a.measured_at.localeCompare(b.measured_at)).pop();
  const cw = latest("caseworker"), cit = latest("citizen");
  for (const i of schema.indicators) {
    const value = m => (m && m.values[i.key] != null) ? `${m.values[i.key]} / ${i.scale.max}` : "–";
    tbody.append(BIP.el("tr", { "data-indicator": i.key }, BIP.el("td", {}, BIP.lang === "da" ? i.label_da : i.label_en),
                        BIP.el("td", { class: "num" }, value(cit)), BIP.el("td", { class: "num" }, value(cw))));
  }
}

document.getElementById("load-demo").addEventListener("click", () => loadDemo().catch(e => { document.getElementById("error").textContent = e.message; }));
document.getElementById("score").addEventListener("click", score);
document.getElementById("history-file").addEventListener("change", async ev => {
  const file = ev.target.files[0]; if (file) document.getElementById("history").value = await file.text();
});
BIP.wireHeader(T, render);
