"""A person's path through the page, in headless Chromium (Debian's package)."""
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make sysdeps)")
SHOTS = Path(__file__).resolve().parent.parent / "runs" / "screenshots"


@pytest.fixture(scope="module")
def page(app_server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_server, wait_until="networkidle")
        yield page
        browser.close()


def test_upload_shows_label_and_overlay(page, coffee_path):
    page.get_by_text("Image explainer").first.wait_for()
    page.locator("input[type=file]").first.set_input_files(str(coffee_path))
    # the upload triggers the explanation: label and overlay appear
    page.get_by_text("espresso").first.wait_for(timeout=60_000)
    page.get_by_text("ms on cpu").first.wait_for(timeout=30_000)
    for label in ("CAM overlay", "Raw CAM"):
        block = page.locator(".block", has=page.get_by_text(label, exact=True)).last
        block.locator("img").first.wait_for(timeout=30_000)
        assert block.locator("img").first.evaluate("img => img.naturalWidth") == 600  # the coffee photo's width
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "image_explainer.png"), full_page=True)
