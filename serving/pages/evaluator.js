// The evaluator page: score an uploaded cohort and evaluate an intervention, both as jobs with
// progress and cancel (POST -> 202 {job_id, status_url}; routes that answer at once still work).
"use strict";
const T = {
  da: {
    page_title: "BIP-score · evaluering", title: "BIP-score: kohorter og indsatser",
    cohort: "Kohorte (tabellerne som CSV eller Parquet)", persons: "Personer", measurements: "Målinger", activities: "Indsatser",
    outcomes: "Forløb (register, kun til evaluering)", score: "Beregn scorer", download_csv: "Hent scorer (CSV)",
    download_parquet: "Hent scorer (Parquet)", evaluate: "Evaluér en indsats", kind: "Indsats", run: "Kør evaluering",
    evaluate_note: "Bruger de fire tabeller ovenfor. Kører som et job; du kan følge og afbryde det her.",
    progress: "Fremdrift", cancel: "Afbryd", distribution: "Fordeling af scorer", group_by: "Opdel efter",
    g_jobcenter: "Jobcenter", g_gender: "Køn", g_age_band: "Aldersgruppe", g_origin: "Herkomst",
    histogram_caption: "Antal borgere efter score (sandsynlighed for job eller uddannelse). Tabellen har tallene pr. gruppe.",
    axis_count: "Antal borgere", axis_score: "Score",
    group: "Gruppe", count: "Antal", mean: "Gennemsnit", q25: "25 %-fraktil", median: "Median", q75: "75 %-fraktil",
    report: "Rapport", report_title: "Evalueringsrapport",
    working: "Arbejder …", queued: "I kø …", running: p => p === null ? "Kører …" : `Kører … ${Math.round(100 * p)} %`,
    done: n => `${n} borgere scoret.`, eval_done: "Evalueringen er færdig. Rapporten står nedenfor.",
    cancelled: "Afbrudt.", failed: "Jobbet fejlede. Prøv igen, eller kontakt en administrator.", downloaded: f => `${f} hentet.`,
    values: { female: "kvinde", male: "mand", danish: "dansk", western: "vestlig", non_western: "ikke-vestlig" },
  },
  en: {
    page_title: "BIP score · evaluation", title: "BIP score: cohorts and interventions",
    cohort: "Cohort (the tables as CSV or Parquet)", persons: "Persons", measurements: "Measurements", activities: "Activities",
    outcomes: "Outcomes (register, for evaluation only)", score: "Score cohort", download_csv: "Download scores (CSV)",
    download_parquet: "Download scores (Parquet)", evaluate: "Evaluate an intervention", kind: "Intervention", run: "Run evaluation",
    evaluate_note: "Uses the four tables above. Runs as a job; you can follow and cancel it here.",
    progress: "Progress", cancel: "Cancel", distribution: "Distribution of scores", group_by: "Group by",
    g_jobcenter: "Jobcentre", g_gender: "Gender", g_age_band: "Age band", g_origin: "Origin",
    histogram_caption: "Number of citizens by score (probability of a job or education). The table has the figures per group.",
    axis_count: "Citizens", axis_score: "Score",
    group: "Group", count: "Count", mean: "Mean", q25: "25th percentile", median: "Median", q75: "75th percentile",
    report: "Report", report_title: "Evaluation report",
    working: "Working …", queued: "Queued …", running: p => p === null ? "Running …" : `Running … ${Math.round(100 * p)}%`,
    done: n => `${n} citizens scored.`, eval_done: "The evaluation is done. The report is below.",
    cancelled: "Cancelled.", failed: "The job failed. Try again, or contact an administrator.", downloaded: f => `${f} downloaded.`,
    values: { female: "female", male: "male", danish: "Danish", western: "Western", non_western: "non-Western" },
  },
};
const t = k => BIP.t(k);
const $ = id => document.getElementById(id);
let scores = [];
let statusKey = null, lastError = null;
let control = null;   // the running job: {cancel, jobId}

function setStatus(key, ...args) { statusKey = key ? [key, args] : null; showStatus(); }
function showStatus() {
  if (!statusKey) { $("status").textContent = ""; return; }
  const v = t(statusKey[0]);
  $("status").textContent = typeof v === "function" ? v(...statusKey[1]) : v;
}
function setError(error) { lastError = error; if (error) BIP.showError($("error"), error); else $("error").replaceChildren(); }

function form(names) {
  const data = new FormData();
  for (const name of names) { const f = $(name).files[0]; if (f) data.append(name, f, f.name); }
  return data;
}

/** One job at a time from this page: progress bar and cancel button while it runs. */
async function runJob(path, options, resultQuery) {
  setError(null); setStatus("working");
  control = { resultQuery };
  const panel = $("job"), bar = $("progress");
  panel.hidden = false; bar.removeAttribute("value");
  ["score", "evaluate"].forEach(id => { $(id).disabled = true; });
  try {
    return await BIP.job(path, options, (state, progress, message) => {
      if (progress !== null) bar.value = progress; else bar.removeAttribute("value");
      setStatus(state === "queued" ? "queued" : "running", progress);
    }, control);
  } catch (e) {
    if (e.cancelled) setStatus("cancelled");
    else if (e.jobFailed) setStatus("failed");   // the job's own message is English: not shown on a Danish page
    else { setStatus(null); setError(e); }
    return null;
  } finally {
    panel.hidden = true; control = null;
    ["score", "evaluate"].forEach(id => { $(id).disabled = false; });
  }
}

