"""The dashboard in a real headless browser (Debian's chromium + chromedriver) against a real gunicorn server."""
from __future__ import annotations

import os
import re
import shutil

import pytest
import requests

from creditscore.config import ROOT
from tests.server import Server, require_models

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _browser(tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "chromium/chromedriver absent: apt-get install chromium chromium-driver"
        if os.environ.get("REQUIRE_ALL_TESTS"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,2000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def server():
    require_models()
    s = Server({"INFERENCE_LOG": "off", "API_KEY": "k3y"}, workers=1).start()
    yield s
    s.stop()


@pytest.fixture()
def browser(tmp_path):
    driver = _browser(tmp_path)
    yield driver
    driver.quit()


SCREENSHOTS = ROOT / "reports" / "screenshots"  # kept by CI as an artifact for reviewers (not in git)


def _screenshot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def _luminance(rgb: tuple[float, float, float]) -> float:
    channel = [c / 255 for c in rgb]
    channel = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channel]
    return 0.2126 * channel[0] + 0.7152 * channel[1] + 0.0722 * channel[2]


def _rgb(colour: str) -> tuple[float, float, float]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))


def over_white(rgba: str) -> tuple[float, float, float]:
    """An `rgba(r, g, b, a)` fill as it shows on the white page."""
    r, g, b, a = (float(v) for v in rgba[rgba.index("(") + 1:-1].split(","))
    return tuple(255 * (1 - a) + c * a for c in (r, g, b))


def contrast(background, text) -> float:
    """WCAG contrast ratio of two colours (hex strings or RGB tuples)."""
    lums = sorted((_luminance(_rgb(c) if isinstance(c, str) else c) for c in (background, text)), reverse=True)
    return (lums[0] + 0.05) / (lums[1] + 0.05)


def test_the_palette_meets_wcag_aa_on_the_page():
    """Text colours of the style sheet and the charts against their backgrounds: at least 4.5:1."""
    css = (ROOT / "app" / "static" / "dashboard.css").read_text()
    colours = dict(re.findall(r"--(\w+): (#[0-9a-f]{6})", css))
    for name in ("granted", "refused", "ink", "muted"):
        for background in ("#ffffff", "#f6f6f8"):
            assert contrast(background, colours[name]) >= 4.5, (name, background)
    for button in ("#24466b", "#5a5a60"):  # white text on the buttons
        assert contrast(button, "#ffffff") >= 4.5


def _wait(driver, condition, timeout=15):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout).until(condition)


