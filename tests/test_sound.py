"""Sound tab and AudioPredictor end to end, on a tiny synthetic sound model (three tones and
noise, training/configs/synthetic-audio.yaml) trained here in seconds and served as esc50:cnn
from a temporary checkpoint folder: nothing needs the real ESC-50 checkpoints or data."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from conftest import ROOT, SYNTHETIC_AUDIO_CONFIG as CONFIG

SR = 8000          # the synthetic model's sample rate and window (training/configs/synthetic-audio.yaml)
CLIP = 1.0
PREDICTED = "(predicted class)"


def tone(seconds: float, freq: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, sr: int = SR, amp: float = 0.2) -> np.ndarray:
    return np.random.default_rng(1).normal(0, amp, int(round(seconds * sr))).astype(np.float32)


def _use_checkpoints(monkeypatch, folder: Path) -> None:
    import models.factory
    import models.registry
    monkeypatch.setattr(models.registry, "CHECKPOINT_DIR", folder)
    models.factory._cached.cache_clear()


@pytest.fixture
def served(monkeypatch, checkpoints):
    """The registry pointed at the tiny model's folder (and the predictor cache emptied around)."""
    _use_checkpoints(monkeypatch, checkpoints)
    yield checkpoints
    import models.factory
    models.factory._cached.cache_clear()


@pytest.fixture
def predictor(served):
    from models import load_predictor
    return load_predictor("esc50:cnn", device="cpu")


# --- the predictor through the registry


def test_registry_serves_the_tiny_model_and_it_hears_each_tone(predictor, tmp_path):
    assert predictor.modality == "audio" and predictor.model_id == "esc50:cnn"
    assert predictor.labels == ["tone-440", "tone-1000", "tone-2500", "noise"]
    assert predictor.spec.sample_rate == SR and predictor.spec.clip_seconds == CLIP
    for label in predictor.labels:
        y = noise(1.0) if label == "noise" else tone(0.6, float(label.split("-")[1]))
        assert next(iter(predictor.predict(y))) == label
        # the same sound as a 44.1 kHz stereo file: decoded, mixed down, resampled
        path = tmp_path / f"{label}.wav"
        wave44 = noise(1.0, 44100) if label == "noise" else tone(0.6, float(label.split("-")[1]), 44100)
        sf.write(path, np.stack([wave44, wave44], axis=1), 44100, subtype="PCM_16")
        top = predictor.predict(str(path), top_k=2)
        assert next(iter(top)) == label and len(top) == 2


def test_analyze_grids_and_heard_clip(predictor):
    y = np.concatenate([np.zeros(2000, np.float32), tone(0.5, 1000.0), np.zeros(2000, np.float32)])  # 1 s
    a = predictor.analyze(y, method="GradCAM")
    spec = predictor.spec
    assert a.target == "tone-1000" and a.target_prob == pytest.approx(a.probs["tone-1000"])
    assert a.logmel.shape == a.heatmap.shape == (spec.n_mels, len(a.times)) and len(a.freqs) == spec.n_mels
    assert 0.0 <= a.heatmap.min() and a.heatmap.max() == pytest.approx(1.0)
    assert len(a.heard) == len(a.waveform) == len(y) and a.heard.dtype == np.float32
    assert np.isfinite(a.heard).all() and not a.silent
    assert a.times[0] == 0 and a.times[-1] == pytest.approx((len(a.times) - 1) * spec.hop_length / SR)
    assert 0 < a.freqs[0] < a.freqs[-1] < SR / 2
    # the re-synthesis only removes: no more energy than the input, in the tone's band
    assert np.sum(a.heard ** 2) <= np.sum(y ** 2) * 1.01
    for method in ("GradCAM++", "LayerCAM", "XGradCAM"):
        b = predictor.analyze(y, method=method, target="tone-440")
        assert b.target == "tone-440" and b.heatmap.shape == a.heatmap.shape
    with pytest.raises(ValueError, match="not available for sound models"):
        predictor.analyze(y, method="SmoothGradCAM++")


