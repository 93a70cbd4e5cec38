"""The pages in a real browser (headless Chromium through selenium), at a phone's width (400 px)
and a desktop's (1280 px), in Danish and English: no sideways scrolling, no jargon, every number
on screen equal to the API's answer, the keyboard path, an accessibility check with axe-core
(0 serious or critical violations), and the print view as one PDF page. Screenshots are saved
(BIP_SCREENSHOTS, default var/screenshots)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from bip.config import Settings
from serving.keys import add_key
from serving.main import create_app
from serving.texts import OTHER_LABELS

SCREENSHOTS = Path(os.environ.get("BIP_SCREENSHOTS", Path(__file__).parent.parent / "var" / "screenshots"))
PAGES = Path(__file__).parent.parent / "serving" / "pages"
AXE_VERSION = "4.14.1"   # axe-core from the npm registry, fetched at test time (nothing generated is committed)
BANDS = (0.03, 0.10)     # as in caseworker.js


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_cohort_dir, serving_store):
    folder = tmp_path_factory.mktemp("pages")
    settings = Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                        audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0,
                        citizen_source=str(small_cohort_dir))
    keys = {role: add_key(settings.keys_file, role)[1] for role in ("caseworker", "evaluator")}
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}", keys
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000", "--disable-dev-shm-usage", "--lang=da"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def axe(tmp_path_factory) -> str:
    """axe.min.js from `npm pack axe-core` into a temporary folder."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: no axe-core for the accessibility check")
    folder = tmp_path_factory.mktemp("axe")
    done = subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--silent"], cwd=folder, capture_output=True,
                          text=True, timeout=120)
    packed = list(folder.glob("axe-core-*.tgz"))
    if done.returncode != 0 or not packed:
        pytest.skip(f"npm pack axe-core failed: {done.stderr.strip()[:200]}")
    with tarfile.open(packed[0]) as archive:
        return archive.extractfile("package/axe.min.js").read().decode("utf-8")


# --- helpers ---------------------------------------------------------------------------------

def _open(browser, url: str) -> None:
    """The page from a fresh session: no key or language left by an earlier test."""
    browser.get(url)
    browser.execute_script("sessionStorage.clear()")
    browser.get(url)


def _width(browser, width: int, height: int = 1000) -> None:
    """The viewport at exactly this CSS width (a window cannot be made narrower than ~500 px)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def _overflow(browser) -> tuple[int, int]:
    return tuple(browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"))


def _axe_serious(browser, axe_source: str) -> list[dict]:
    browser.execute_script(axe_source)
    violations = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map("
        "v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))))")
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def _charts_fit(browser) -> bool:
    """Every chart is drawn at its container's width (they redraw when the width changes)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('.chart-svg')].filter(s => s.getClientRects().length)"
        ".every(s => Math.abs(s.width.baseVal.value - Math.max(280, Math.floor(s.parentNode.clientWidth))) < 1)")


def _screenshot(browser, name: str, width: int) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _width(browser, width, browser.execute_script("return document.documentElement.scrollHeight"))
    browser.execute_script("window.dispatchEvent(new Event('resize'))")
    WebDriverWait(browser, 10).until(_charts_fit)
    browser.save_screenshot(str(SCREENSHOTS / name))
    _width(browser, width)


def num(x: float, lang: str, digits: int = 1) -> str:
    text = f"{x:.{digits}f}"
    return (text.replace(".", ",") if lang == "da" else text).replace("-", "−")


def pct(p: float, lang: str, digits: int = 1) -> str:
    return num(100 * p, lang, digits) + (" %" if lang == "da" else "%")


def pp(x: float, lang: str, digits: int = 1) -> str:
    return ("+" if x >= 0 else "−") + num(abs(x), lang, digits) + (" procentpoint" if lang == "da" else " percentage points")


def _api(base, key):
    headers = {"X-API-Key": key}
    return (lambda path: httpx.get(f"{base}{path}", headers=headers).json(),
            lambda body: httpx.post(f"{base}/v1/score", json=body, headers=headers).json())


