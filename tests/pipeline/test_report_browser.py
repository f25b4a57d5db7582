"""Each domain's quickstart report.html (one tiny step, as the recipe tests run it), opened in headless Chromium
(Debian's chromium + chromium-driver, driven by selenium): it renders without console errors or broken images,
its tables sort, and a full-page screenshot is saved beside the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from domainclip.run_report.screenshot import browser_problem, chromium, full_page_screenshot, open_page

pytestmark = pytest.mark.skipif(browser_problem() is not None, reason=str(browser_problem()))

QUICKSTARTS = ["ct/quickstart.yaml", "wsi/quickstart.yaml", "satellite/quickstart.yaml"]


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def column(table, k: int) -> list[float]:
    from selenium.webdriver.common.by import By

    return [float(cell.text) for cell in table.find_elements(By.CSS_SELECTOR, f"tbody tr td:nth-child({k})")]


@pytest.mark.parametrize("relative", QUICKSTARTS, ids=[Path(q).parent.name for q in QUICKSTARTS])
def test_the_quickstart_report_renders_in_chromium(relative: str, one_step_run, browser) -> None:
    from selenium.webdriver.common.by import By

    run = one_step_run(relative)
    page = open_page(browser, run / "report.html")
    assert page.title.startswith("domainclip run report")
    assert page.console_problems == []
    assert page.images >= 8 and page.broken_images == []  # curves, ROC, calibration, previews ...

    headline = browser.find_elements(By.CSS_SELECTOR, "table.sortable")[0]
    value_header = headline.find_elements(By.TAG_NAME, "th")[1]
    value_header.click()
    assert column(headline, 2) == sorted(column(headline, 2)), "clicking 'value' sorts the table ascending"
    value_header.click()
    assert column(headline, 2) == sorted(column(headline, 2), reverse=True), "a second click sorts it descending"

    shot = full_page_screenshot(browser, run / "report.png")
    assert shot.stat().st_size > 50_000, "the screenshot is (nearly) blank"


def test_a_broken_image_and_a_script_error_are_caught(browser, tmp_path: Path) -> None:
    """The checks above can fail: a page with an image that does not decode and a script that throws."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img alt="bad" src="data:image/png;base64,AAAA"><script>undefined_call();</script>')
    check = open_page(browser, page)
    assert check.broken_images == ["bad"] and any("undefined_call" in p["message"] for p in check.console_problems)
