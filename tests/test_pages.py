"""The pages in a real browser: headless Chromium scores a demo citizen and the numbers on screen
equal the API's answer; the evaluator page scores an uploaded cohort. Screenshots are saved."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from serving.main import create_app
from serving.keys import add_key
from bip.config import Settings

SCREENSHOTS = Path(os.environ.get("BIP_SCREENSHOTS", Path(__file__).parent.parent / "var" / "screenshots"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_cohort_dir, serving_store):
    folder = tmp_path_factory.mktemp("pages")
    settings = Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                        audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0, citizen_source=str(small_cohort_dir))
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
                 "--window-size=1280,2200", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def _labelled(browser):
    """Every input, select and textarea has a label."""
    labelled = {e.get_attribute("for") for e in browser.find_elements(By.CSS_SELECTOR, "label[for]")}
    controls = browser.find_elements(By.CSS_SELECTOR, "input, select, textarea")
    return all(c.get_attribute("id") in labelled or c.find_elements(By.XPATH, "ancestor::label") for c in controls)


def test_caseworker_page_shows_the_apis_numbers(server, browser):
    base, keys = server
    browser.get(f"{base}/caseworker")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "da"
    assert _labelled(browser)
    browser.find_element(By.ID, "api-key").send_keys(keys["caseworker"])
    browser.find_element(By.ID, "load-demo").click()
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#demo-citizen option")) > 5)
    select = Select(browser.find_element(By.ID, "demo-citizen"))
    person = next(o.get_attribute("value") for o in select.options[1:] if int(o.text.rsplit("·", 1)[1]) >= 4)
    select.select_by_value(person)
    browser.find_element(By.ID, "score").click()
    wait.until(lambda b: b.find_element(By.ID, "probability").get_attribute("data-value"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Færdig"))

    headers = {"X-API-Key": keys["caseworker"]}
    body = httpx.get(f"{base}/v1/demo/citizens/{person}", headers=headers).json()
    api = httpx.post(f"{base}/v1/score", json=body, headers=headers).json()
    shown = float(browser.find_element(By.ID, "probability").get_attribute("data-value"))
    assert shown == api["probability"]
    assert browser.find_element(By.ID, "probability").text == f"{100 * api['probability']:.1f}".replace(".", ",") + " %"
    interval = browser.find_element(By.ID, "interval")
    assert float(interval.get_attribute("data-low")) == api["interval"]["low"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#contributions tbody tr")
    expected = api["explanation"]["contributions"][:len(rows)]
    assert [r.get_attribute("data-group") for r in rows] == [c["group"] for c in expected]
    assert [float(r.get_attribute("data-value")) for r in rows] == [c["contribution"] for c in expected]
    assert expected[0]["reason_da"] in rows[0].text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#trajectory circle")) == len({m["measured_at"] for m in body["measurements"]})
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ratings tbody tr")) == 11
    drivers = browser.find_elements(By.CSS_SELECTOR, "#drivers li")
    assert [d.get_attribute("data-group") for d in drivers] == [d["group"] for d in api["change"]["drivers"]]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "caseworker.png"))

    Select(browser.find_element(By.ID, "lang")).select_by_value("en")
    wait.until(lambda b: b.find_element(By.ID, "probability").text == f"{100 * api['probability']:.1f} %")
    assert expected[0]["reason_en"] in browser.find_element(By.CSS_SELECTOR, "#contributions tbody tr").text
    assert browser.execute_script("return Object.keys(localStorage).length") == 0   # nothing kept beyond the session


def test_evaluator_page_scores_an_uploaded_cohort(server, browser, small_cohort_dir, small_tables):
    base, keys = server
    browser.get(f"{base}/evaluator")
    assert _labelled(browser)
    browser.find_element(By.ID, "api-key").clear()
    browser.find_element(By.ID, "api-key").send_keys(keys["evaluator"])
    for name in ("persons", "measurements", "activities"):
        browser.find_element(By.ID, name).send_keys(str(small_cohort_dir / f"{name}.parquet"))
    browser.find_element(By.ID, "score").click()
    WebDriverWait(browser, 120).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#groups tbody tr"))
    counts = {r.get_attribute("data-group"): int(r.find_elements(By.TAG_NAME, "td")[1].text)
              for r in browser.find_elements(By.CSS_SELECTOR, "#groups tbody tr")}
    assert counts == small_tables["persons"]["jobcenter"].value_counts().to_dict()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "evaluator.png"))
