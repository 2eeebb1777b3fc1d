"""A person's path through the page, in headless Chromium (Debian's package)."""
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make sysdeps)")
SHOTS = Path(__file__).resolve().parent.parent / "runs" / "screenshots"
# Every error toast, recorded by the page itself from its first script on: a toast shown at load
# (or gone again before a test looks) is caught as well.
WATCH_ERRORS = """
window.__errorToasts = [];
new MutationObserver(() => {
  for (const toast of document.querySelectorAll('[data-testid="toast-body"].error')) {
    if (!toast.__seen) { toast.__seen = true; window.__errorToasts.push(toast.innerText); }
  }
}).observe(document, {childList: true, subtree: true});
"""
TRACEBACK = "Traceback (most recent call last)"
TOP_LABEL = "[data-testid='label-output-value']"  # a gr.Label's top class: its whole text is the label


def wait_for_top_label(block, label: str, timeout: float = 60_000) -> None:
    """Wait until the gr.Label in `block` names `label` as its top class: the element's whole
    text, not a substring (so "3" is not found in "30%", nor "piano" in "electric piano")."""
    from playwright.sync_api import expect
    expect(block.locator(TOP_LABEL)).to_have_text(label, timeout=timeout)
PAGES = []  # every page the tests opened


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def browser_hearing(playwright, wav: Path):
    """A Chromium whose microphone plays `wav` (looped) and which grants microphone access."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}"])


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(WATCH_ERRORS)
    PAGES.append(page)
    # not "networkidle": the Live tab's streaming microphone widget keeps the page from idling
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="Image explainer", exact=True).wait_for(timeout=60_000)
    page.wait_for_load_state("domcontentloaded")
    return page


def assert_no_errors(page) -> None:
    """No error toast since the last look, and no Python traceback on the page."""
    toasts = page.evaluate("() => { const seen = window.__errorToasts || []; window.__errorToasts = []; return seen; }")
    assert not toasts, f"error toast(s) on the page: {toasts}"
    assert TRACEBACK not in page.locator("body").inner_text(), "a Python traceback on the page"


@pytest.fixture(autouse=True)
def no_errors_on_the_page():
    """Every browser test fails (at its teardown) when an error toast or a traceback appeared."""
    yield
    for page in PAGES:
        if not page.is_closed():
            assert_no_errors(page)


@pytest.fixture(scope="module")
def page(browser, app_server):
    return open_page(browser, app_server)


def test_a_first_visit_to_every_tab_and_its_first_example_shows_no_error(browser, app_server):
    """A fresh page, as a new visitor gets it (the load events draw the Training tab's figures),
    then each tab in turn, clicking its first example where it has examples."""
    page = open_page(browser, app_server)
    names = [name.strip() for name in page.get_by_role("tab").all_inner_texts()]
    assert {"Image explainer", "Sound", "Sensitivity", "Digits", "Training"} <= set(names), names
    done = {"Image explainer": lambda: page.get_by_text("ms on cpu").first.wait_for(timeout=60_000),
            "Sound": lambda: page.locator("#sound-spectrogram img").first.wait_for(timeout=90_000),
            "Sensitivity": lambda: page.locator(".block", has=page.get_by_text("One object", exact=True)).first
            .locator(".image-frame img").wait_for(timeout=30_000)}  # the example row's cat, in the input
    for name in names:
        page.get_by_role("tab", name=name, exact=True).click()
        example = page.locator("button.gallery-item:visible, tr.tr-body:visible").first
        if example.count():
            example.click()
        if name in done:
            done[name]()
        if name == "Training":  # both load events' figures (the loss study's are on log axes)
            for label in ("Loss and metric per epoch", "LR finder", "train losses", "test losses"):
                block = page.locator(".block", has=page.get_by_text(label, exact=True)).last
                block.locator("img, svg").first.wait_for(timeout=60_000)
        assert_no_errors(page)
    page.close()


def test_upload_shows_label_and_overlay(page, coffee_path):
    page.get_by_text("Image explainer").first.wait_for()
    page.locator("input[type=file]").first.set_input_files(str(coffee_path))
    # the upload triggers the explanation: label and overlay appear
    top5 = page.locator(".block:visible", has=page.get_by_text("Top-5 predictions", exact=True)).last
    wait_for_top_label(top5, "espresso")
    page.get_by_text("ms on cpu").first.wait_for(timeout=30_000)
    for label in ("CAM overlay", "Raw CAM"):
        block = page.locator(".block", has=page.get_by_text(label, exact=True)).last
        block.locator("img").first.wait_for(timeout=30_000)
        assert block.locator("img").first.evaluate("img => img.naturalWidth") == 600  # the coffee photo's width
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "image_explainer.png"), full_page=True)


def test_the_faithfulness_panel_scores_the_map_of_the_image_on_screen(page):
    """After the coffee upload above: open "How faithful is this map?", score GradCAM's map, then
    compare the gradient methods: the curves and the ranked table appear, no error."""
    page.get_by_role("tab", name="Image explainer", exact=True).click()
    page.locator("#faith").get_by_text("How faithful is this map?").click()
    page.locator("#faith-score").click()
    page.locator("#faith-summary").get_by_text("insertion area").wait_for(timeout=60_000)
    assert re.match(r"GradCAM for espresso \(p = [01]\.\d{3}\)", page.locator("#faith-summary").inner_text())
    page.locator("#faith-plot img").wait_for(timeout=30_000)
    page.locator("#faith-compare").click()
    page.locator("#faith-summary").get_by_text("best first").wait_for(timeout=90_000)
    table = page.locator("#faith-summary table")
    assert table.locator("tbody tr").count() == 4
    assert_no_errors(page)


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
    wait_for_top_label(prediction, "7")
    page.screenshot(path=str(SHOTS / "training.png"), full_page=True)


def test_sound_tab_shows_spectrogram_cam_and_what_the_model_heard(page):
    """The 15 s ESC-50 scene (dog, siren, church bells): top-5, spectrogram + CAM, the re-synthesis, the timeline."""
    page.get_by_role("tab", name="Sound").click()
    page.get_by_text("15 s: dog, siren").first.click()  # an example shipped in assets/examples
    page.locator("#sound-input audio").first.wait_for(state="attached", timeout=30_000)  # its value has arrived
    page.get_by_role("button", name="Analyze", exact=True).click()
    top5 = page.locator(".block", has=page.get_by_text("Top-5 predictions", exact=True)).last
    top5.locator(".confidence-set, .output-class, [data-testid='label-output-value']").first.wait_for(timeout=90_000)
    page.locator("#sound-spectrogram img").first.wait_for(timeout=60_000)
    assert page.locator("#sound-spectrogram img").first.evaluate("img => img.naturalWidth") > 300
    page.locator("#sound-heard button, #sound-heard audio").first.wait_for(state="attached", timeout=60_000)
    page.screenshot(path=str(SHOTS / "sound.png"), full_page=True)


def test_an_instrument_example_is_analysed_by_the_instruments_model(page):
    """Clicking the piano recording selects the instruments model (the tab opens on AudioSet's)
    and analyses the recording with it: "piano" leads the top-5."""
    page.get_by_role("tab", name="Sound", exact=True).click()
    page.get_by_text("piano (real recording)", exact=True).first.click()
    model = page.locator("#sound-model input")
    page.wait_for_function("el => el.value.startsWith('instruments:')", arg=model.element_handle(), timeout=30_000)
    top5 = page.locator(".block", has=page.get_by_text("Top-5 predictions", exact=True)).last
    page.locator("#sound-spectrogram img").first.wait_for(timeout=60_000)
    wait_for_top_label(top5, "piano", timeout=90_000)
    assert_no_errors(page)


def test_the_sound_faithfulness_panel_scores_the_map_of_the_sound_on_screen(page):
    """After the scene above: the Sound tab's "How faithful is this map?" scores GradCAM's map on the
    model's log-mel, then ranks the gradient methods; no error."""
    page.get_by_role("tab", name="Sound", exact=True).click()
    page.locator("#faith-sound").get_by_text("How faithful is this map?").click()
    page.locator("#faith-sound-score").click()
    summary = page.locator("#faith-sound-summary")
    summary.get_by_text("insertion area").wait_for(timeout=60_000)
    assert summary.inner_text().startswith("GradCAM for ")
    page.locator("#faith-sound-plot img").wait_for(timeout=30_000)
    page.locator("#faith-sound-compare").click()
    summary.get_by_text("best first").wait_for(timeout=90_000)
    assert summary.locator("table tbody tr").count() == 4
    assert_no_errors(page)


def test_digits_tab_fuses_a_drawing_and_a_voice(page, tmp_path):
    import subprocess
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    from PIL import Image, ImageDraw
    digit, voice = tmp_path / "three.png", tmp_path / "three.wav"
    im = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(im).text((55, 10), "3", fill="black", font_size=170)
    im.save(digit)
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(voice), "three"], check=True, capture_output=True)
    page.get_by_role("tab", name="Digits").click()
    tab = page.locator("#digits-tab")
    tab.locator(".block", has=page.get_by_text("...or upload a photo of one", exact=True)).last.locator(
        "input[type=file]").set_input_files(str(digit))
    tab.locator(".block", has=page.get_by_text("Say a digit (or upload)", exact=True)).last.locator(
        "input[type=file]").set_input_files(str(voice))
    page.get_by_role("button", name="Recognise", exact=True).click()
    fused = tab.locator(".block", has=page.get_by_text("Fused", exact=True)).last
    wait_for_top_label(fused, "3")
    page.get_by_text("Fused by").first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "digits.png"), full_page=True)