def test_pick_a_client_see_score_reasons_and_rescore(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    headers = {"X-API-Key": "k3y"}
    browser.get(server.url + "/?api_key=k3y")  # the key once in the address; the page keeps it in a cookie
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#client-list option")) > 0)
    options = browser.find_elements(By.CSS_SELECTOR, "#client-list option")
    assert len(options) == min(200, requests.get(server.url + "/clients?limit=1", headers=headers).json()["total"])

    Select(browser.find_element(By.ID, "client-list")).select_by_index(0)  # pick from the list
    client = int(options[0].get_attribute("value"))
    _wait(browser, lambda d: d.find_element(By.ID, "result").is_displayed()
          and d.find_element(By.ID, "r-id").text == str(client))
    expected = requests.get(f"{server.url}/clients/{client}/explain", headers=headers).json()
    decision = browser.find_element(By.ID, "decision").text
    assert ("Granted" if expected["decision"] == "granted" else "Refused") in decision  # words, not colour only
    assert f"{expected['probability'] * 100:.1f}%" in browser.find_element(By.ID, "gauge-text").text
    assert browser.find_element(By.ID, "gauge").get_attribute("role") == "img"
    assert "threshold" in browser.find_element(By.ID, "gauge-desc").get_attribute("textContent")
    reasons = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#reasons li")]
    assert reasons == [r["text"] for r in expected["explanation"]["reasons"]]
    # the explanation as a picture: the 8 largest fields and the rest between the base and the client, with text
    fields = expected["explanation"]["fields"]
    shown = fields[:8] + ([{"label": f"All other fields ({len(fields) - 8})",
                            "contribution": sum(f["contribution"] for f in fields[8:])}] if len(fields) > 8 else [])
    chart = browser.find_element(By.ID, "waterfall")
    assert chart.get_attribute("role") == "img" and len(chart.find_elements(By.TAG_NAME, "rect")) == len(shown) + 2
    lines = browser.execute_script("return [...document.querySelectorAll('#waterfall-text li')].map(li => li.textContent)")
    expected_lines = [f"{f['label']}: {'+' if f['contribution'] > 0 else '−'}{abs(f['contribution']):.2f}, towards "
                      f"{'refusal' if f['contribution'] > 0 else 'approval'}" for f in shown]
    assert lines[1:1 + len(shown)] == expected_lines
    assert lines[0].startswith("Average client: score ") and f"{expected['probability'] * 100:.1f}%" in lines[-2]
    assert lines[-1].startswith("Threshold: score ")
    assert "percentage points" in decision  # a difference of probabilities is said in points
    _screenshot(browser, "client_explained")
    rows = browser.find_elements(By.CSS_SELECTOR, "#distributions .dist")
    assert len(rows) == len(expected["key_values"])
    assert all(r.find_element(By.TAG_NAME, "svg").get_attribute("aria-label") for r in rows)  # text alternative

    income = browser.find_element(By.ID, "w-income")
    income.clear()
    income.send_keys("5000000")
    browser.find_element(By.CSS_SELECTOR, "#whatif button[type=submit]").click()
    _wait(browser, lambda d: "With these amounts" in d.find_element(By.ID, "whatif-result").text)
    rescored = requests.post(f"{server.url}/clients/{client}/whatif", headers=headers,
                             json={"AMT_INCOME_TOTAL": 5000000.0,
                                   "AMT_CREDIT": float(browser.find_element(By.ID, "w-credit").get_attribute("value")),
                                   "AMT_ANNUITY": float(browser.find_element(By.ID, "w-annuity").get_attribute("value"))}).json()
    assert f"{rescored['probability'] * 100:.1f}%" in browser.find_element(By.ID, "whatif-result").text
    _screenshot(browser, "what_if")

    income.clear()
    income.send_keys("99999999999")  # allowed by the form, refused by the API: its message reaches the page
    browser.find_element(By.CSS_SELECTOR, "#whatif button[type=submit]").click()
    _wait(browser, lambda d: d.find_element(By.ID, "whatif-error").is_displayed())
    assert "AMT_INCOME_TOTAL" in browser.find_element(By.ID, "whatif-error").text

    # keyboard only: type an id and press Enter
    second = int(options[1].get_attribute("value"))
    field = browser.find_element(By.ID, "client-id")
    field.clear()
    field.send_keys(str(second), Keys.ENTER)
    _wait(browser, lambda d: d.find_element(By.ID, "r-id").text == str(second))
    field.clear()
    field.send_keys("1", Keys.ENTER)
    _wait(browser, lambda d: d.find_element(By.ID, "find-error").is_displayed())
    assert "not among" in browser.find_element(By.ID, "find-error").text

    # offline: every resource the page loaded came from the app itself
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(server.url) for u in urls)
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert all(" 404 " in m or " 422 " in m for m in errors), errors  # only the two refusals asked for above