def _numbers_equal_the_api(browser, base, key, person, lang):
    """Every number the result shows against the API's own answer, formatted as the page formats it."""
    get, post = _api(base, key)
    body = get(f"/v1/citizens/{person}")
    api, model = post(body), get("/v1/model")
    assert get(f"/v1/citizens/{person}/score")["probability"] == api["probability"]   # stored = posted
    find = browser.find_element
    assert float(find(By.ID, "probability").get_attribute("data-value")) == api["probability"]
    assert find(By.ID, "probability").text == pct(api["probability"], lang)
    interval = find(By.ID, "interval")
    assert float(interval.get_attribute("data-low")) == api["interval"]["low"]
    assert float(interval.get_attribute("data-high")) == api["interval"]["high"]
    assert f"{pct(api['interval']['low'], lang)} – {pct(api['interval']['high'], lang)}" in interval.text
    base_rate = model["base_rate"]  # the training examples' rate, which the page prefers to the test set's
    words = find(By.ID, "words").text
    shown = round(100 * api["probability"])
    assert (f"{shown} {'af' if lang == 'da' else 'in'} 100" if shown >= 1 else "1") in words
    assert f" {round(100 * base_rate)}." in words
    assert pct(BANDS[0], lang, 0) in find(By.ID, "bands").text and pct(BANDS[1], lang, 0) in find(By.ID, "bands").text
    band = "low" if api["probability"] < BANDS[0] else "middle" if api["probability"] < BANDS[1] else "high"
    assert find(By.ID, "words").get_attribute("data-band") == band
    assert f"version {api['model']['version']}" in find(By.ID, "meta").text

    # the readiness curve, where the model gives one: each horizon's chance and range
    curve = browser.find_elements(By.CSS_SELECTOR, "#curve-table tbody tr")
    assert len(curve) == len(api.get("curve", []))
    for row, c in zip(curve, api.get("curve", [])):
        assert int(row.get_attribute("data-horizon")) == c["horizon_months"]
        assert float(row.get_attribute("data-value")) == c["probability"]
        cells = row.find_elements(By.CSS_SELECTOR, "th, td")
        assert cells[1].text == pct(c["probability"], lang)
        assert cells[2].text == f"{pct(c['interval']['low'], lang)} – {pct(c['interval']['high'], lang)}"

    # reasons: the larger ones one by one with the API's percentage points and sentence, the rest folded
    rows = browser.find_elements(By.CSS_SELECTOR, "#contributions tbody tr")
    contributions = api["explanation"]["contributions"]
    listed = [r for r in rows if r.get_attribute("data-group") != "other"]
    assert [r.get_attribute("data-group") for r in listed] == [c["group"] for c in contributions[:len(listed)]]
    for row, c in zip(listed, contributions):
        assert float(row.get_attribute("data-pp")) == c["contribution_pp"]
        cells = row.find_elements(By.CSS_SELECTOR, "th, td")
        assert cells[1].text == pp(c["contribution_pp"], lang)
        assert cells[2].text == c[f"reason_{lang}"]
        assert abs(c["contribution_pp"]) >= 0.1
    folded = contributions[len(listed):]
    if folded:
        other = rows[-1]
        assert other.get_attribute("data-folded").split() == [c["group"] for c in folded]
        assert num(max(abs(c["contribution_pp"]) for c in folded), lang) in other.text

    # the course over time: one row per measurement date, each the API's score as of that date
    dates = sorted({m["measured_at"] for m in body["measurements"]})
    points = browser.find_elements(By.CSS_SELECTOR, "#trajectory-table tbody tr")
    assert [p.get_attribute("data-date") for p in points] == dates
    for point in points[:: max(1, len(points) // 3)] + points[-1:]:   # a sample: one API call per date
        as_of = point.get_attribute("data-date")
        then = post({**body, "as_of": as_of})
        cells = point.find_elements(By.CSS_SELECTOR, "th, td")
        assert float(point.get_attribute("data-value")) == then["probability"]
        assert cells[1].text == pct(then["probability"], lang)
        assert cells[2].text == f"{pct(then['interval']['low'], lang)} – {pct(then['interval']['high'], lang)}"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#trajectory circle")) == len(dates)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#activities li[data-kind]")) == len(body["activities"])

    drivers = browser.find_elements(By.CSS_SELECTOR, "#drivers li")
    assert [d.get_attribute("data-group") for d in drivers] == [d["group"] for d in api["change"]["drivers"]]
    for d, expected in zip(drivers, api["change"]["drivers"]):
        assert float(d.get_attribute("data-pp")) == expected["change_pp"]
        assert d.text.endswith(pp(expected["change_pp"], lang, 2 if abs(expected["change_pp"]) < 0.1 else 1))
    if api["change"]["previous_as_of"]:
        assert pct(api["change"]["previous_probability"], lang) in find(By.ID, "change-summary").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ratings tbody tr")) == len(model["indicator_schema"]["indicators"])
    return api


# GET /v1/evaluations/published as the evaluation work serves it (evaluation/tracking.py:
# published_effects): per kind, effects in percentage points by readiness band.
PUBLISHED = {"run_id": "r1", "published_at": "2026-11-28T12:00:00Z", "horizon_months": 12, "estimand": "ATT",
             "bands": {"by": "score", "cuts": [0.03, 0.10], "labels": ["low", "middle", "high"]},
             "kinds": {"virksomhedspraktik": {"overall": {"effect_points": 4.1, "ci_low_points": 2.0,
                                                          "ci_high_points": 6.2, "n_treated": 300},
                                              "by_band": {band: {"effect_points": effect, "ci_low_points": effect - 2,
                                                                 "ci_high_points": effect + 3, "n_treated": 100}
                                                          for band, effect in (("low", 1.2), ("middle", 4.1),
                                                                               ("high", 6.5))},
                                              "band_intervals_checked": True},
                       # band intervals that failed the truth check: never shown to a caseworker
                       "loentilskud": {"overall": {"effect_points": 7.0, "ci_low_points": 4.0,
                                                   "ci_high_points": 10.0, "n_treated": 200},
                                       "by_band": {band: {"effect_points": 7.0, "ci_low_points": 4.0,
                                                          "ci_high_points": 10.0, "n_treated": 60}
                                                   for band in ("low", "middle", "high")},
                                       "band_intervals_checked": False}}}
PUBLISHED_STUB = """
const published = arguments[0], real = window.fetch;
window.fetch = (url, options) => String(url).endsWith('/v1/evaluations/published')
  ? Promise.resolve(new Response(JSON.stringify(published), {status: 200, headers: {'content-type': 'application/json'}}))
  : real(url, options);
"""


def _no_jargon(browser):
    text = browser.execute_script("return document.body.innerText").lower()
    assert "log-odds" not in text and "log odds" not in text and "logit" not in text


def _demo_person(base, key) -> str:
    """A demo citizen with several measurements and at least one activity."""
    get, _ = _api(base, key)
    for c in get("/v1/citizens")["citizens"]:
        if c["measurements"] >= 5 and get(f"/v1/citizens/{c['person_id']}")["activities"]:
            return c["person_id"]
    raise AssertionError("no demo citizen with activities")


# --- tests ------------------------------------------------------------------------------------

def test_caseworker_desktop_danish_by_keyboard(server, browser, axe):
    """1280 px, Danish, keyboard only: key, demo list, citizen, score; focus lands on the result."""
    base, keys = server
    person = _demo_person(base, keys["caseworker"])
    _width(browser, 1280)
    _open(browser, f"{base}/caseworker")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "da"
    active = lambda: browser.switch_to.active_element.get_attribute("id")  # noqa: E731
    # from the top: the first Tab reaches "skip to content", which leads to the key field
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert active() == "api-key"
    browser.switch_to.active_element.send_keys(keys["caseworker"])
    chain = browser.switch_to.active_element
    for expected in ("person-id", "fetch-citizen", "load-demo"):
        chain.send_keys(Keys.TAB)
        chain = browser.switch_to.active_element
        assert active() == expected
    chain.send_keys(Keys.ENTER)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: active() == "demo-citizen")           # focus moves to the list it filled
    options = browser.find_elements(By.CSS_SELECTOR, "#demo-citizen option")
    assert "målinger" in options[1].text and "jobcenter" in options[1].text
    ids = [o.get_attribute("value") for o in options[1:]]
    index = ids.index(person) + 1
    select = browser.switch_to.active_element
    for _ in range(index):
        select.send_keys(Keys.ARROW_DOWN)
    assert Select(browser.find_element(By.ID, "demo-citizen")).first_selected_option.get_attribute("value") == person
    for expected in ("own-history", "score"):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if expected == "own-history":
            assert browser.switch_to.active_element.tag_name == "summary"
        else:
            assert active() == "score"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Færdig"))
    assert active() == "result-heading"                        # focus moves to the result
    assert browser.find_element(By.ID, "status").get_attribute("aria-live") == "polite"

    # loading the list again gives the same list, not twice the list
    browser.find_element(By.ID, "load-demo").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "borgere hentet"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#demo-citizen option")) == len(options)
    browser.find_element(By.ID, "score").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Færdig"))

    assert _overflow(browser)[0] <= _overflow(browser)[1]
    _no_jargon(browser)
    _numbers_equal_the_api(browser, base, keys["caseworker"], person, "da")
    assert _axe_serious(browser, axe) == []
    _screenshot(browser, "caseworker-da-desktop.png", 1280)

    # the print view: one page, with the score, its meaning, the reasons and who decides
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        for shown in ("probability", "words", "interval", "meta", "decision", "contributions"):
            assert browser.find_element(By.ID, shown).is_displayed(), shown
        for hidden in ("api-key", "score", "trajectory", "print"):
            assert not browser.find_element(By.ID, hidden).is_displayed(), hidden
        assert "afgørelsen" in browser.find_element(By.ID, "decision").text
        _screenshot(browser, "caseworker-print.png", 800)
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True})["data"])
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf)) == 1

    # English: every word switches, the status too; nothing kept beyond the session
    Select(browser.find_element(By.ID, "lang")).select_by_value("en")
    api = _numbers_equal_the_api(browser, base, keys["caseworker"], person, "en")
    assert browser.find_element(By.ID, "status").text.startswith("Done")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    _no_jargon(browser)
    assert api["explanation"]["contributions"][0]["reason_en"] in browser.find_element(By.ID, "contributions").text
    assert browser.execute_script("return Object.keys(localStorage).length") == 0
    Select(browser.find_element(By.ID, "lang")).select_by_value("da")


