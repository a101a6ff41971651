"""The dashboard at `/` in a real headless browser: Debian's chromium driven by selenium through
/usr/bin/chromedriver (installed by scripts/install-browser.sh, which .ci/run calls; nothing is
downloaded by selenium). A real uvicorn server on loopback serves a trained model, a runs folder
with two runs, and drift figures from pre-stored samples. The screenshot is saved under tmp_path and
as runs/test-artifacts/dashboard.png (git-ignored) for a person to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from _helpers import make_frame, running_server

import kiln
from kiln.monitor.sampling import SampleStore
from kiln.serve.app import create_app
from kiln.serve.settings import ServeSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "runs" / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="no headless browser: needs Debian chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); "
           "install them with scripts/install-browser.sh (`make browser`, run by .ci/run)",
)

# Pixels of a canvas that are not plain white: > 0 means something was drawn.
_INKED = """
const c = document.getElementById(arguments[0]);
if (!c || !c.width || !c.height) return 0;
const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) if (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235) n++;
return n;
"""


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must never try to download anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver):
    """A 15 s wait that retries when the page re-renders an element it was reading (every 2 s refresh)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 15, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


def _text(driver, css: str, attempts: int = 20) -> str:
    """The text of the element at `css`, read again if the page replaced it mid-read."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(attempts - 1):
        try:
            return driver.find_element(By.CSS_SELECTOR, css).text
        except StaleElementReferenceException:
            continue
    return driver.find_element(By.CSS_SELECTOR, css).text


def _full_page_png(driver) -> bytes:
    """The whole page, not just the window (Chrome DevTools' captureBeyondViewport)."""
    import base64

    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    return base64.b64decode(shot["data"])


def _store_shifted_samples(db: Path, run_dir: Path, name: str) -> None:
    """Served traffic unlike the training data (x shifted by +2, mostly red), stored before the server
    starts: the server's first drift check, right at startup, flags it."""
    frame = make_frame(80, seed=9, shift=2.0).drop(columns=["y"])
    store = SampleStore(db, rate=1.0)
    try:
        store.record(name, "1", frame, kiln.load(run_dir).predict(frame))
    finally:
        store.close()


def test_dashboard_in_headless_chromium(run_dirs: dict[str, Path], browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    run_a, run_b = run_dirs["a"], run_dirs["b"]
    runs_folder = run_a.parent
    assert run_b.parent == runs_folder  # the fixture's folder holds both runs (and a train.csv, not a run)
    db = tmp_path / "samples.sqlite"
    _store_shifted_samples(db, run_a, "titanic")
    settings = ServeSettings(runs_dir=runs_folder, sample_rate=1.0, sample_db=db, drift_interval_s=3600, max_wait_ms=1)
    app = create_app({"titanic": run_a}, settings=settings)

    with running_server(app) as (url, _server):
        browser.get(url + "/")
        wait = _wait(browser)
        text = lambda css: _text(browser, css)  # noqa: E731

        # the page loads and finds the server ready
        wait.until(lambda d: text("#status") == "server ready")
        assert browser.title == "kiln dashboard"

        # served model: version and drift status (the drift check runs in a thread right after startup)
        row = '#models tr[data-model="titanic"]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
        assert text(row + " td.version") == "1"
        wait.until(lambda d: text(row + " td.drift").startswith("drift:"))
        drift = text(row + " td.drift")
        assert "x" in drift and "80 samples" in drift, drift

        # runs: both runs in the metrics table, each chart drawn
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) == 2)
        names = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "#runs td.run-name")}
        assert names == {run_a.name, run_b.name}
        headers = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#runs thead th")]
        assert "accuracy" in headers and "loss" in headers
        for canvas in ("loss-a", "loss-b", "compare-chart", "cm-a", "cm-b"):
            wait.until(lambda d, c=canvas: d.find_elements(By.ID, c) and int(d.find_element(By.ID, c).get_attribute("data-points") or 0) > 0)
            assert browser.execute_script(_INKED, canvas) > 300, f"canvas {canvas} looks blank"
        assert {text("#run-a h4")[2:], text("#run-b h4")[2:]} == {run_a.name, run_b.name}  # the two newest
        # pick the comparison explicitly: A = run a, B = run b
        browser.find_element(By.CSS_SELECTOR, f'#runs tr[data-run="{run_a.name}"] input[name="pick-a"]').click()
        browser.find_element(By.CSS_SELECTOR, f'#runs tr[data-run="{run_b.name}"] input[name="pick-b"]').click()
        wait.until(lambda d: (text("#run-a h4"), text("#run-b h4")) == ("A " + run_a.name, "B " + run_b.name))
        for canvas in ("loss-a", "loss-b", "cm-a", "cm-b"):
            assert browser.execute_script(_INKED, canvas) > 300, f"canvas {canvas} looks blank"
        compare = [tr.text for tr in browser.find_elements(By.CSS_SELECTOR, "#compare-metrics tr")]
        assert any(line.startswith("accuracy ") for line in compare), compare

        # try it: fill the form, submit, get the model's own prediction back
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#try-fields input"))
        values = {"x": "0.7", "color": "red", "flag": "yes"}
        for name, value in values.items():
            field = browser.find_element(By.CSS_SELECTOR, f'#try-fields input[name="{name}"]')
            field.clear()
            field.send_keys(value)
        browser.find_element(By.ID, "try-submit").click()
        wait.until(lambda d: d.find_elements(By.ID, "try-prediction") or d.find_elements(By.ID, "try-error"))
        assert not browser.find_elements(By.ID, "try-error"), text("#try-error")
        shown = {tr.find_elements(By.TAG_NAME, "td")[0].text: tr.find_elements(By.TAG_NAME, "td")[1].text
                 for tr in browser.find_elements(By.CSS_SELECTOR, "#try-prediction tr")}
        expected = kiln.load(run_a).predict(pd.DataFrame([{"x": 0.7, "color": "red", "flag": "yes"}])).iloc[0]
        assert shown["y_prediction"] == str(expected["y_prediction"])
        assert abs(float(shown["y_probability_1"]) - float(expected["y_probability_1"])) < 1e-3

        # the live table counts the request on a later refresh; the rate chart has points by then
        wait.until(lambda d: _text(d, row + " td:nth-child(6)") == "1")
        wait.until(lambda d: int(d.find_element(By.ID, "rate-chart").get_attribute("data-points") or 0) > 0)
        assert browser.execute_script(_INKED, "rate-chart") > 300

        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors

        shot = tmp_path / "dashboard.png"
        shot.write_bytes(_full_page_png(browser))

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "dashboard.png")