async function scoreCohort() {
  const answer = await runJob("/v1/cohorts/score?with_groups=true", { method: "POST", body: form(["persons", "measurements", "activities"]) });
  if (!answer) return;
  scores = answer.body.scores;
  ["download-csv", "download-parquet"].forEach(id => { $(id).disabled = false; });
  setStatus("done", scores.length);
  render();
  $("scores-heading").focus();
}

async function download(format) {
  const answer = await runJob(`/v1/cohorts/score?with_groups=true&format=${format}`,
                              { method: "POST", body: form(["persons", "measurements", "activities"]) });
  if (!answer) return;
  const blob = answer.body instanceof Blob ? answer.body : new Blob([answer.body], { type: answer.type });
  const name = `scores.${format}`;
  const link = BIP.el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(link); link.click(); link.remove();
  setStatus("downloaded", name);
}

function quantile(sorted, q) { const i = (sorted.length - 1) * q, lo = Math.floor(i); return sorted[lo] + (sorted[Math.ceil(i)] - sorted[lo]) * (i - lo); }
const valueName = v => (t("values")[v]) || String(v);

function render() {
  showStatus(); if (lastError) BIP.showError($("error"), lastError);
  const kind = $("kind"), chosen = kind.value;
  kind.replaceChildren(...Object.keys(KIND_LABELS).map(k => BIP.el("option", { value: k }, KIND_LABELS[k][BIP.lang])));
  if (chosen) kind.value = chosen;
  $("report").title = t("report_title");
  if (!scores.length) return;
  $("scores").hidden = false;
  const key = $("group-by").value, groups = {};
  for (const s of scores) (groups[s[key]] = groups[s[key]] || []).push(s.probability);
  const tbody = document.querySelector("#groups tbody");
  tbody.replaceChildren(...Object.entries(groups).sort().map(([name, values]) => {
    const v = values.slice().sort((a, b) => a - b), mean = v.reduce((a, b) => a + b, 0) / v.length;
    return BIP.el("tr", { "data-group": name }, BIP.el("th", { scope: "row" }, valueName(name)), BIP.el("td", { class: "num" }, v.length),
      ...[mean, quantile(v, .25), quantile(v, .5), quantile(v, .75)].map(x => BIP.el("td", { class: "num", "data-value": String(x) }, BIP.pct(x))));
  }));
  renderHistogram();
}

function renderHistogram() {
  const host = $("histogram"), W = BIP.widthOf(host), H = 200, font = 12, left = 48, right = W - 12, top = 10, bottom = H - 40;
  const bins = W < 500 ? 12 : 20, topP = Math.max(...scores.map(s => s.probability)), counts = new Array(bins).fill(0);
  scores.forEach(s => counts[Math.min(bins - 1, Math.floor(s.probability / topP * bins))]++);
  const max = Math.max(...counts), bw = (right - left) / bins;
  const svg = BIP.svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true", focusable: "false", class: "chart-svg" });
  counts.forEach((c, i) => svg.append(BIP.svg("rect", { x: left + i * bw + 1, y: bottom - c / max * (bottom - top), width: Math.max(1, bw - 2), height: c / max * (bottom - top), class: "bar-total" })));
  svg.append(BIP.svg("line", { x1: left, x2: right, y1: bottom, y2: bottom, class: "axis" }));
  [0, 0.5, 1].forEach(f => {
    svg.append(BIP.svg("text", { x: left + f * (right - left), y: bottom + 15, "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle", "font-size": font }, BIP.pct(f * topP, 0)));
    svg.append(BIP.svg("text", { x: left - 4, y: bottom - f * (bottom - top) + 4, "text-anchor": "end", "font-size": font }, String(Math.round(f * max))));
  });
  svg.append(BIP.svg("text", { x: (left + right) / 2, y: H - 6, "text-anchor": "middle", "font-size": font }, t("axis_score")));
  host.replaceChildren(svg);
}

async function evaluate() {
  const data = form(["persons", "measurements", "activities", "outcomes"]);
  data.append("kind", $("kind").value);
  const answer = await runJob("/v1/evaluations?format=html", { method: "POST", body: data }, "?format=html");
  if (!answer) return;
  let html = answer.body;
  if (answer.body && typeof answer.body === "object" && !(answer.body instanceof Blob)) html = answer.body.report_html || null;
  if (answer.body instanceof Blob) html = await answer.body.text();
  $("report-section").hidden = false;
  // sandbox="" (no scripts, no same origin): the report is shown, never run
  $("report").srcdoc = html || `<pre>${JSON.stringify(answer.body, null, 2).replace(/[<&]/g, c => c === "<" ? "&lt;" : "&amp;")}</pre>`;
  setStatus("eval_done");
  $("report-heading").focus();
}

$("score").addEventListener("click", scoreCohort);
$("download-csv").addEventListener("click", () => download("csv"));
$("download-parquet").addEventListener("click", () => download("parquet"));
$("evaluate").addEventListener("click", evaluate);
$("cancel").addEventListener("click", () => { if (control && control.cancel) control.cancel().catch(e => setError(e)); });
$("group-by").addEventListener("change", render);
BIP.wireHeader(T, render);