def test_caseworker_phone_english(server, browser, axe):
    """400 px, English: nothing scrolls sideways, charts are drawn at the width they get, errors are
    in English with the field named in words."""
    base, keys = server
    person = _demo_person(base, keys["caseworker"])
    _width(browser, 400)
    _open(browser, f"{base}/caseworker")
    Select(browser.find_element(By.ID, "lang")).select_by_value("en")
    key = browser.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys(keys["caseworker"])

    # bad histories: errors in the page's language, the field in words, never a raw path
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    good = httpx.get(f"{base}/v1/citizens/{person}", headers={"X-API-Key": keys["caseworker"]}).json()
    history = browser.find_element(By.ID, "history")
    wait = WebDriverWait(browser, 60)

    def submit(change):
        bad = json.loads(json.dumps(good))
        change(bad)
        browser.execute_script("arguments[0].value = arguments[1]", history, json.dumps(bad))
        browser.find_element(By.ID, "score").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#error li"))
        return browser.find_element(By.ID, "error").text

    error = submit(lambda b: b["measurements"][1].update(measured_at="yesterday"))      # refused by the schema
    assert "measurement 2, date of the measurement" in error and "measurements.1" not in error
    error = submit(lambda b: b["measurements"][0]["values"].update(job_search=9))      # refused by validation
    assert "measurement 1, Job-search behaviour" in error and "an integer from 1 to 5" in error
    assert "measurements[0]" not in error
    Select(browser.find_element(By.ID, "lang")).select_by_value("da")
    error = browser.find_element(By.ID, "error").text
    assert "Oplysningerne har fejl" in error and "måling nr. 1, Jobsøgningsadfærd" in error
    assert "et helt tal fra 1 til 5" in error
    Select(browser.find_element(By.ID, "lang")).select_by_value("en")
    history.clear()

    # a citizen by id: scored from the citizen source where the server has one, else said in words
    browser.find_element(By.ID, "person-id").send_keys(person, Keys.ENTER)
    routes = httpx.get(f"{base}/openapi.json").json()["paths"]
    if "/v1/citizens/{person_id}/score" in routes:
        wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Done"))
        assert person in browser.find_element(By.ID, "result-heading").text
    else:
        wait.until(EC.text_to_be_present_in_element((By.ID, "error"), "no citizen source"))

    # published effects for this citizen's band (the page's fetch answered here, until the route exists),
    # with a checked targeting rule whose first leaf holds for every rating (<= 99)
    from features.schema import load_schema
    key = load_schema().keys[0]
    rule = {"leaves": [{"conditions": [f"{key}__cw_level <= 99"], "arm": "virksomhedspraktik"},
                       {"conditions": [f"{key}__cw_level > 99"], "arm": "none"}],
            "value": {"points": 7.1, "ci_low_points": 5.0, "ci_high_points": 9.2},
            "current_practice": {"points": 5.0, "ci_low_points": 4.5, "ci_high_points": 5.5},
            "gain": {"points": 2.1, "ci_low_points": 0.2, "ci_high_points": 4.0}, "checked": True}
    browser.execute_script(PUBLISHED_STUB, {**PUBLISHED, "targeting": rule})
    browser.find_element(By.ID, "load-demo").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#demo-citizen option")) > 5)
    Select(browser.find_element(By.ID, "demo-citizen")).select_by_value(person)
    browser.find_element(By.ID, "score").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Done"))
    band = browser.find_element(By.ID, "words").get_attribute("data-band")
    effect = PUBLISHED["kinds"]["virksomhedspraktik"]["by_band"][band]
    panel = browser.find_element(By.ID, "what-works")
    assert panel.is_displayed() and "not a prediction for this citizen" in panel.text
    rows = browser.find_elements(By.CSS_SELECTOR, "#what-works-table tbody tr")
    assert [r.get_attribute("data-kind") for r in rows] == ["virksomhedspraktik"]   # loentilskud: unchecked
    row = rows[0]
    assert row.get_attribute("data-kind") == "virksomhedspraktik" and "Company internship" in row.text
    assert pp(effect["effect_points"], "en") in row.text
    assert f"{num(effect['ci_low_points'], 'en')} – {num(effect['ci_high_points'], 'en')}" in row.text
    finding = browser.find_element(By.ID, "targeting").text
    assert "Published finding about groups" in finding and "Company internship" in finding
    assert "7.1% would be in a job (95% interval 5.0–9.2%)" in finding and "not an instruction" in finding
    scroll, client = _overflow(browser)
    assert client <= 400 and scroll <= client
    for chart in ("waterfall", "trajectory"):
        svg = browser.find_element(By.CSS_SELECTOR, f"#{chart} svg")
        assert int(svg.get_attribute("width")) <= client        # drawn at its width, so text keeps its size
        assert svg.get_attribute("aria-hidden") == "true"       # the tables beside it carry the same figures
    _no_jargon(browser)
    _numbers_equal_the_api(browser, base, keys["caseworker"], person, "en")
    assert _axe_serious(browser, axe) == []
    _screenshot(browser, "caseworker-en-phone.png", 400)
    _width(browser, 360)                                        # the narrowest phone the layout is made for
    browser.execute_script("window.dispatchEvent(new Event('resize'))")
    WebDriverWait(browser, 10).until(_charts_fit)
    scroll, client = _overflow(browser)
    assert scroll <= client
    Select(browser.find_element(By.ID, "lang")).select_by_value("da")


