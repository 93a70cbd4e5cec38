// Shared by both pages: the API key (kept in sessionStorage only), language, fetch helpers.
"use strict";
const BIP = {
  lang: sessionStorage.getItem("bip-lang") || "da",
  key() { return sessionStorage.getItem("bip-key") || ""; },
  setKey(value) { sessionStorage.setItem("bip-key", value.trim()); },
  setLang(value) { this.lang = value; sessionStorage.setItem("bip-lang", value); },
  async call(path, options = {}) {
    const headers = Object.assign({ "X-API-Key": this.key() }, options.headers || {});
    const response = await fetch(path, Object.assign({}, options, { headers }));
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const errors = body && body.errors ? body.errors.map(e => `${e.field}: ${JSON.stringify(e.value)} — ${e.allowed}`).join("\n") : "";
      throw new Error(`${response.status}: ${(body && body.detail) || ""}\n${errors}`);
    }
    return body;
  },
  pct(p, digits = 1) {
    const text = (100 * p).toFixed(digits);
    return (this.lang === "da" ? text.replace(".", ",") : text) + " %";
  },
  el(tag, attrs = {}, ...children) {
    const node = document.createElementNS(attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
    for (const [k, v] of Object.entries(attrs)) if (k !== "svg") node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  },
  wireHeader(texts, onChange) {
    const key = document.getElementById("api-key");
    key.value = this.key();
    key.addEventListener("change", () => this.setKey(key.value));
    const lang = document.getElementById("lang");
    lang.value = this.lang;
    const apply = () => {
      document.documentElement.lang = this.lang;
      document.querySelectorAll("[data-t]").forEach(n => { n.textContent = texts[this.lang][n.dataset.t] || n.textContent; });
      onChange && onChange();
    };
    lang.addEventListener("change", () => { this.setLang(lang.value); apply(); });
    apply();
  },
};
