"""Each domain's quickstart report.html (one tiny step, as the recipe tests run it), opened in headless Chromium
(Debian's chromium + chromium-driver, driven by selenium): it renders without console errors or broken images,
its tables sort, and a full-page screenshot is saved beside the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is in the test extra: pip install -e '.[test]'")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium / chromedriver on PATH (Debian: apt-get install chromium chromium-driver; .ci/run does)",
)

QUICKSTARTS = ["ct/quickstart.yaml", "wsi/quickstart.yaml", "satellite/quickstart.yaml"]
# the flags a closed network needs (no background connections that the machine refuses) and root needs
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
BROKEN_IMAGES = "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


def full_page_screenshot(driver, path: Path) -> Path:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height, 16000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    return path


@pytest.mark.parametrize("relative", QUICKSTARTS, ids=[Path(q).parent.name for q in QUICKSTARTS])
def test_the_quickstart_report_renders_in_chromium(relative: str, one_step_run, browser) -> None:
    from selenium.webdriver.common.by import By

    run = one_step_run(relative)
    browser.get((run / "report.html").as_uri())
    assert browser.title.startswith("domainclip run report")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    assert browser.execute_script("return document.images.length") >= 8  # curves, ROC, calibration, previews ...
    assert browser.execute_script(BROKEN_IMAGES) == []

    headline = browser.find_elements(By.CSS_SELECTOR, "table.sortable")[0]
    value_header = headline.find_elements(By.TAG_NAME, "th")[1]
    value_header.click()
    values = [float(c.text) for c in headline.find_elements(By.CSS_SELECTOR, "tbody tr td:nth-child(2)")]
    assert values == sorted(values), "clicking 'value' sorts the headline table ascending"
    value_header.click()
    values = [float(c.text) for c in headline.find_elements(By.CSS_SELECTOR, "tbody tr td:nth-child(2)")]
    assert values == sorted(values, reverse=True), "a second click sorts it descending"

    shot = full_page_screenshot(browser, run / "report.png")
    assert shot.stat().st_size > 50_000, "the screenshot is (nearly) blank"
