"use strict";
const T = {
  da: { title: "BIP-score: kohorter og indsatser", nav_cw: "Sagsbehandler", nav_ev: "Evaluering", language: "Sprog", access: "Adgang",
        api_key: "API-nøgle", cohort: "Kohorte (tabellerne som CSV eller Parquet)", persons: "Personer", measurements: "Målinger",
        activities: "Indsatser", outcomes: "Forløb (register, kun til evaluering)", score: "Beregn scorer", download: "Hent scorer (CSV)",
        distribution: "Fordeling af scorer", group_by: "Opdel efter", group: "Gruppe", mean: "Gennemsnit", median: "Median",
        evaluate: "Evaluér en indsats", kind: "Indsats", run: "Kør evaluering", report: "Rapport",
        evaluate_note: "Bruger de fire tabeller ovenfor. Tager typisk ½-1 minut.", working: "Arbejder …",
        done: n => `${n} borgere scoret.`, eval_done: "Evaluering færdig." },
  en: { title: "BIP score: cohorts and interventions", nav_cw: "Caseworker", nav_ev: "Evaluation", language: "Language", access: "Access",
        api_key: "API key", cohort: "Cohort (the tables as CSV or Parquet)", persons: "Persons", measurements: "Measurements",
        activities: "Activities", outcomes: "Outcomes (register, for evaluation only)", score: "Score cohort", download: "Download scores (CSV)",
        distribution: "Distribution of scores", group_by: "Group by", group: "Group", mean: "Mean", median: "Median",
        evaluate: "Evaluate an intervention", kind: "Intervention", run: "Run evaluation", report: "Report",
        evaluate_note: "Uses the four tables above. Usually takes half a minute to a minute.", working: "Working …",
        done: n => `${n} citizens scored.`, eval_done: "Evaluation done." },
};
const t = k => T[BIP.lang][k];
let scores = [];

function form(names) {
  const data = new FormData();
  for (const name of names) { const f = document.getElementById(name).files[0]; if (f) data.append(name, f, f.name); }
  return data;
}

async function scoreCohort() {
  const status = document.getElementById("status"), error = document.getElementById("error");
  error.textContent = ""; status.textContent = t("working");
  try {
    const answer = await BIP.call("/v1/cohorts/score?with_groups=true", { method: "POST", body: form(["persons", "measurements", "activities"]) });
    scores = answer.scores;
    document.getElementById("download").disabled = false;
    status.textContent = t("done")(scores.length);
    render();
  } catch (e) { status.textContent = ""; error.textContent = e.message; }
}

function quantile(sorted, q) { const i = (sorted.length - 1) * q, lo = Math.floor(i); return sorted[lo] + (sorted[Math.ceil(i)] - sorted[lo]) * (i - lo); }

function render() {
  if (!scores.length) return;
  document.getElementById("scores").hidden = false;
  const key = document.getElementById("group-by").value, groups = {};
  for (const s of scores) (groups[s[key]] = groups[s[key]] || []).push(s.probability);
  const tbody = document.querySelector("#groups tbody");
  tbody.replaceChildren();
  for (const [name, values] of Object.entries(groups).sort()) {
    const v = values.slice().sort((a, b) => a - b), mean = v.reduce((a, b) => a + b, 0) / v.length;
    tbody.append(BIP.el("tr", { "data-group": name }, BIP.el("td", {}, name), BIP.el("td", { class: "num" }, v.length),
      ...[mean, quantile(v, .25), quantile(v, .5), quantile(v, .75)].map(x => BIP.el("td", { class: "num" }, BIP.pct(x)))));
  }
  const bins = 20, width = 640, height = 180, counts = new Array(bins).fill(0);
  const top = Math.max(...scores.map(s => s.probability));
  scores.forEach(s => counts[Math.min(bins - 1, Math.floor(s.probability / top * bins))]++);
  const max = Math.max(...counts), svg = BIP.el("svg", { svg: true, viewBox: `0 0 ${width} ${height}`, width: "100%" });
  counts.forEach((c, i) => svg.append(BIP.el("rect", { svg: true, x: 40 + i * (width - 60) / bins, y: height - 25 - c / max * (height - 40),
    width: (width - 60) / bins - 2, height: c / max * (height - 40), fill: "#0b5cad" })));
  svg.append(BIP.el("text", { svg: true, x: 40, y: height - 8 }, "0 %"));
  svg.append(BIP.el("text", { svg: true, x: width - 60, y: height - 8 }, BIP.pct(top, 0)));
  document.getElementById("histogram").replaceChildren(svg);
}

function download() {
  const columns = Object.keys(scores[0]);
  const csv = [columns.join(",")].concat(scores.map(s => columns.map(c => JSON.stringify(s[c] ?? "")).join(","))).join("\n");
  const link = BIP.el("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: "scores.csv" });
  document.body.append(link); link.click(); link.remove();
}

async function evaluate() {
  const status = document.getElementById("status"), error = document.getElementById("error");
  error.textContent = ""; status.textContent = t("working");
  try {
    const data = form(["persons", "measurements", "activities", "outcomes"]);
    data.append("kind", document.getElementById("kind").value);
    const html = await BIP.call("/v1/evaluations?format=html", { method: "POST", body: data });
    document.getElementById("report-section").hidden = false;
    document.getElementById("report").srcdoc = html;
    status.textContent = t("eval_done");
  } catch (e) { status.textContent = ""; error.textContent = e.message; }
}

document.getElementById("score").addEventListener("click", scoreCohort);
document.getElementById("download").addEventListener("click", download);
document.getElementById("evaluate").addEventListener("click", evaluate);
document.getElementById("group-by").addEventListener("change", render);
BIP.wireHeader(T, render);