def test_long_recording_gets_a_timeline_per_window(predictor):
    # 3.5 clip lengths: tone-440, tone-2500, noise, then half a clip of tone-1000
    y = np.concatenate([tone(1.0, 440.0), tone(1.0, 2500.0), noise(1.0), tone(0.5, 1000.0)])
    a = predictor.analyze(y)
    assert [w["start"] for w in a.timeline] == [0.0, 1.0, 2.0, 3.0]
    assert [w["label"] for w in a.timeline] == ["tone-440", "tone-2500", "noise", "tone-1000"]
    assert all(w["end"] - w["start"] == pytest.approx(CLIP) for w in a.timeline)
    assert a.heatmap.shape == a.logmel.shape == (predictor.spec.n_mels, 1 + len(y) // predictor.spec.hop_length)
    assert len(a.heard) == len(y)
    assert a.times[-1] == pytest.approx(3.5, abs=0.02)
    # overlapping windows: a hop of half a clip gives 1 + ceil((3.5 - 1) / 0.5) = 6 windows
    b = predictor.analyze(y, hop_seconds=0.5)
    assert [w["start"] for w in b.timeline] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert b.heatmap.shape == a.heatmap.shape


def test_the_last_window_ends_with_the_recording_and_its_cam_is_placed_there(predictor):
    """2.3 s in 1 s windows: [0, 1) and, for the 0.3 s left (under half a window), no padded window of
    its own: the last one moves to [1.3, 2.3). Its CAM is placed from 1.3 s, not at a multiple of the hop."""
    y = np.concatenate([tone(1.0, 440.0), np.zeros(int(0.9 * SR), np.float32), tone(0.4, 2500.0)])
    a = predictor.analyze(y, target="tone-2500")
    assert [w["start"] for w in a.timeline] == [0.0, 1.3] and a.timeline[-1]["end"] == pytest.approx(2.3)
    assert [w["label"] for w in a.timeline] == ["tone-440", "tone-2500"]
    strongest = a.heatmap.max(0)
    assert 1.9 <= a.times[strongest.argmax()] <= 2.3  # on the tone (1.9-2.3 s); placed from 1.0 s it would be ~1.7 s
    assert not strongest[(a.times > 1.02) & (a.times < 1.28)].any()  # 1-1.3 s: in no window (see window_starts)
    assert a.heatmap.shape == a.logmel.shape


def test_same_features_in_training_and_in_the_app(predictor, tmp_path):
    """A test clip of the data set, through the training model's front end and through the
    app (a WAV file -> load_audio -> the served model): the same log-mel, the same prediction."""
    from training.model_setup import build
    from training.config import load_config
    from training.datasets import load_task_data
    cfg = load_config(CONFIG)
    data = load_task_data(cfg, ROOT)
    trained_model = build(cfg, data).eval()  # the normalisation statistics training computed
    waves = data.test.tensors[0][:4]
    for i, wave in enumerate(waves):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, wave.numpy(), SR, subtype="FLOAT")
        y = predictor.load(str(path))
        assert len(y) == len(wave)
        with torch.no_grad():
            train_feats = trained_model.frontend(wave[None])
            app_feats = predictor.model.frontend(torch.from_numpy(y)[None])
            direct = predictor.model(wave[None]).softmax(-1)[0].numpy()
        torch.testing.assert_close(app_feats, train_feats, atol=1e-4, rtol=1e-4)
        probs = predictor.predict(str(path))
        np.testing.assert_allclose([probs[label] for label in predictor.labels], direct, atol=1e-5)
        # the spectrogram the tab shows is those features before normalisation
        a = predictor.analyze(str(path))
        fe = trained_model.frontend
        np.testing.assert_allclose(a.logmel, (train_feats[0, 0] * fe.std + fe.mean).numpy(), atol=1e-3)