def test_evaluator_page_scores_an_uploaded_cohort(server, browser, axe, small_cohort_dir, small_tables):
    base, keys = server
    _width(browser, 400)
    _open(browser, f"{base}/evaluator")
    key = browser.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys(keys["evaluator"])
    for name in ("persons", "measurements", "activities"):
        browser.find_element(By.ID, name).send_keys(str(small_cohort_dir / f"{name}.parquet"))
    assert [o.text for o in Select(browser.find_element(By.ID, "kind")).options][:2] == ["Virksomhedspraktik", "Løntilskud"]
    browser.find_element(By.ID, "score").click()
    WebDriverWait(browser, 120).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#groups tbody tr"))
    counts = {r.get_attribute("data-group"): int(r.find_elements(By.CSS_SELECTOR, "td")[0].text)
              for r in browser.find_elements(By.CSS_SELECTOR, "#groups tbody tr")}
    assert counts == small_tables["persons"]["jobcenter"].value_counts().to_dict()
    assert browser.switch_to.active_element.get_attribute("id") == "scores-heading"
    assert browser.find_element(By.ID, "report").get_attribute("sandbox") == ""
    scroll, client = _overflow(browser)
    assert scroll <= client
    assert _axe_serious(browser, axe) == []
    _width(browser, 1280)
    _screenshot(browser, "evaluator.png", 1280)