def test_try_it_generates_with_a_language_model(lm_dir: Path, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with running_server(create_app({"gpt": lm_dir})) as (url, _server):
        browser.get(url + "/")
        wait = _wait(browser)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#try-model option[value="gpt"]'))
        Select(browser.find_element(By.ID, "try-model")).select_by_value("gpt")
        prompt = browser.find_element(By.CSS_SELECTOR, '#try-fields input[name="prompt"]')
        prompt.clear()
        prompt.send_keys("the cat")
        browser.find_element(By.ID, "try-submit").click()
        wait.until(lambda d: d.find_elements(By.ID, "try-generation") or d.find_elements(By.ID, "try-error"))
        assert not browser.find_elements(By.ID, "try-error"), browser.find_element(By.ID, "try-error").text
        shown = browser.find_element(By.ID, "try-generation").text
        assert shown.startswith("the cat") and len(shown) > len("the cat")
        assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_try_it_uploads_an_image(image_dir: Path, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    picture = image_dir / "images" / "3.png"
    with running_server(create_app({"img": image_dir / "run"})) as (url, _server):
        browser.get(url + "/")
        wait = _wait(browser)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#try-model option[value="img"]'))
        Select(browser.find_element(By.ID, "try-model")).select_by_value("img")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#try-fields input[name="img"][type="file"]'))
        browser.find_element(By.CSS_SELECTOR, '#try-fields input[name="img"]').send_keys(str(picture))
        size = browser.find_element(By.CSS_SELECTOR, '#try-fields input[name="size"]')
        size.clear()
        size.send_keys("2")
        browser.find_element(By.ID, "try-submit").click()
        wait.until(lambda d: d.find_elements(By.ID, "try-prediction") or d.find_elements(By.ID, "try-error"))
        assert not browser.find_elements(By.ID, "try-error"), browser.find_element(By.ID, "try-error").text
        shown = {tr.find_elements(By.TAG_NAME, "td")[0].text: tr.find_elements(By.TAG_NAME, "td")[1].text
                 for tr in browser.find_elements(By.CSS_SELECTOR, "#try-prediction tr")}
        expected = kiln.load(image_dir / "run").predict(pd.DataFrame([{"img": str(picture), "size": 2.0}])).iloc[0]
        assert abs(float(shown["y_probability_1"]) - float(expected["y_probability_1"])) < 1e-3
        assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