# --- odd inputs, through the predictor and the tab's handler


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("odd-audio")
    f = {}
    f["empty.wav"] = d / "empty.wav"
    f["empty.wav"].write_bytes(b"")
    f["text.wav"] = d / "text.wav"
    f["text.wav"].write_text("this is not a sound\n")
    whole = d / "whole.wav"
    sf.write(whole, tone(1.0, 1000.0), SR, subtype="PCM_16")
    raw = whole.read_bytes()
    f["truncated.wav"] = d / "truncated.wav"
    f["truncated.wav"].write_bytes(raw[: len(raw) // 2])
    f["header-only.wav"] = d / "header-only.wav"
    f["header-only.wav"].write_bytes(raw[:30])
    f["zeros.wav"] = d / "zeros.wav"
    sf.write(f["zeros.wav"], np.zeros(SR, np.float32), SR)
    f["50ms.wav"] = d / "50ms.wav"
    sf.write(f["50ms.wav"], tone(0.05, 1000.0), SR)
    f["six.wav"] = d / "six.wav"
    sf.write(f["six.wav"], np.stack([tone(0.8, 1000.0)] * 6, axis=1), SR, subtype="FLOAT")
    f["192k.wav"] = d / "192k.wav"
    sf.write(f["192k.wav"], tone(0.8, 1000.0, 192000), 192000, subtype="PCM_24")
    nan = tone(0.8, 1000.0)
    nan[100:200], nan[300] = np.nan, np.inf
    f["nan.wav"] = d / "nan.wav"
    sf.write(f["nan.wav"], nan, SR, subtype="FLOAT")
    f["recording.wav"] = d / "recording.wav"  # a browser's WebM recording uploaded as .wav
    f["recording.wav"].write_bytes(b"\x1aE\xdf\xa3" + bytes(60))
    return f


REFUSED = {"empty.wav": "0 bytes", "text.wav": "not an audio file", "header-only.wav": "header-only.wav",
           "recording.wav": "recording"}


def test_odd_files_through_the_predictor(predictor, odd_files):
    from models.errors import InputError
    for name, path in odd_files.items():
        if name in REFUSED:
            with pytest.raises(InputError) as info:
                predictor.analyze(str(path))
            assert "\n" not in str(info.value) and REFUSED[name] in str(info.value), (name, str(info.value))
            continue
        a = predictor.analyze(str(path))
        assert a.heatmap.shape == a.logmel.shape and len(a.heard) == len(a.waveform), name
        assert np.isfinite(a.logmel).all() and np.isfinite(a.heard).all(), name
        assert a.silent == (name == "zeros.wav"), name
        if name not in {"zeros.wav", "50ms.wav"}:  # 50 ms is far shorter than any training tone
            assert next(iter(a.probs)) == "tone-1000", name


@pytest.mark.filterwarnings("ignore:The recording is silent")
def test_odd_files_through_the_handler(served, odd_files):
    import gradio as gr

    from demos import sound
    for name, path in odd_files.items():
        if name in REFUSED:
            with pytest.raises(gr.Error) as info:
                sound.analyze_sound(str(path), "esc50:cnn", "GradCAM", PREDICTED, None)
            message = info.value.message
            assert "\n" not in message and name.split(".")[0] in message, (name, message)
            continue
        labels, figure, heard, original, timeline, text = sound.analyze_sound(str(path), "esc50:cnn", "GradCAM",
                                                                              PREDICTED, None)
        assert len(labels) == 4 and figure is not None, name
        assert sf.info(heard).frames == sf.info(original).frames, name
        assert ("silent" in text) == (name == "zeros.wav"), (name, text)
    with pytest.raises(gr.Error, match="unknown class"):
        sound.analyze_sound(str(odd_files["50ms.wav"]), "esc50:cnn", "GradCAM", "no such class", None)
    with pytest.raises(gr.Error, match="not available for sound models"):
        sound.analyze_sound(str(odd_files["50ms.wav"]), "esc50:cnn", "ScoreCAM", PREDICTED, None)
    with pytest.raises(gr.Error, match="Upload or record"):
        sound.analyze_sound(None, "esc50:cnn", "GradCAM", PREDICTED, None)


def test_a_webm_recording_named_wav_is_renamed_for_the_loader(tmp_path):
    from demos.widgets import content_suffix, with_content_suffix
    webm = tmp_path / "audio.wav"
    webm.write_bytes(b"\x1aE\xdf\xa3" + bytes(60))
    fixed = with_content_suffix(str(webm))
    assert fixed.endswith("audio.webm") and Path(fixed).read_bytes() == webm.read_bytes()
    m4a = tmp_path / "voice.wav"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    assert with_content_suffix(str(m4a)).endswith("voice.m4a")
    wav = tmp_path / "ok.wav"
    sf.write(wav, tone(0.1, 440.0), SR)
    assert with_content_suffix(str(wav)) == str(wav) and content_suffix(wav) == ""
    assert with_content_suffix(str(tmp_path / "missing.wav")) == str(tmp_path / "missing.wav")


def test_missing_checkpoint_shows_the_train_command(monkeypatch, tmp_path, odd_files):
    import gradio as gr

    from demos import sound
    _use_checkpoints(monkeypatch, tmp_path)  # an empty folder: no sound model is trained
    try:
        for model_id, config in (("esc50:cnn", "esc50-cnn.yaml"), ("esc50:effnet-lite0", "esc50.yaml")):
            card = sound.describe_model(model_id)
            assert "python -m training.train" in card and config in card
            with pytest.raises(gr.Error) as info:
                sound.analyze_sound(str(odd_files["50ms.wav"]), model_id, "GradCAM", PREDICTED, None)
            assert "python -m training.train" in info.value.message and config in info.value.message
            assert "\n" not in info.value.message
            target, card, _hop = sound.on_model_change(model_id)
            assert target["choices"] == [PREDICTED] and "python -m training.train" in card
        assert sound.clip_seconds("esc50:cnn") is None
    finally:
        import models.factory
        models.factory._cached.cache_clear()


def test_model_change_sets_classes_card_and_hop(served):
    from demos import sound
    target, card, hop = sound.on_model_change("esc50:cnn")
    assert target["choices"] == [PREDICTED, "noise", "tone-1000", "tone-2500", "tone-440"]
    assert "1 s windows at 8000 Hz" in card and "test accuracy" in card
    assert hop["value"] == CLIP


# --- the handler's pieces


def test_effective_hop():
    from demos.sound import MAX_WINDOWS, effective_hop
    assert effective_hop(3.0, 5.0, None) == 5.0              # short clip: one window anyway
    assert effective_hop(60.0, 5.0, None) == 5.0             # default: the window length, no overlap
    assert effective_hop(60.0, 5.0, 2.5) == 2.5
    assert effective_hop(60.0, 5.0, 9.0) == 5.0              # never a gap between windows
    assert effective_hop(60.0, 5.0, 0.0) == 5.0
    hop = effective_hop(600.0, 5.0, 0.25)                    # 10 minutes at 0.25 s would be 2381 windows
    assert 1 + int(np.ceil((600.0 - 5.0) / hop)) <= MAX_WINDOWS


def test_handler_outputs_for_a_long_recording(served, tmp_path):
    from demos import sound
    path = tmp_path / "scene.wav"
    sf.write(path, np.concatenate([tone(1.0, 440.0), tone(1.0, 2500.0), tone(0.5, 2500.0)]), SR)
    labels, figure, heard, original, timeline, info = sound.analyze_sound(str(path), "esc50:cnn", "GradCAM",
                                                                          PREDICTED, 5.0)
    assert set(labels) == {"tone-440", "tone-1000", "tone-2500", "noise"}
    assert sf.info(heard).duration == pytest.approx(2.5) and sf.info(original).samplerate == SR
    assert timeline["visible"] is True
    ax = timeline["value"].axes[0]  # the top label of each of the 3 windows, a bar each
    assert ax.get_title(loc="left").startswith("Top label per window (3 windows)") and len(ax.collections) == 3
    assert {t.get_text() for t in ax.get_yticklabels()} <= set(labels)
    assert "3 windows of 1 s every 1 s" in info and "ms on cpu" in info
    labels, figure, heard, original, timeline, info = sound.analyze_sound(str(path), "esc50:cnn", "LayerCAM",
                                                                          "tone-440", 0.5)
    assert "class **tone-440**" in info and "4 windows of 1 s every 0.5 s" in info
    short = tmp_path / "short.wav"
    sf.write(short, tone(0.7, 2500.0), SR)
    *_, timeline, info = sound.analyze_sound(str(short), "esc50:cnn", "GradCAM", PREDICTED, None)
    assert timeline["visible"] is False and "one 1 s window" in info


def test_handler_says_which_windows_it_analysed(served, tmp_path):
    from demos import sound
    cases = {"one-second-resampled.wav": (tone(1.0, 2500.0, 22050), 22050, "one 1 s window"),
             "two-samples-over.wav": (tone(1.0 + 2 / SR, 2500.0), SR, "one 1 s window"),
             "a-bit-over.wav": (tone(1.2, 2500.0), SR, "one 1 s window, the middle 0.10-1.10 s"),
             "two-windows.wav": (tone(2.0, 2500.0), SR, "2 windows of 1 s every 1 s;"),
             "two-and-a-bit.wav": (tone(2.3, 2500.0), SR,
                                   "2 windows of 1 s every 1 s, the last one from 1.30 s to the recording's end;"),
             "two-and-a-half.wav": (tone(2.5, 2500.0), SR, "3 windows of 1 s every 1 s;")}
    for name, (y, sr, windows) in cases.items():
        sf.write(tmp_path / name, y, sr)
        *_, timeline, info = sound.analyze_sound(str(tmp_path / name), "esc50:cnn", "GradCAM", PREDICTED, None)
        assert windows in info, (name, info)
        assert timeline["visible"] is (not windows.startswith("one")), name


def test_handler_says_what_was_analysed_when_it_is_not_the_whole_file(served, tmp_path):
    from conftest import wav_bytes
    from demos import sound
    pcm = (tone(70.0, 1000.0) * 32767).astype("<i2").tobytes()
    (tmp_path / "claims-100-bytes.wav").write_bytes(wav_bytes(pcm, SR, data_size=100))
    sf.write(tmp_path / "clipped.wav", np.clip(tone(1.0, 440.0, amp=1.3), -1, 1), SR, subtype="PCM_16")
    notes = {"claims-100-bytes.wav": "Only 6 ms of audio could be read from this 1.1 MB file",
             "clipped.wav": "The recording is clipped (45% of samples at full scale)"}
    for name, note in notes.items():
        *_, info = sound.analyze_sound(str(tmp_path / name), "esc50:cnn", "GradCAM", PREDICTED, None)
        assert info.startswith("\u26a0\ufe0f " + note), info
    sf.write(tmp_path / "fine.wav", tone(1.0, 1000.0), SR)
    assert "\u26a0" not in sound.analyze_sound(str(tmp_path / "fine.wav"), "esc50:cnn", "GradCAM", PREDICTED, None)[-1]


def test_handler_writes_each_requests_files_in_a_folder_of_its_own(served, tmp_path, monkeypatch):
    from demos import common, sound
    monkeypatch.setattr(common, "OUTPUTS_DIR", tmp_path / "outputs")
    sf.write(tmp_path / "tone.wav", tone(1.0, 1000.0), SR)
    runs = [sound.analyze_sound(str(tmp_path / "tone.wav"), "esc50:cnn", "GradCAM", PREDICTED, None) for _ in range(2)]
    heard, original = [Path(r[2]) for r in runs], [Path(r[3]) for r in runs]
    assert heard[0] != heard[1] and heard[0].read_bytes() == heard[1].read_bytes()  # same result, not the same file
    assert {p.parent for p in heard} == {p.parent for p in original} and heard[0].parent != heard[1].parent
    assert all(p.parent.parent == common.OUTPUTS_DIR for p in heard)


def test_figures_have_real_axes(predictor):
    from models.audio_plots import figure_png, spectrogram_figure, timeline_figure
    y = np.concatenate([tone(1.0, 440.0), tone(1.0, 2500.0), tone(0.5, 1000.0)])
    a = predictor.analyze(y)
    fig = spectrogram_figure(a.logmel, a.heatmap, a.times, a.freqs, a.target, "GradCAM")
    top, bottom = fig.axes[0], fig.axes[1]
    for ax in (top, bottom):
        assert ax.get_xlim()[0] == pytest.approx(0, abs=0.01) and ax.get_xlim()[1] == pytest.approx(2.5, abs=0.02)
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert {"100", "500", "1k", "2k"} <= set(ticks), ticks
    assert bottom.get_xlabel() == "time (s)" and "tone" in bottom.get_title(loc="left")
    png = Image.open(__import__("io").BytesIO(figure_png(fig)))
    assert png.size == (900, 560)
    tl = timeline_figure(a.timeline, 2.5, next(iter(a.probs)), 0.5)
    assert {t.get_text() for t in tl.axes[0].get_yticklabels()} == {w["label"] for w in a.timeline}
    assert tl.axes[0].get_xlim() == (0, 2.5)
    with pytest.raises(ValueError):
        spectrogram_figure(a.logmel, a.heatmap[:, 1:], a.times, a.freqs)


# --- the app, in a subprocess, through gradio_client


@pytest.fixture(scope="module")
def client(sound_app):
    from gradio_client import Client
    return Client(sound_app, verbose=False)


def test_app_analyze_sound(client, tmp_path):
    from gradio_client import handle_file
    path = tmp_path / "two-tones.wav"
    sf.write(path, np.concatenate([tone(1.0, 2500.0, 22050), tone(1.5, 2500.0, 22050)]), 22050)  # resampled
    labels, plot, heard, original, timeline, info = client.predict(
        handle_file(str(path)), "esc50:cnn", "GradCAM", PREDICTED, 1.0, api_name="/analyze_sound")
    assert labels["label"] == "tone-2500" and len(labels["confidences"]) == 4
    assert sf.info(heard).duration == pytest.approx(2.5) and sf.info(heard).samplerate == SR
    assert sf.info(original).duration == pytest.approx(2.5)
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/png;base64,")
    assert timeline["visible"] is True and timeline["value"]["plot"].startswith("data:image/png")
    assert "tone-2500" in info and "3 windows" in info


def test_app_bad_files_get_a_message_and_the_server_keeps_serving(client, odd_files, tmp_path):
    from gradio_client import handle_file
    for name in ("text.wav", "empty.wav"):
        with pytest.raises(Exception) as err:
            client.predict(handle_file(str(odd_files[name])), "esc50:cnn", "GradCAM", PREDICTED, 1.0,
                           api_name="/analyze_sound")
        assert name in str(err.value) and REFUSED[name] in str(err.value), str(err.value)
    with pytest.raises(Exception, match="python -m training.train"):
        client.predict(handle_file(str(odd_files["50ms.wav"])), "esc50:effnet-lite0", "GradCAM", PREDICTED, 5.0,
                       api_name="/analyze_sound")
    *_, info = client.predict(handle_file(str(odd_files["zeros.wav"])), "esc50:cnn", "GradCAM", PREDICTED, 1.0,
                              api_name="/analyze_sound")
    assert "silent" in info
    labels, *_ = client.predict(handle_file(str(odd_files["six.wav"])), "esc50:cnn", "GradCAM", PREDICTED, 1.0,
                                api_name="/analyze_sound")
    assert labels["label"] == "tone-1000"


def test_a_multi_resolution_model_explains_on_the_shown_spectrogram():
    """A three-channel front end (three STFT windows): the app shows channel 0's log-mel, and
    the CAM and the re-synthesis follow that grid."""
    from models.architectures import build_model
    from models.audio_spec import AudioSpec
    from models.audio_predictor import AudioPredictor
    spec = AudioSpec(sample_rate=SR, clip_seconds=1.0, n_mels=64, n_fft=512, hop_length=256, extra_n_ffts=(256, 1024))
    model = build_model("audio-effnet", spec=spec.to_dict(), num_classes=3, pretrained=False)
    p = AudioPredictor("test:multi", model, ["a", "b", "c"], spec, "body._bn1", torch.device("cpu"))
    y = tone(2.5, 700.0)
    a = p.analyze(y, method="GradCAM")
    assert a.logmel.shape == a.heatmap.shape == (spec.n_mels, len(a.times))
    assert len(a.heard) == len(y) and np.isfinite(a.heard).all()
    assert len(a.timeline) >= 2 and sum(a.probs.values()) <= 1.0 + 1e-6


def test_an_efficientat_front_end_explains_on_its_own_grid():
    """EfficientAT's pre-emphasis takes a sample off: 5 s at hop 320 make 500 frames, not 501; the
    CAM is drawn on the grid the front end makes (it once was a frame wider than the spectrogram)."""
    from models.architectures import build_model
    from models.audio_spec import AudioSpec
    from models.audio_predictor import AudioPredictor
    from models.efficientat import SPEC
    from models.architectures import architecture
    spec = AudioSpec(clip_seconds=5.0, **SPEC)
    model = build_model("audio-mn", num_classes=3, pretrained=False)
    p = AudioPredictor("test:mn", model, ["a", "b", "c"], spec, architecture("audio-mn").cam_layer, torch.device("cpu"))
    for seconds in (5.0, 12.0):
        a = p.analyze(tone(seconds, 700.0, sr=spec.sample_rate))
        assert a.logmel.shape == a.heatmap.shape == (spec.n_mels, len(a.times)), seconds
    assert spec.frames == 500


def test_the_model_card_says_when_probabilities_are_calibrated():
    """The calibrated instruments model's card gives its temperature; AudioSet's (sigmoid, as released) does not."""
    from demos import sound
    from models import load_predictor
    t = load_predictor("instruments:mn04").temperature
    assert t > 1.0  # training.calibrate softened an over-confident model
    assert f"calibrated (temperature {t:.2f}" in sound.describe_model("instruments:mn04")
    assert "calibrated" not in sound.describe_model("audioset:mn04")
