// Shared by both pages: the API key (sessionStorage only), language, numbers in each language,
// API calls with errors in words, jobs, and small DOM/SVG helpers. No inline scripts or styles:
// the pages run under a strict Content-Security-Policy.
"use strict";

// Words both pages use; each page adds its own set (BIP.texts) before wireHeader.
const COMMON_TEXTS = {
  da: {
    skip: "Spring til indhold", nav: "Sider", nav_cw: "Sagsbehandler", nav_ev: "Evaluering", language: "Sprog",
    access: "Adgang", api_key: "API-nøgle", api_key_help: "Nøglen gemmes kun i denne fane og slettes, når fanen lukkes.",
    pp: "procentpoint", of100: n => `${n} af 100`, under1of100: "under 1 af 100",
    http: {
      0: "Serveren kan ikke nås. Tjek forbindelsen og prøv igen.",
      400: "Forespørgslen kunne ikke læses.",
      401: "API-nøglen mangler eller er ukendt. Skriv en gyldig nøgle under Adgang.",
      403: "Din API-nøgle har ikke adgang til denne funktion.",
      404: "Det findes ikke på serveren.",
      409: "Handlingen kunne ikke gennemføres lige nu.",
      413: "Filen eller forespørgslen er for stor.",
      422: "Oplysningerne har fejl:",
      429: "Serveren har travlt. Prøv igen om lidt.",
      500: "Der skete en fejl på serveren.",
      503: "Tjenesten er ikke klar (ingen model indlæst). Prøv igen senere.",
    },
    bad_json: "Teksten er ikke gyldig JSON. Tjek at den er kopieret helt.",
    value: "værdi", allowed: "tilladt",
    fields: {
      person: "borgeren", measurements: "målingerne", activities: "indsatserne", as_of: "vurderingsdatoen",
      body: "forespørgslen", person_id: "borgerens id", jobcenter: "jobcenter", birth_year: "fødselsår",
      gender: "køn", origin: "herkomst", benefit_group: "ydelsesgruppe", enrolled_on: "startdato i forløbet",
      measured_at: "dato for målingen", respondent: "hvem der har svaret", caseworker_id: "sagsbehandlerens id",
      values: "svarene", kind: "type", start: "startdato", end: "slutdato", month: "måned", status: "status",
      persons: "personer", outcomes: "forløb", cohort: "kohorten", treatment: "behandling", outcome: "udfald",
      line: "linje",
    },
    nth: (what, n) => ({ measurements: `måling nr. ${n}`, activities: `indsats nr. ${n}`, persons: `person nr. ${n}`,
                         outcomes: `forløb nr. ${n}`, line: `linje ${n}` }[what] || `${what} nr. ${n}`),
    allowed_patterns: [
      [/^an integer from (-?\d+) to (-?\d+)$/, m => `et helt tal fra ${m[1]} til ${m[2]}`],
      [/^a date on or before today \((.+)\)$/, m => `en dato senest i dag (${m[1]})`],
      [/^a date on or after the first measurement \((.+)\)$/, m => `en dato på eller efter første måling (${m[1]})`],
      [/^at least one caseworker measurement$/, () => "mindst én måling fra sagsbehandleren"],
      [/^Input should be a valid date.*$/, () => "en dato som ÅÅÅÅ-MM-DD"],
      [/^Input should be a valid integer.*$/, () => "et helt tal"],
      [/^Input should be (.+)$/, m => `en af: ${m[1].replace(/ or /g, ", ")}`],
      [/^Field required$/, () => "skal udfyldes"],
      [/^Extra inputs are not permitted$/, () => "feltet kendes ikke og skal fjernes"],
      [/^a \.csv or \.parquet file$/, () => "en .csv- eller .parquet-fil"],
      [/^a date \(YYYY-MM-DD\)$/, () => "en dato som ÅÅÅÅ-MM-DD"],
      [/^a date on or after the person's enrolled_on$/, () => "en dato på eller efter borgerens startdato i forløbet"],
      [/^a whole year from (\d+) to (\d+)$/, m => `et årstal fra ${m[1]} til ${m[2]}`],
      [/^the first day of a month \(YYYY-MM-01\)$/, () => "den første dag i en måned (ÅÅÅÅ-MM-01)"],
      [/^one of \[(.*)\]$/, m => `en af: ${m[1]}`],
      [/^an indicator of schema '([^']+)': (.*)$/, m => `en indikator i skemaet ${m[1]}: ${m[2]}`],
    ],
  },
  en: {
    skip: "Skip to content", nav: "Pages", nav_cw: "Caseworker", nav_ev: "Evaluation", language: "Language",
    access: "Access", api_key: "API key", api_key_help: "The key is kept in this tab only and is deleted when the tab closes.",
    pp: "percentage points", of100: n => `${n} in 100`, under1of100: "fewer than 1 in 100",
    http: {
      0: "The server cannot be reached. Check the connection and try again.",
      400: "The request could not be read.",
      401: "The API key is missing or unknown. Enter a valid key under Access.",
      403: "Your API key does not give access to this.",
      404: "It does not exist on the server.",
      409: "This could not be done right now.",
      413: "The file or request is too large.",
      422: "The details have problems:",
      429: "The server is busy. Try again in a moment.",
      500: "Something went wrong on the server.",
      503: "The service is not ready (no model loaded). Try again later.",
    },
    bad_json: "The text is not valid JSON. Check that all of it was copied.",
    value: "value", allowed: "allowed",
    fields: {
      person: "the citizen", measurements: "the measurements", activities: "the activities", as_of: "the assessment date",
      body: "the request", person_id: "the citizen's id", jobcenter: "jobcentre", birth_year: "year of birth",
      gender: "gender", origin: "origin", benefit_group: "benefit group", enrolled_on: "date enrolled",
      measured_at: "date of the measurement", respondent: "who answered", caseworker_id: "the caseworker's id",
      values: "the answers", kind: "kind", start: "start date", end: "end date", month: "month", status: "status",
      persons: "persons", outcomes: "outcomes", cohort: "the cohort", treatment: "treatment", outcome: "outcome",
      line: "line",
    },
    nth: (what, n) => ({ measurements: `measurement ${n}`, activities: `activity ${n}`, persons: `person ${n}`,
                         outcomes: `outcome row ${n}`, line: `line ${n}` }[what] || `${what} ${n}`),
    allowed_patterns: [],
  },
};