# --- the Live tab, with a fake microphone fed from a file (needs the AudioSet base: audioset is its default)

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
DOG_LIKE = {"Dog", "Bark", "Animal", "Domestic animals, pets", "Bow-wow", "Growling", "Yip", "Howl",
            "Canidae, dogs, wolves"}
SIREN_LIKE = {"Siren", "Civil defense siren", "Police car (siren)", "Ambulance (siren)",
              "Fire engine, fire truck (siren)", "Emergency vehicle"}


def needs_base():
    from models import pretrained
    if pretrained.find() is None:
        pytest.skip("the AudioSet base is not on this machine (python -m models.pretrained --download)")


def mic_file(folder: Path, *parts) -> Path:
    """A 48 kHz 16-bit WAV (what Chromium's fake capture reads) of example clips and silences (seconds)."""
    import numpy as np
    import soundfile as sf
    from models.audio_loading import load_audio
    rate, pieces = 48000, []
    for part in parts:
        pieces.append(np.zeros(int(part * rate), np.float32) if isinstance(part, (int, float))
                      else load_audio(EXAMPLES / part, rate)[: 5 * rate])
    path = folder / "mic.wav"
    sf.write(path, np.concatenate(pieces), rate, subtype="PCM_16")
    return path


def open_live(browser, url: str):
    """A new visitor's page on the Live tab, ready to record."""
    page = browser.new_context(permissions=["microphone"], viewport={"width": 1400, "height": 1100}).new_page()
    page.add_init_script(WATCH_ERRORS)
    PAGES.append(page)
    page.goto(url, wait_until="load")  # not "networkidle": with a microphone the page never idles
    page.get_by_role("tab", name="Live", exact=True).click(timeout=60_000)
    page.locator("#live-mic").get_by_role("button", name="Record").wait_for(timeout=10_000)
    page.wait_for_timeout(1000)  # the microphone widget lists its devices first
    return page