JOB_STUB = """
const mode = arguments[0];
window.__calls = [];
let polls = 0, cancelled = false;
const json = (body, status = 200) => Promise.resolve(new Response(JSON.stringify(body),
  {status, headers: {'content-type': 'application/json'}}));
window.fetch = (url, options = {}) => {
  const method = options.method || 'GET';
  window.__calls.push(method + ' ' + url);
  if (method === 'POST') return json({job_id: 'j1', status_url: '/v1/jobs/j1'}, 202);
  if (method === 'DELETE') { cancelled = true; return json({state: 'cancelled'}); }
  if (url === '/v1/jobs/j1') {
    polls += 1;
    if (cancelled) return json({state: 'cancelled', progress: 0.5, message: ''});
    // queued once, then running at one half until the test releases it (window.__release)
    if (polls < 2) return json({state: 'queued', progress: 0, message: ''});
    if (mode === 'cancel' || !window.__release) return json({state: 'running', progress: 0.5, message: ''});
    return json({state: 'done', progress: 1, message: ''});
  }
  if (url.startsWith('/v1/jobs/j1/result'))
    return Promise.resolve(new Response('<h1>Report j1</h1>', {status: 200, headers: {'content-type': 'text/html'}}));
  return json({detail: 'Not Found'}, 404);
};
"""