def test_a_relationship_managers_session_compare_what_if_and_print(server, browser):
    """Open a client, read the global view, compare with a similar group on two features, run a what-if and
    see which reasons changed, then print the one-page summary; screenshots for the CI artifact."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    headers = {"X-API-Key": "k3y"}
    browser.get(server.url + "/?api_key=k3y")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#client-list option")) > 0)
    reference = requests.get(server.url + "/reference", headers=headers).json()
    meaning = browser.find_element(By.ID, "threshold-meaning").text
    assert f"{reference['threshold'] * 100:.1f}%" in meaning and "per client" in meaning
    drivers = browser.execute_script("return [...document.querySelectorAll('#drivers-text li')].map(li => li.textContent)")
    assert drivers == [f"{d['label']}: moves the score by {d['mean_abs_contribution']:.2f} on average"
                       for d in reference["drivers"][:10]]

    option = browser.find_elements(By.CSS_SELECTOR, "#client-list option")[0]
    client = int(option.get_attribute("value"))
    Select(browser.find_element(By.ID, "client-list")).select_by_index(0)
    _wait(browser, lambda d: d.find_element(By.ID, "r-id").text == str(client))
    before = requests.get(f"{server.url}/clients/{client}/explain", headers=headers).json()

    # a similar group: the client's own contract type, and two features compared
    contract = requests.get(f"{server.url}/clients/{client}", headers=headers).json()["client"]["NAME_CONTRACT_TYPE"]
    Select(browser.find_element(By.ID, "f-NAME_CONTRACT_TYPE")).select_by_value(contract)
    labels = {f["name"]: f["label"] for f in reference["features"]}
    first, second = reference["key_fields"][0], reference["key_fields"][1]
    for field, name in (("c-feature", first), ("c-versus", second)):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(labels[name])
    browser.find_element(By.CSS_SELECTOR, "#compare button[type=submit]").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "compare-text"))
    expected = requests.get(f"{server.url}/clients/{client}/compare", headers=headers,
                            params={"feature": first, "versus": second, "NAME_CONTRACT_TYPE": contract}).json()
    text = browser.find_element(By.ID, "compare-text").text
    assert f"the group of {expected['group']['clients']:,} similar clients" in text
    assert browser.find_element(By.ID, "grid-text").text.startswith("Share of refused clients in each cell")
    cells = browser.execute_script("return [...document.querySelectorAll('#compare-result rect.cell')].map(r => "
                                   "[r.getAttribute('fill'), r.nextSibling.getAttribute('fill')])")
    assert cells and all(contrast(over_white(cell), text) >= 4.5 for cell, text in cells)  # WCAG AA in every cell
    every = browser.execute_script("return [...Array(101).keys()].map(i => cellColours(i / 100))")
    failing = [(i, c) for i, c in enumerate(every) if contrast(over_white(c["fill"]), c["text"]) < 4.5]
    assert not failing, failing  # and at every share a cell can show, whatever this run's data
    _screenshot(browser, "compared_with_similar_clients")

    # a what-if that moves the reasons: the page says which ones changed, as the API does
    credit = browser.find_element(By.ID, "w-credit")
    credit.clear()
    credit.send_keys("10000")
    browser.find_element(By.CSS_SELECTOR, "#whatif button[type=submit]").click()
    _wait(browser, lambda d: "With these amounts" in d.find_element(By.ID, "whatif-result").text)
    body = {k: float(browser.find_element(By.ID, i).get_attribute("value"))
            for k, i in (("AMT_INCOME_TOTAL", "w-income"), ("AMT_CREDIT", "w-credit"), ("AMT_ANNUITY", "w-annuity"))}
    after = requests.post(f"{server.url}/clients/{client}/whatif", headers=headers, json=body).json()
    old = [r["text"] for r in before["explanation"]["reasons"]]
    changed = [r["text"] for r in after["explanation"]["reasons"] if r["text"] not in old]
    result = browser.find_element(By.ID, "whatif-result").text
    assert changed and f"Reasons that changed: {'; '.join(changed)}." in result  # the credit amount is said anew

    # the printable one-page summary: the decision, its reasons and the chart; the tools are left out
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert browser.find_element(By.ID, "reasons").is_displayed() and browser.find_element(By.ID, "waterfall").is_displayed()
    assert not browser.find_element(By.ID, "find").is_displayed() and not browser.find_element(By.ID, "whatif").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, ".print-only").is_displayed()
    _screenshot(browser, "printable_summary")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(server.url) for u in urls)  # every resource served by the app