def record(page, seconds: float) -> float:
    """Press Record; when to stop."""
    import time
    page.locator("#live-mic").get_by_role("button", name="Record").click()
    return time.monotonic() + seconds


def stop(page, until: float) -> list[str]:
    """Stop when the time comes; the labels of the "heard so far" line, in order."""
    import re
    import time
    time.sleep(max(0.0, until - time.monotonic()))
    page.locator("#live-mic").get_by_role("button", name="Stop").click()
    page.locator("#live-segments").get_by_text("Heard so far").wait_for(timeout=30_000)
    text = page.locator("#live-segments").inner_text()
    return [m.group(1) for m in re.finditer(r"(?:\u2192|:)\s*(.+?) \(\d+\.\d-\d+\.\d s\)", text)]


def test_live_listening_hears_a_dog_then_a_siren_and_sends_the_recording_to_the_sound_tab(playwright, app_server,
                                                                                          tmp_path):
    needs_base()
    browser = browser_hearing(playwright, mic_file(tmp_path, "esc50-dog.ogg", 2.0, "esc50-siren.ogg"))
    try:
        # Gradio 6.31's microphone widget sometimes streams in 0.1 s chunks and such a stream can stall
        # on a loaded machine (nothing reaches the server): one more listening before failing
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        for attempt in (1, 2):
            page = open_live(browser, app_server)
            try:
                labels = stop(page, record(page, 12.5))
                break
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
                PAGES.remove(page)
                page.close()
        dogs = [i for i, label in enumerate(labels) if label in DOG_LIKE or "dog" in label.lower()]
        sirens = [i for i, label in enumerate(labels) if label in SIREN_LIKE or "siren" in label.lower()]
        assert dogs and sirens and dogs[0] < sirens[-1], labels
        assert "ms on cpu" in page.locator("#live-status").inner_text()
        page.locator("#live-spectrogram img").wait_for(timeout=10_000)
        page.locator("#live-timeline img").wait_for(timeout=10_000)
        # the recording so far, to download, and in one click into the Sound tab's analysis
        page.locator("#live-recording").get_by_text("live-recording").first.wait_for(timeout=10_000)
        page.locator("#live-send").click()
        page.locator("#sound-spectrogram img").wait_for(timeout=60_000)
        assert page.get_by_role("tab", name="Sound", exact=True).get_attribute("aria-selected") == "true"
        page.screenshot(path=str(SHOTS / "live.png"), full_page=True) if SHOTS.is_dir() else None
        assert_no_errors(page)
    finally:
        browser.close()


