"""Open run reports in headless Chromium: check that they render (console errors, broken images) and save a
full-page screenshot. The report browser test and the documentation's screenshots use it.

python -m domainclip.run_report.screenshot RUN_DIR [RUN_DIR ...] --out docs/img [--names report_ct ...]

Needs Chromium and ChromeDriver on PATH (Debian: ``apt-get install chromium chromium-driver``) and selenium (in the
``test`` extra).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainclip.errors import DomainClipError
from domainclip.run_report.files import REPORT_FILE

WIDTH = 1280
MAX_HEIGHT = 16000  # Chromium's screenshots of taller windows come back blank
# a closed network needs no background connections (the machine refuses them); root needs --no-sandbox
FLAGS = (
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
)
BROKEN_IMAGES_JS = "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)"


def browser_problem() -> str | None:
    """Why no browser can be opened here, or None."""
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (it is in the test extra: pip install -e '.[test]')"
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "no chromium / chromedriver on PATH (Debian: apt-get install chromium chromium-driver; .ci/run does)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (selenium WebDriver) at :data:`WIDTH` px, with its console log kept."""
    problem = browser_problem()
    if problem:
        raise DomainClipError(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="domainclip-chromium-") as profile:
        options = Options()
        options.binary_location = shutil.which("chromium")
        for flag in [*FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        try:
            driver.set_window_size(WIDTH, 900)
            yield driver
        finally:
            driver.quit()


@dataclass
class PageCheck:
    title: str
    console_problems: list[dict]  # console messages at WARNING or SEVERE
    images: int
    broken_images: list[str]  # alt texts of images that did not load


def open_page(driver: Any, page: Path) -> PageCheck:
    driver.get(Path(page).resolve().as_uri())
    problems = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    return PageCheck(
        title=driver.title,
        console_problems=problems,
        images=driver.execute_script("return document.images.length"),
        broken_images=driver.execute_script(BROKEN_IMAGES_JS),
    )


def full_page_screenshot(driver: Any, path: Path) -> Path:
    """The whole page (up to :data:`MAX_HEIGHT` px) at :data:`WIDTH` px wide, as PNG."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(height, MAX_HEIGHT))
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, 900)
    return Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--names", nargs="*", help="file names (without .png), one per run; default the run's name")
    args = parser.parse_args()
    names = args.names or [run.name for run in args.runs]
    args.out.mkdir(parents=True, exist_ok=True)
    with chromium() as driver:
        for run, name in zip(args.runs, names, strict=True):
            check = open_page(driver, run / REPORT_FILE)
            shot = full_page_screenshot(driver, args.out / f"{name}.png")
            broken, console = len(check.broken_images), len(check.console_problems)
            print(f"{shot}: {check.images} images, {broken} broken, {console} console problems")


if __name__ == "__main__":
    main()
