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


def test_sensitivity_sweep_shows_gallery_and_summary(page, cat_path):
    page.get_by_role("tab", name="Sensitivity").click()
    sweep_image = page.locator(".block", has=page.get_by_text("Image", exact=True)).locator("input[type=file]")
    sweep_image.last.set_input_files(str(cat_path))
    page.get_by_role("button", name="Sweep", exact=True).click()
    gallery = page.locator(".block", has=page.get_by_text("CAM overlays", exact=True)).last
    gallery.locator("img").nth(9).wait_for(timeout=90_000)  # the 10 overlays
    assert gallery.locator("img").count() >= 10
    page.get_by_text("magnitudes").first.wait_for(timeout=30_000)  # the one-sentence summary
    page.screenshot(path=str(SHOTS / "sensitivity.png"), full_page=True)


def test_training_tab_shows_curves_and_classifies_an_uploaded_digit(page, tmp_path):
    from PIL import Image, ImageDraw
    digit = tmp_path / "seven.png"
    im = Image.new("RGB", (200, 200), "white")
    draw = ImageDraw.Draw(im)
    draw.line([(50, 40), (150, 40)], fill="black", width=14)
    draw.line([(150, 40), (80, 170)], fill="black", width=14)
    im.save(digit)
    page.get_by_role("tab", name="Training").click()
    curves = page.locator(".block", has=page.get_by_text("Loss and metric per epoch", exact=True)).last
    curves.locator("img, svg").first.wait_for(timeout=60_000)
    upload = page.locator(".block", has=page.get_by_text("...or upload a photo of one", exact=True)).last
    upload.locator("input[type=file]").set_input_files(str(digit))
    page.get_by_role("button", name="Classify", exact=True).click()
    prediction = page.locator(".block", has=page.get_by_text("Prediction", exact=True)).last
    prediction.get_by_text("7").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "training.png"), full_page=True)