// Intervention kinds in words; the same names as serving/texts.py gives the score's reasons
// (tests/test_pages.py checks that the two agree).
const KIND_LABELS = {
  virksomhedspraktik: { da: "Virksomhedspraktik", en: "Company internship" },
  loentilskud: { da: "Løntilskud", en: "Wage-subsidised job" },
  mentor: { da: "Mentor", en: "Mentor" },
  opkvalificering: { da: "Opkvalificering", en: "Upgrading (courses, education)" },
  sundhed_social: { da: "Sundheds- og sociale indsatser", en: "Health and social activities" },
};

class ApiError extends Error {
  /** An API answer that is not 2xx; `problems` are the 422 {field, value, allowed} items. */
  constructor(status, detail, problems) {
    super(`${status}`);
    this.status = status; this.detail = detail; this.problems = problems || [];
  }
}

const BIP = {
  lang: sessionStorage.getItem("bip-lang") === "en" ? "en" : "da",
  texts: null,
  indicatorLabels: {},   // key -> {da, en}, from /v1/model's schema, for field names in errors
  key() { return sessionStorage.getItem("bip-key") || ""; },
  setKey(value) { sessionStorage.setItem("bip-key", value.trim()); },
  setLang(value) { this.lang = value; sessionStorage.setItem("bip-lang", value); },
  t(k) { const own = this.texts && this.texts[this.lang][k]; return own !== undefined ? own : COMMON_TEXTS[this.lang][k]; },

  /** fetch with the key; returns {status, body, type}; throws ApiError for non-2xx answers. */
  async request(path, options = {}) {
    const headers = Object.assign({ "X-API-Key": this.key() }, options.headers || {});
    let response;
    try { response = await fetch(path, Object.assign({}, options, { headers })); }
    catch (e) {
      if (e.name === "AbortError") throw Object.assign(new ApiError(409, "cancelled"), { cancelled: true });
      throw new ApiError(0, String(e));
    }
    const type = response.headers.get("content-type") || "";
    let body;
    if (type.includes("json")) body = await response.json().catch(() => null);
    else if (type.startsWith("text/")) body = await response.text();
    else body = await response.blob();
    if (!response.ok) throw new ApiError(response.status, body && body.detail, body && body.errors);
    return { status: response.status, body, type };
  },
  async call(path, options = {}) { return (await this.request(path, options)).body; },

  /** Run a job: POST answers 202 {job_id, status_url}; poll until done; then fetch the result.
   *  A POST answered directly (200, no job) is returned as it is, so today's routes keep working.
   *  onProgress(state, progress 0..1, message); signal.cancelled stops polling and DELETEs the job. */
  async job(path, options, onProgress, control = {}) {
    // until the POST is answered, cancelling aborts it; after a 202, it DELETEs the job
    const aborter = new AbortController();
    control.cancel = async () => aborter.abort();
    const first = await this.request(path, Object.assign({}, options, { signal: aborter.signal }));
    if (first.status !== 202 || !first.body || !first.body.job_id) return first;
    const id = first.body.job_id, statusUrl = first.body.status_url || `/v1/jobs/${encodeURIComponent(id)}`;
    control.cancel = () => this.request(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
    control.jobId = id;
    let wait = 400;
    for (;;) {
      const s = (await this.request(statusUrl)).body;
      onProgress && onProgress(s.state, typeof s.progress === "number" ? s.progress : null, s.message || "");
      if (s.state === "done") break;
      if (s.state === "failed") {   // the problems in the input, when the job names them, are shown like a 422's
        if (s.errors && s.errors.length) throw new ApiError(422, s.message, s.errors);
        throw Object.assign(new ApiError(500, s.message || "job failed"), { jobFailed: true });
      }
      if (s.state === "cancelled") throw Object.assign(new ApiError(409, "cancelled"), { cancelled: true });
      await new Promise(r => setTimeout(r, wait));
      wait = Math.min(2000, wait * 1.5);
    }
    return this.request(`/v1/jobs/${encodeURIComponent(id)}/result${control.resultQuery || ""}`, control.resultOptions || {});
  },

  /** A field path from the API (measurements[1].values.job_search) in words. */
  fieldInWords(field) {
    // both "measurements[1].values.job_search" (our validation) and "measurements.1.measured_at" (pydantic)
    const c = COMMON_TEXTS[this.lang], parts = [];
    let previous = null;
    for (const piece of String(field).split(".")) {
      const m = piece.match(/^([A-Za-z_]+)\[(\d+)\]$/);
      if (m) { parts.push(c.nth(m[1], Number(m[2]) + 1)); previous = m[1]; continue; }
      if (/^\d+$/.test(piece) && previous) { parts[parts.length - 1] = c.nth(previous, Number(piece) + 1); previous = null; continue; }
      previous = piece;
      if (piece === "values") continue;
      const label = this.indicatorLabels[piece];
      parts.push(label ? label[this.lang] : (c.fields[piece] || piece.replace(/_/g, " ")));
    }
    return parts.join(", ");
  },
  allowedInWords(allowed) {
    for (const [pattern, words] of COMMON_TEXTS[this.lang].allowed_patterns) {
      const m = String(allowed).match(pattern);
      if (m) return { text: words(m), lang: this.lang };
    }
    return { text: String(allowed), lang: "en" };   // the API's own words are English
  },
  /** Show an error in the page's language inside `target` (an element with role=alert). */
  showError(target, error) {
    target.replaceChildren();
    if (!(error instanceof ApiError)) {
      target.append(this.el("p", {}, error && error.userText ? error.userText : this.t("http")[500]));
      return;
    }
    const http = this.t("http");
    target.append(this.el("p", {}, http[error.status] || http[error.status >= 500 ? 500 : 400]));
    if (error.problems.length) {
      const list = this.el("ul");
      for (const p of error.problems.slice(0, 20)) {
        const allowed = this.allowedInWords(p.allowed);
        const item = this.el("li", { "data-field": p.field }, this.el("strong", {}, this.fieldInWords(p.field)), ": ");
        if (p.value !== null && p.value !== undefined) item.append(`${this.t("value")} ${JSON.stringify(p.value)}; `);
        item.append(`${this.t("allowed")}: `, this.el("span", allowed.lang !== this.lang ? { lang: allowed.lang } : {}, allowed.text));
        list.append(item);
      }
      target.append(list);
    }
  },
  userError(key) { const e = new Error(key); e.userText = this.t(key); return e; },

  /** Numbers in the page's language. */
  num(x, digits = 1) {
    const text = Number(x).toFixed(digits);
    return this.lang === "da" ? text.replace(".", ",").replace("-", "−") : text.replace("-", "−");
  },
  pct(p, digits = 1) { return this.num(100 * p, digits) + (this.lang === "da" ? " %" : "%"); },
  pp(x, digits = 1) { return (x >= 0 ? "+" : "−") + this.num(Math.abs(x), digits) + " " + this.t("pp"); },
  /** "3 af 100" for a probability. */
  per100(p) { const n = Math.round(100 * p); return n < 1 ? this.t("under1of100") : this.t("of100")(n); },
  date(iso) {
    if (!iso) return "";
    const [y, m, d] = iso.slice(0, 10).split("-");
    return this.lang === "da" ? `${Number(d)}.${Number(m)}.${y}` : `${y}-${m}-${d}`;
  },

  el(tag, attrs = {}, ...children) {
    const node = document.createElementNS(attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
    for (const [k, v] of Object.entries(attrs)) if (k !== "svg" && v !== undefined && v !== null) node.setAttribute(k, v);
    for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  },
  svg(tag, attrs = {}, ...children) { return this.el(tag, Object.assign({ svg: true }, attrs), ...children); },
  /** The pixel width a chart container has now (charts are drawn at that width, so text stays readable). */
  widthOf(node, fallback = 640) { return Math.max(280, Math.floor(node.clientWidth || fallback)); },

  wireHeader(texts, onChange) {
    this.texts = texts;
    const key = document.getElementById("api-key");
    key.value = this.key();
    key.addEventListener("change", () => this.setKey(key.value));
    key.addEventListener("input", () => this.setKey(key.value));
    const lang = document.getElementById("lang");
    lang.value = this.lang;
    const apply = () => {
      document.documentElement.lang = this.lang;
      document.title = this.t("page_title");
      document.querySelectorAll("[data-t]").forEach(n => { const v = this.t(n.dataset.t); if (typeof v === "string") n.textContent = v; });
      document.querySelectorAll("[data-t-label]").forEach(n => { const v = this.t(n.dataset.tLabel); if (typeof v === "string") n.setAttribute("aria-label", v); });
      onChange && onChange();
    };
    lang.addEventListener("change", () => { this.setLang(lang.value); apply(); });
    let timer = null;   // charts are drawn at their pixel width: redraw when it changes
    window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(() => onChange && onChange(), 150); });
    apply();
  },
};