def test_evaluator_runs_evaluations_as_jobs_with_progress_and_cancel(server, browser):
    """The job contract (POST 202 -> poll GET /v1/jobs/{id} -> GET .../result; DELETE cancels),
    with the page's fetch answered by a stub, so no evaluation has to run."""
    base, keys = server
    _width(browser, 1280)
    _open(browser, f"{base}/evaluator")
    wait = WebDriverWait(browser, 30)
    browser.execute_script(JOB_STUB, "done")
    browser.find_element(By.ID, "evaluate").click()
    wait.until(lambda b: b.find_element(By.ID, "progress").get_attribute("value") == "0.5")
    assert browser.find_element(By.ID, "job").is_displayed()
    assert browser.find_element(By.ID, "evaluate").get_attribute("disabled")
    assert "Kører … 50 %" in browser.find_element(By.ID, "status").text
    browser.execute_script("window.__release = true")
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Evalueringen er færdig"))
    assert "Report j1" in browser.find_element(By.ID, "report").get_attribute("srcdoc")
    assert not browser.find_element(By.ID, "job").is_displayed()
    calls = browser.execute_script("return window.__calls")
    assert calls[0].startswith("POST /v1/evaluations") and calls[-1] == "GET /v1/jobs/j1/result?format=html"

    browser.execute_script(JOB_STUB, "cancel")
    browser.find_element(By.ID, "evaluate").click()
    wait.until(lambda b: b.find_element(By.ID, "progress").get_attribute("value") == "0.5")
    browser.find_element(By.ID, "cancel").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Afbrudt"))
    assert "DELETE /v1/jobs/j1" in browser.execute_script("return window.__calls")
    assert not browser.find_element(By.ID, "evaluate").get_attribute("disabled")


# --- without a browser ------------------------------------------------------------------------

def test_pages_keep_every_script_and_style_in_files():
    """Ready for a strict Content-Security-Policy: no inline scripts, handlers or style attributes."""
    for page in PAGES.glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html)), page.name
        assert not re.search(r"\son[a-z]+\s*=", html), page.name
        assert not re.search(r"\sstyle\s*=", html), page.name
        assert "<style" not in html, page.name
    for script in PAGES.glob("*.js"):
        code = script.read_text(encoding="utf-8")
        assert "innerHTML" not in code and "eval(" not in code and '"style"' not in code, script.name


def test_kind_names_on_the_pages_are_the_services():
    """The pages name intervention kinds as the score's reasons do (serving/texts.py)."""
    code = (PAGES / "common.js").read_text(encoding="utf-8")
    pairs = dict(re.findall(r'^\s+(\w+): \{ da: "([^"]+)", en: "[^"]+" \},$', code, re.M))
    english = dict(re.findall(r'^\s+(\w+): \{ da: "[^"]+", en: "([^"]+)" \},$', code, re.M))
    expected = {key[len("activity_"):]: labels for key, labels in OTHER_LABELS.items()
                if key.startswith("activity_") and key != "activity_parallel"}
    assert {k: (pairs[k], english[k]) for k in pairs} == expected


def test_print_stylesheet_hides_the_controls():
    css = (PAGES / "style.css").read_text(encoding="utf-8")
    block = css[css.index("@media print"):]
    assert ".controls" in block and ".no-print" in block and "@page" in block
