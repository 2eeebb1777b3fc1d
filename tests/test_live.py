"""Live listening (models.live): a stream of chunks in, a frame per hop out, on the tiny synthetic
sound model (tones and noise at 8 kHz; see test_sound.py) so nothing needs the AudioSet base.
The browser test with a fake microphone is in test_browser.py."""
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from test_sound import SR, noise, predictor, served, tone  # noqa: F401 (fixtures)

MIC_RATE = 48000  # what a browser's microphone gives


def chunks(y: np.ndarray, rate: int, seconds: float = 0.1):
    n = int(round(seconds * rate))
    for i in range(0, len(y), n):
        yield y[i: i + n]


def as_int16(y: np.ndarray) -> np.ndarray:
    return np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)


def upsample(y: np.ndarray, rate: int = MIC_RATE) -> np.ndarray:
    import soxr
    return soxr.resample(y, SR, rate).astype(np.float32)


def test_a_stream_of_a_tone_then_noise_gives_a_timeline_in_that_order(predictor, tmp_path):
    from models.live import LiveListener, segments
    live = LiveListener(predictor, hop_seconds=0.5, background=False, recording_path=tmp_path / "rec.wav")
    stream = upsample(np.concatenate([tone(3.0, 440), noise(3.0)]))
    frames = [f for c in chunks(as_int16(stream), MIC_RATE) if (f := live.push(MIC_RATE, c)) is not None]
    assert abs(live.heard_seconds - 6.0) < 0.05
    # one analysis per 0.5 s hop, none skipped (the resampler may still hold the last few samples)
    assert len(frames) in (11, 12) and live.skipped == 0
    runs = [s["label"] for s in segments(live.timeline, gap=0.5)]
    assert runs[0] == "tone-440" and runs[-1] == "noise", runs
    # the first frames hear the tone, the last ones the noise, each with its probability on top
    assert next(iter(frames[2].probs)) == "tone-440" and next(iter(frames[-1].probs)) == "noise"
    assert frames[-1].target == "noise" and frames[-1].at == pytest.approx(len(frames) * 0.5, abs=0.05)
    # the scrolling picture: 10 s of the model's frames wide, two pixels per mel band high
    spec = predictor.spec
    history_frames = predictor.features(np.zeros(int(10 * spec.sample_rate), np.float32)).shape[1]
    assert frames[-1].image.shape == (2 * spec.n_mels, history_frames, 3) and frames[-1].image.dtype == np.uint8
    # the recording on disk: all of it, at the model's rate
    path = live.close()
    y, rate = sf.read(path)
    assert rate == spec.sample_rate and abs(len(y) / rate - 6.0) < 0.05
    assert np.abs(y).max() > 0.1


def test_only_the_last_seconds_and_rows_are_kept(predictor, monkeypatch):
    import models.live
    monkeypatch.setattr(models.live, "MAX_TIMELINE_ROWS", 5)
    live = models.live.LiveListener(predictor, hop_seconds=0.5, history_seconds=2.0, background=False)
    for c in chunks(tone(30.0, 1000), SR, seconds=0.5):  # float32 at the model's own rate
        live.push(SR, c)
    assert len(live._buffer) == int(2.0 * SR)  # the last max(history, window) seconds
    assert len(live.timeline) == 5 and live.timeline[-1]["end"] == pytest.approx(30.0)
    assert {r["label"] for r in live.timeline} == {"tone-1000"}


def test_stereo_int16_at_another_rate_is_mixed_down_and_resampled(predictor):
    from models.live import LiveListener
    live = LiveListener(predictor, hop_seconds=1.0, background=False)
    y = upsample(tone(2.3, 2500), 44100)
    stereo = as_int16(np.stack([y, y], axis=1))
    frames = [f for c in chunks(stereo, 44100) if (f := live.push(44100, c)) is not None]
    # a streaming resampler holds back a little (~0.1 s from 44.1 to 8 kHz) until more comes
    assert abs(live.heard_seconds - 2.3) < 0.12 and len(frames) == 2
    assert frames[-1].target == "tone-2500"
    with pytest.raises(ValueError, match="sample rate"):
        live.push(0, stereo[:100])


def test_a_hop_due_while_the_last_analysis_runs_is_skipped_not_queued(predictor, monkeypatch):
    """Chunks keep flowing while an analysis runs in its thread; hops that fall due meanwhile are
    counted as skipped, and no analysis waits in a queue behind it."""
    from models.live import LiveListener
    slow = predictor._window_cams
    running = threading.Event()

    def slow_cams(*args, **kwargs):
        running.set()
        time.sleep(0.3)
        return slow(*args, **kwargs)

    monkeypatch.setattr(predictor, "_window_cams", slow_cams)
    live = LiveListener(predictor, hop_seconds=0.25)  # background: the default
    hops = 0
    for c in chunks(tone(2.0, 440), SR, seconds=0.25):  # 8 hops fed at once, faster than real time
        live.push(SR, c)
        hops += 1
    assert running.is_set()
    live.wait(5.0)
    analysed = len(live.timeline)
    assert live.skipped >= 1 and analysed + live.skipped == hops
    assert analysed < hops  # the skipped ones never ran later
    time.sleep(0.4)
    assert len(live.timeline) == analysed


def test_two_listeners_on_one_model_keep_their_own_sound(predictor):
    """Two visitors share the model, never the window or timeline."""
    from models.live import LiveListener
    a = LiveListener(predictor, hop_seconds=0.5, background=False)
    b = LiveListener(predictor, hop_seconds=0.5, background=False)
    for ca, cb in zip(chunks(tone(2.0, 440), SR), chunks(noise(2.0), SR)):
        a.push(SR, ca)
        b.push(SR, cb)
    assert {r["label"] for r in a.timeline} == {"tone-440"}
    assert {r["label"] for r in b.timeline} == {"noise"}