def test_two_live_listeners_each_see_only_their_own_sound(playwright, app_server, tmp_path):
    """Two visitors listening at once (two browsers, each its own fake microphone): each page's
    timeline names only what its own microphone played."""
    needs_base()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dog = browser_hearing(playwright, mic_file(tmp_path / "a", "esc50-dog.ogg"))
    siren = browser_hearing(playwright, mic_file(tmp_path / "b", "esc50-siren.ogg"))
    try:
        page_a, page_b = open_live(dog, app_server), open_live(siren, app_server)
        until_a, until_b = record(page_a, 10.0), record(page_b, 10.0)
        heard_a, heard_b = stop(page_a, until_a), stop(page_b, until_b)
        dogs = [label for label in heard_a if label in DOG_LIKE or "dog" in label.lower()]
        sirens = [label for label in heard_b if label in SIREN_LIKE or "siren" in label.lower()]
        assert dogs and sirens, (heard_a, heard_b, page_a.locator("#live-status").inner_text(),
                                 page_b.locator("#live-status").inner_text())
        assert not any(label in SIREN_LIKE or "siren" in label.lower() for label in heard_a), heard_a
        assert not any(label in DOG_LIKE or "dog" in label.lower() for label in heard_b), heard_b
        for page in (page_a, page_b):
            assert_no_errors(page)
    finally:
        dog.close()
        siren.close()


def test_the_live_tab_without_a_microphone_says_so_and_where_to_go_instead(page):
    """Headless Chromium without fake devices has no microphone: the widget says so, and the tab
    points to the Sound tab's upload (nothing is pressed: Record would only repeat it in a toast)."""
    page.get_by_role("tab", name="Live", exact=True).click()
    # the device list (a <select>) holds that one entry
    page.locator("#live-mic option", has_text="No microphone found").wait_for(state="attached", timeout=10_000)
    assert page.locator("#live-mic select").inner_text().strip() == "No microphone found"
    assert "upload a recording in the Sound tab" in page.locator("#live-intro").inner_text()
    page.get_by_role("tab", name="Sound", exact=True).click()