def test_an_analysis_that_fails_in_its_thread_is_reported(predictor, monkeypatch):
    from models.live import LiveListener

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(predictor, "_window_cams", broken)
    live = LiveListener(predictor, hop_seconds=0.5)
    for c in chunks(tone(0.6, 440), SR):
        live.push(SR, c)
    live.wait(5.0)
    assert live.error == "RuntimeError: out of memory" and live.timeline == []


def test_segments_and_the_timeline_picture():
    from models.live import ROW_HEIGHT, render_timeline, segments
    rows = [{"start": s, "end": s + 1.0, "label": label, "prob": p}
            for s, label, p in [(0, "Dog", 0.9), (1, "Dog", 0.7), (2, "Silence", 0.5), (4, "Siren", 0.8)]]
    runs = segments(rows, gap=1.0)
    assert [(r["label"], r["start"], r["end"]) for r in runs] == [("Dog", 0, 2.0), ("Silence", 2, 3.0),
                                                                ("Siren", 4, 5.0)]
    assert runs[0]["prob"] == pytest.approx(0.8)
    image = render_timeline(rows, 5.0)
    assert image.shape == (30 + 3 * ROW_HEIGHT, 1000, 3)
    # a coloured bar in each label's row where that label was on top, nothing elsewhere
    def coloured(row: int, t: float) -> bool:
        x = 210 + int(t / 5.0 * (1000 - 220))
        pixel = image[4 + row * ROW_HEIGHT + ROW_HEIGHT // 2, x]
        return not (pixel == 255).all()
    assert coloured(0, 0.5) and coloured(0, 1.5) and not coloured(0, 4.5)
    assert coloured(2, 4.5) and not coloured(2, 0.5)


def test_the_tab_handler_keeps_two_visitors_apart_and_frees_what_they_leave(served, monkeypatch, tmp_path):
    """demos.live.on_chunk as Gradio calls it for two visitors whose chunks interleave: each gets a
    session of its own (window, timeline, recording), the outputs name only their own sound, and a
    visitor who leaves (gr.State's delete callback) has the recording closed."""
    import demos.common
    import demos.live as tab
    monkeypatch.setattr(demos.common, "OUTPUTS_DIR", tmp_path / "outputs")
    from functools import partial
    from models.live import LiveListener
    monkeypatch.setattr(tab, "LiveListener", partial(LiveListener, background=False))  # frames in order
    a = b = None
    texts = {"a": "", "b": ""}
    for ca, cb in zip(chunks(as_int16(upsample(tone(3.0, 440))), MIC_RATE),
                      chunks(as_int16(upsample(noise(3.0))), MIC_RATE)):
        *out_a, a = tab.on_chunk((MIC_RATE, ca), a, "esc50:cnn", 0.5, "GradCAM")
        *out_b, b = tab.on_chunk((MIC_RATE, cb), b, "esc50:cnn", 0.5, "GradCAM")
        for key, out in (("a", out_a), ("b", out_b)):
            if isinstance(out[3], str):
                texts[key] = out[3]
    assert a is not b and a.folder != b.folder
    assert {r["label"] for r in a.listener.timeline} == {"tone-440"}
    assert {r["label"] for r in b.listener.timeline} == {"noise"}
    assert "tone-440" in texts["a"] and "noise" not in texts["a"]
    assert "noise" in texts["b"] and "tone-440" not in texts["b"]
    # Stop: the recording to download; a visitor who just leaves has theirs closed by the state's callback
    _, file_update, send_update = tab.on_stop(a)
    assert file_update["visible"] and sf.info(file_update["value"]).duration == pytest.approx(3.0, abs=0.1)
    assert send_update["interactive"]
    tab._free(b)
    assert b.listener._wav is None and sf.info(str(b.listener.recording_path)).duration > 2.5


def test_the_app_serves_the_microphone_widget_with_half_second_chunks():
    """Gradio 6.31's Audio widget forces 0.1 s chunks when it mounts (two such streams stall each
    other); the app's middleware serves its script with CHUNK_SECONDS instead and passes every other
    request through. The installed Gradio must still hold the one assignment the patch replaces."""
    import gradio as gr
    from fastapi.testclient import TestClient
    from starlette.middleware import Middleware

    from demos.stream_chunks import ASSETS, CHUNK_SECONDS, FORCED, StreamChunks, patched
    scripts = [p for p in ASSETS.glob("audio-*.js") if FORCED.search(p.read_text(encoding="utf-8"))]
    assert len(scripts) == 1, "Gradio's microphone widget changed: check demos/stream_chunks.py"
    name = scripts[0].name
    body = patched(name).decode()
    assert f".props.stream_every={CHUNK_SECONDS};" in body and not FORCED.search(body)
    assert len(body) == len(scripts[0].read_text(encoding="utf-8")) + len(str(CHUNK_SECONDS)) - 2
    assert patched("../../../blocks.py") is None and patched("audio-missing.js") is None

    with gr.Blocks() as demo:
        gr.Markdown("hello")
    from gradio.routes import App
    app = App.create_app(demo, app_kwargs={"middleware": [Middleware(StreamChunks)]})
    client = TestClient(app)
    served = client.get(f"/assets/{name}")
    assert served.status_code == 200 and served.text == body
    assert served.headers["content-type"].startswith("text/javascript")
    other = next(p.name for p in ASSETS.glob("*.js") if not p.name.startswith("audio-"))
    assert client.get(f"/assets/{other}").content == (ASSETS / other).read_bytes()  # untouched
