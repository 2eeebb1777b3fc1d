"""Audio front end (loading, length policy, log-mel) and the ESC-50 loader.

Every odd file is made on the spot; the ESC-50 download is tested against a fake archive
served on loopback, never the internet.
"""
import functools
import http.server
import io
import logging
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import LIBRARY_PHRASES, data_root, wav_bytes
from models.audio_loading import MAX_AUDIO_SECONDS, MIN_AUDIO_SECONDS, load_audio, load_audio_report
from models.audio_spec import AudioSpec
from models.audio_windows import fix_length, is_silent, trim_silence, windows
from models.logmel import LogMel, spectrogram_axes
from models.errors import InputError

SR = 16000


def tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(y: np.ndarray, sr: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(y))) * sr / len(y))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio")
    f = {name: d / name for name in ["empty.wav", "text.wav", "truncated.wav", "header.wav", "zeros.wav",
                                     "50ms.wav", "10ms.wav", "long.wav", "six.wav", "192k.wav", "nan.wav",
                                     "clip.ogg", "clip.flac", "clip.m4a"]}
    f["empty.wav"].write_bytes(b"")
    f["text.wav"].write_text("this is not a sound\n")
    sf.write(f["truncated.wav"], tone(1.0, SR), SR, subtype="PCM_16")
    data = f["truncated.wav"].read_bytes()
    f["truncated.wav"].write_bytes(data[: len(data) // 2])
    f["header.wav"].write_bytes(data[:30])  # not even the whole header
    sf.write(f["zeros.wav"], np.zeros(SR, np.float32), SR)
    sf.write(f["50ms.wav"], tone(0.05, SR), SR)
    sf.write(f["10ms.wav"], tone(0.01, SR), SR)
    # just over the limit; 8 kHz int16 keeps it at 10 MB, refused from the header alone
    sf.write(f["long.wav"], np.zeros((MAX_AUDIO_SECONDS + 1) * 8000, np.int16), 8000)
    six = np.stack([np.full(SR, 0.1 * (k + 1), np.float32) for k in range(6)], axis=1)  # channel k = 0.1 (k+1)
    sf.write(f["six.wav"], six, SR, subtype="FLOAT")
    sf.write(f["192k.wav"], tone(1.0, 192000, freq=1000.0), 192000, subtype="PCM_24")
    nan = tone(1.0, SR)
    nan[100:200], nan[300] = np.nan, np.inf
    sf.write(f["nan.wav"], nan, SR, subtype="FLOAT")
    sf.write(f["clip.ogg"], tone(1.0, 22050), 22050, format="OGG", subtype="VORBIS")
    sf.write(f["clip.flac"], tone(1.0, 44100), 44100, format="FLAC")
    f["clip.m4a"].write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    return f


def refused(x, name: str | None = None) -> str:
    with pytest.raises(InputError) as info:
        load_audio(x, SR)
    message = str(info.value)
    assert "\n" not in message
    if name:
        assert name in message
    return message


# --- loading


def test_empty_file_is_refused(files):
    assert "0 bytes" in refused(files["empty.wav"], "empty.wav")


def test_text_named_wav_is_refused(files):
    assert "not an audio file" in refused(files["text.wav"], "text.wav")


def test_truncated_wav_gives_what_is_there(files):
    y = load_audio(files["truncated.wav"], SR)
    assert 0.4 * SR < len(y) < 0.6 * SR
    np.testing.assert_allclose(y[:1000], tone(1.0, SR)[:1000], atol=1e-3)


def test_file_cut_inside_its_header_is_refused(files):
    assert "damaged, truncated" in refused(files["header.wav"], "header.wav")


def _malformed() -> dict[str, bytes]:
    """Files no decoder reads, each failing in its own way inside libsndfile or audioread."""
    pcm = (tone(0.5, 8000) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    sf.write(buf, tone(1.0, SR), SR, format="FLAC")
    flac = buf.getvalue()
    return {"cut-in-header.wav": wav_bytes(pcm, 8000)[:30],
            "no-data-chunk.wav": wav_bytes(pcm, 8000, data=False),
            "zero-channels.wav": wav_bytes(pcm, 8000, channels=0),
            "rate-zero.wav": wav_bytes(pcm, 0),
            "unknown-encoding.wav": wav_bytes(pcm, 8000, tag=0x1234),
            "garbage-after-header.flac": flac[:42] + np.random.default_rng(0).bytes(4000),
            "garbage.ogg": b"OggS" + np.random.default_rng(1).bytes(500),
            "text.mp3": b"this is a text file, renamed\n" * 10}


@pytest.mark.parametrize("name", list(_malformed()))
def test_unreadable_files_are_described_in_our_words_and_logged_in_the_decoders(tmp_path, name, caplog):
    path = tmp_path / name
    path.write_bytes(_malformed()[name])
    with caplog.at_level(logging.WARNING, logger="models.audio_loading"):
        message = refused(path, name)
    assert not [phrase for phrase in LIBRARY_PHRASES if phrase in message], message
    assert "damaged, truncated" in message or "not an audio file" in message, message
    if "damaged" in message:  # what the decoder said is in the server log
        assert name in caplog.text and "could not decode" in caplog.text


# --- what was analysed: notes


def test_a_file_far_bigger_than_its_audio_says_how_much_was_read(tmp_path):
    """A 2.3 MB WAV whose data chunk claims 100 bytes: libsndfile reads those 50 samples."""
    pcm = (tone(70.0, SR) * 32767).astype("<i2").tobytes()
    path = tmp_path / "claims-100-bytes.wav"
    path.write_bytes(wav_bytes(pcm, SR, data_size=100))
    loaded = load_audio_report(path, SR)
    assert len(loaded.waveform) == int(MIN_AUDIO_SECONDS * SR)  # 50 samples, padded
    assert loaded.notes == ["Only 3 ms of audio could be read from this 2.1 MB file: the rest of it is damaged or "
                            "not audio."]
    whole = tmp_path / "whole.wav"
    whole.write_bytes(wav_bytes(pcm, SR))
    assert load_audio_report(whole, SR).notes == []


def test_clipping_and_floats_beyond_full_scale_are_noted(tmp_path, files):
    clipped = np.clip(tone(1.0, SR, amp=1.3), -1, 1)  # |1.3 sin| >= 1 for 1 - 2 asin(1 / 1.3) / pi = 44% of the time
    sf.write(tmp_path / "clipped.wav", clipped, SR, subtype="PCM_16")
    notes = load_audio_report(tmp_path / "clipped.wav", SR).notes
    assert len(notes) == 1 and "clipped (44% of samples at full scale)" in notes[0], notes
    assert "clipped" in load_audio_report((SR, (clipped * 32767).astype(np.int16)), SR).notes[0]
    sf.write(tmp_path / "loud.wav", tone(1.0, SR) * 1000, SR, subtype="FLOAT")
    loaded = load_audio_report(tmp_path / "loud.wav", SR)
    assert loaded.notes == ["The samples reach 500, far beyond full scale (1.0): the recording was scaled down by "
                            "that peak."]
    assert abs(float(np.abs(loaded.waveform).max()) - 1.0) < 1e-3
    sf.write(tmp_path / "overshoot.wav", tone(1.0, SR, amp=1.3), SR, subtype="FLOAT")  # a lossy decoder's overshoot
    loaded = load_audio_report(tmp_path / "overshoot.wav", SR)
    assert loaded.notes == [] and abs(float(np.abs(loaded.waveform).max()) - 1.0) < 1e-3
    for name in ("clip.flac", "six.wav", "192k.wav", "zeros.wav"):  # nothing to say
        assert load_audio_report(files[name], SR).notes == [], name


def test_silence_is_returned_and_flagged(files):
    y = load_audio(files["zeros.wav"], SR)
    assert len(y) == SR and is_silent(y)
    assert not is_silent(load_audio(files["50ms.wav"], SR))


def test_short_clips_are_padded_to_the_minimum(files):
    assert len(load_audio(files["50ms.wav"], SR)) == int(0.05 * SR)
    y = load_audio(files["10ms.wav"], SR)
    assert len(y) == int(np.ceil(MIN_AUDIO_SECONDS * SR))
    assert not y[int(0.01 * SR):].any()  # zeros after the sound


def test_ten_minutes_is_refused(files):
    assert "minutes" in refused(files["long.wav"], "long.wav")
    assert "minutes" in refused((8000, np.zeros((MAX_AUDIO_SECONDS + 1) * 8000, np.int16)))


def test_six_channels_become_their_mean(files):
    y = load_audio(files["six.wav"], SR)
    assert y.ndim == 1 and len(y) == SR
    np.testing.assert_allclose(y, 0.35, atol=1e-6)


def test_192khz_is_resampled(files):
    y = load_audio(files["192k.wav"], SR)
    assert y.dtype == np.float32 and len(y) == SR
    assert abs(peak_hz(y, SR) - 1000) <= 2


def test_nan_and_inf_samples_become_zero(files):
    y = load_audio(files["nan.wav"], SR)
    assert np.isfinite(y).all() and len(y) == SR
    assert not y[100:200].any() and y[300] == 0


def test_float_louder_than_full_scale_is_scaled_to_its_peak(tmp_path):
    """Float samples of 1e30 (finite) once overflowed the power spectrogram into NaN."""
    y = (np.sin(np.linspace(0, 2000, 8000)) * 1e30).astype(np.float32)
    sf.write(tmp_path / "loud.wav", y, 8000, subtype="FLOAT")
    out = load_audio(tmp_path / "loud.wav", 8000)
    assert np.isfinite(out).all() and abs(float(np.abs(out).max()) - 1.0) < 1e-3
    spec = AudioSpec(sample_rate=8000, clip_seconds=1.0)
    feats = LogMel.from_spec(spec)(torch.from_numpy(fix_length(out, 8000))[None])
    assert torch.isfinite(feats).all()
    quiet = np.float32(0.5) * np.sin(np.linspace(0, 2000, 8000)).astype(np.float32)
    np.testing.assert_allclose(load_audio((8000, quiet), 8000), quiet, atol=1e-6)  # in range: untouched


def test_trim_silence_cuts_the_word_out():
    sr = 8000
    word = np.sin(np.linspace(0, 600, sr // 2)).astype(np.float32) * 0.5
    y = np.concatenate([np.zeros(sr, np.float32), word, np.zeros(sr, np.float32)])
    out = trim_silence(y, 30)
    assert abs(len(out) - len(word)) < 0.1 * sr  # to a frame (64 ms) either side
    assert trim_silence(y, None) is y and len(trim_silence(np.zeros(sr, np.float32), 30)) == sr


def test_gradio_tuple_int16(files):
    pcm = (tone(1.0, 48000) * 32767).astype(np.int16)
    y = load_audio((48000, pcm), SR)
    assert y.dtype == np.float32 and len(y) == SR and 0.45 < np.abs(y).max() < 0.55
    stereo = load_audio((48000, np.stack([pcm, pcm], axis=1)), SR)  # (n, channels) as gr.Audio gives
    np.testing.assert_allclose(stereo, y, atol=1e-6)
    int32 = load_audio((SR, (tone(0.5, SR) * 2**31 * 0.99).astype(np.int32)), SR)
    assert 0.45 < np.abs(int32).max() < 0.55
    assert "sample rate" in refused((0, pcm))


def test_array_is_taken_at_the_target_rate():
    y = load_audio(tone(1.0, SR).astype(np.float64), SR)
    assert y.dtype == np.float32 and len(y) == SR


@pytest.mark.parametrize("name, sr", [("clip.ogg", 22050), ("clip.flac", 44100)])
def test_ogg_and_flac(files, name, sr):
    y = load_audio(files[name], SR)
    assert abs(len(y) - SR) <= 1 and abs(peak_hz(y, SR) - 440) <= 2


def test_m4a_without_ffmpeg_says_so(files, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "ffmpeg" in refused(files["clip.m4a"], "clip.m4a")


# --- length policy


def test_fix_length_pads_at_the_end_and_crops_the_centre():
    y = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(y, 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(fix_length(y, 12), list(range(10)) + [0, 0])


def test_windows_count_and_padding():
    y = np.arange(1, int(2.3 * SR) + 1, dtype=np.float32)  # 36800 samples, no zeros
    w, starts = windows(y, SR, SR // 2, SR)
    assert w.shape == (4, SR)
    np.testing.assert_allclose(starts, [0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(w[1], y[SR // 2: SR // 2 + SR])
    last = w[-1]
    assert (last[: len(y) - 24000] == y[24000:]).all() and not last[len(y) - 24000:].any()
    short, starts = windows(y[:100], SR, SR // 2, SR)
    assert short.shape == (1, SR) and list(starts) == [0] and not short[0, 100:].any()
    exact, _ = windows(y[:2 * SR], SR, SR, SR)
    assert exact.shape == (2, SR)


@pytest.mark.parametrize("seconds, starts", [
    (5.0, [0.0]),                        # exactly one window
    (5.0 + 2 / SR, [1 / SR]),            # a sample or two over (a 5.00 s file resampled): one window, centred
    (5.009, [0.0045]),                   # up to 10 ms over: one window, the centre (as training's fix_length cuts)
    (5.02, [0.01]),                      # 20 ms over (a Vorbis-padded ESC-50 clip): the same
    (10.0, [0.0, 5.0]),                  # exactly two
    (10.009, [0.0, 5.0]),                # two and up to 10 ms: the rest is dropped
    (12.0, [0.0, 7.0]),                  # two + 2 s: no window of its own; the last one ends with the recording
    (13.0, [0.0, 5.0, 10.0]),            # two + 3 s (>= half a window): a third, padded
    (6.0, [0.5]),                        # one + 1 s: the only window is the centre
])
def test_windows_at_the_edges(seconds, starts):
    n = 5 * SR
    y = np.arange(1, int(round(seconds * SR)) + 1, dtype=np.float32)  # no zeros: padding shows
    w, got = windows(y, n, n, SR)
    np.testing.assert_allclose(got, starts)
    assert w.shape == (len(starts), n)
    for window, start in zip(w, got):
        part = y[int(round(start * SR)): int(round(start * SR)) + n]
        np.testing.assert_array_equal(window[: len(part)], part)
    padding = n - (len(y) - int(round(got[-1] * SR)))
    assert (padding > 0) == (seconds == 13.0)  # only the third window of 13 s is padded
    assert not w[-1, n - max(padding, 0):].any()


# --- features


SPEC = AudioSpec(sample_rate=SR, clip_seconds=5, n_mels=64, n_fft=400, hop_length=160)


def test_spec_round_trip():
    assert AudioSpec.from_dict(SPEC.to_dict()) == SPEC
    assert SPEC.to_dict()["kind"] == "audio" and SPEC.to_dict()["f_max"] is None
    assert SPEC.clip_samples == 80000 and SPEC.frames == 501


def test_logmel_shape_and_determinism():
    frontend = LogMel.from_spec(SPEC).eval()
    wave = torch.from_numpy(tone(5.0, SR, freq=1000.0))[None]
    a, b = frontend(wave), frontend(wave.clone())
    assert a.shape == (1, 1, SPEC.n_mels, SPEC.frames)
    assert torch.equal(a, b) and torch.isfinite(a).all()


def test_logmel_does_not_depend_on_the_batch():
    frontend = LogMel.from_spec(SPEC)
    quiet = torch.from_numpy(tone(5.0, SR, amp=1e-3))[None]
    loud = torch.from_numpy(tone(5.0, SR, freq=3000.0, amp=1.0))[None]
    alone, batched = frontend(quiet), frontend(torch.cat([quiet, loud]))[:1]
    torch.testing.assert_close(alone, batched, rtol=1e-5, atol=1e-4)


def test_logmel_normalisation_is_stored_in_the_state_dict():
    frontend = LogMel.from_spec(SPEC)
    wave = torch.from_numpy(tone(1.0, SR))[None]
    raw = frontend(wave)
    frontend.set_stats(-30.0, 20.0)
    torch.testing.assert_close(frontend(wave), (raw + 30.0) / 20.0)
    copy = LogMel.from_spec(SPEC)
    copy.load_state_dict(frontend.state_dict())
    assert float(copy.mean) == -30.0 and float(copy.std) == 20.0


def test_spectrogram_axes_match_the_features():
    frontend = LogMel.from_spec(SPEC)
    times, freqs = spectrogram_axes(SPEC, SPEC.frames)
    assert len(times) == SPEC.frames and times[0] == 0 and times[-1] == pytest.approx(5.0)
    assert len(freqs) == SPEC.n_mels and np.all(np.diff(freqs) > 0) and 0 < freqs[0] < freqs[-1] < SR / 2
    # each band's filter peaks at the frequency the axis gives it
    fb = frontend.mel.mel_scale.fb.numpy()  # (n_fft // 2 + 1, n_mels)
    bin_hz = SR / SPEC.n_fft
    assert np.all(np.abs(np.argmax(fb, axis=0) * bin_hz - freqs) <= bin_hz)
    # a 1 kHz tone is brightest in the band whose centre is nearest 1 kHz
    spec = frontend(torch.from_numpy(tone(5.0, SR, freq=1000.0))[None])[0, 0]
    assert abs(freqs[int(spec.mean(1).argmax())] - 1000) < 100


def _band_db(wave: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(wave)) ** 2
    f = np.fft.rfftfreq(len(wave), 1 / SR)
    return 10 * np.log10(spec[(f >= lo) & (f < hi)].sum())


def test_eq_augmentation_recolours_each_clip_and_keeps_its_peak():
    from training.augment import batch_augment
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    noise = torch.from_numpy(rng.standard_normal((8, SR)).astype(np.float32) * 0.1)
    out, *_ = batch_augment({"train": {"eq": 12}}, SR)(noise, torch.zeros(8))
    assert out.shape == noise.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out.abs().amax(1), noise.abs().amax(1))
    # the low/high balance moves, by a different amount in each clip, within the EQ's range
    tilt = [_band_db(o.numpy(), 100, 400) - _band_db(o.numpy(), 3000, 6000)
            - (_band_db(n.numpy(), 100, 400) - _band_db(n.numpy(), 3000, 6000)) for o, n in zip(out, noise)]
    assert np.std(tilt) > 2.0 and np.max(np.abs(tilt)) <= 2 * 12 + 1
    # no EQ asked for: the waveform is unchanged
    assert batch_augment({"train": {}}, SR) is None


# --- ESC-50


def test_esc50_meta_and_real_clips(needs_data):
    from training.esc50 import read_clip, read_esc50_meta
    esc50 = needs_data("esc50", "meta", "esc50.csv").parent.parent
    rows, labels = read_esc50_meta(esc50)
    assert len(rows) == 2000 and len(labels) == 50 and labels[0] == "dog" and len(set(labels)) == 50
    for row in rows[:: 1000][:3] + [rows[-1]]:
        y = read_clip(esc50 / "audio" / row["filename"], SR, 5)
        assert y.shape == (5 * SR,) and y.dtype == np.float32
        assert labels[int(row["target"])] == row["category"]


def test_esc50_loader_limited(needs_data):
    from training.datasets import load_task_data
    needs_data("esc50", "meta", "esc50.csv")
    cfg = {"task": "esc50", "data": {"dataset": "esc50", "sample_rate": SR, "clip_seconds": 5, "limit": 1},
           "audio": {"n_mels": 64, "n_fft": 400, "hop_length": 160}, "train": {"seed": 0}}
    data = load_task_data(cfg, data_root())
    x, y = data.train.tensors
    assert x.shape == (3, 5 * SR) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(data.val) == 1 and len(data.test) == 1 and len(data.labels) == 50
    assert AudioSpec.from_dict(data.preprocessing) == SPEC


FAKE_CLASSES = ["dog", "rooster"]


def make_fake_esc50_zip(folder: Path) -> Path:
    """The official archive's layout (ESC-50-master/meta/esc50.csv + audio/*.wav at 44.1 kHz),
    one clip per fold, one of them too long and one too short."""
    top = folder / "src" / "ESC-50-master"
    (top / "meta").mkdir(parents=True)
    (top / "audio").mkdir()
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        target = fold % 2
        name = f"{fold}-1000{fold}-A-{target}.wav"
        seconds = {1: 7.2, 2: 3.6}.get(fold, 5.0)
        sf.write(top / "audio" / name, tone(seconds, 44100, freq=300.0 + 200 * target), 44100)
        lines.append(f"{name},{fold},{target},{FAKE_CLASSES[target]},True,1000{fold},A")
    (top / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    (top / "LICENSE").write_text("fake\n")
    archive = folder / "serve" / "master.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(top.parent.rglob("*")):
            z.write(path, path.relative_to(top.parent).as_posix())
    return archive


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server(tmp_path):
    archive = make_fake_esc50_zip(tmp_path)
    handler = functools.partial(QuietHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_esc50_download_and_cache(fake_server, tmp_path, monkeypatch):
    from training import data_common, datasets, esc50
    monkeypatch.setenv(data_common.CACHE_ENV, str(tmp_path / "cache"))
    root = tmp_path / "data"
    cfg = {"task": "esc50", "data": {"dataset": "esc50", "sample_rate": SR, "clip_seconds": 5,
                                     "url": f"{fake_server}/master.zip"},
           "audio": {"n_mels": 64}, "train": {"seed": 0}}
    with pytest.raises(FileNotFoundError, match="--download"):
        datasets.load_task_data(cfg, root)
    data = datasets.load_task_data(cfg, root, download=True)
    assert (root / "esc50" / "meta" / "esc50.csv").is_file() and len(list((root / "esc50" / "audio").glob("*.wav"))) == 5
    assert not [p for p in (root / "esc50").iterdir() if p.name not in {"meta", "audio", "LICENSE"}]
    assert data.labels == FAKE_CLASSES
    x, y = data.train.tensors
    assert x.shape == (3, 5 * SR) and y.tolist() == [1, 0, 1]
    assert len(data.val) == 1 and len(data.test) == 1
    assert abs(peak_hz(x[0].numpy(), SR) - 500) <= 2
    assert not x[1, int(3.7 * SR):].any()  # the 3.6 s clip, padded at the end
    cached = list((tmp_path / "cache").glob("esc50-16000-*.npy"))
    assert len(cached) == 1

    def no_decoding(*args):
        raise AssertionError("decoded again instead of reading the cache")
    monkeypatch.setattr(esc50, "_decode_all", no_decoding)
    again = datasets.load_task_data(cfg, root)
    assert torch.equal(again.train.tensors[0], x) and torch.equal(again.test.tensors[0], data.test.tensors[0])


def test_download_refuses_an_archive_that_is_not_esc50(tmp_path):
    from training.esc50 import download_esc50
    (tmp_path / "serve").mkdir()
    with zipfile.ZipFile(tmp_path / "serve" / "other.zip", "w") as z:
        z.writestr("other/readme.txt", "hello")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path / "serve")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ValueError, match="not the ESC-50 archive"):
            download_esc50(tmp_path / "esc50", url=f"http://127.0.0.1:{server.server_address[1]}/other.zip")
    finally:
        server.shutdown()
        server.server_close()


MULTI = AudioSpec(sample_rate=SR, clip_seconds=2, n_mels=64, n_fft=512, hop_length=256, extra_n_ffts=(128, 2048))


def test_multi_resolution_channels_share_the_grid_and_differ_in_resolution():
    assert AudioSpec.from_dict(MULTI.to_dict()) == MULTI
    frontend = LogMel.from_spec(MULTI)
    assert frontend.channels == 3
    # clicks 0.25 s apart: sharp in time through the short window, smeared through the long one
    y = np.zeros(2 * SR, np.float32)
    y[SR // 8::SR // 4] = 1.0
    x = frontend.db(torch.from_numpy(y)[None])[0]
    assert x.shape == (3, MULTI.n_mels, MULTI.frames)
    envelope = x.mean(1)  # (channels, frames): mean dB over mel bands

    def width(e):  # frames within 6 dB of the peak around the first click
        around = e[: MULTI.frames // 8 + 8]
        return int((around > around.max() - 6).sum())
    short, main, long = (width(e) for e in envelope)
    assert short <= main < long
    # channel 0 is exactly the single-resolution front end's output
    single = LogMel.from_spec(AudioSpec(sample_rate=SR, clip_seconds=2, n_mels=64, n_fft=512, hop_length=256))
    torch.testing.assert_close(x[:1], single.db(torch.from_numpy(y)[None])[0])


def test_multi_resolution_statistics_are_per_channel_and_stored():
    frontend = LogMel.from_spec(MULTI)
    wave = torch.from_numpy(tone(2.0, SR))[None]
    raw = frontend(wave)
    frontend.set_stats([-30.0, -20.0, -10.0], [20.0, 10.0, 5.0])
    expect = (raw - torch.tensor([-30.0, -20.0, -10.0]).view(3, 1, 1)) / torch.tensor([20.0, 10.0, 5.0]).view(3, 1, 1)
    torch.testing.assert_close(frontend(wave), expect)
    copy = LogMel.from_spec(MULTI)
    copy.load_state_dict(frontend.state_dict())
    assert copy.mean.flatten().tolist() == [-30.0, -20.0, -10.0]
    frontend.set_stats(-5.0, 2.0)  # one number for all channels
    assert frontend.mean.flatten().tolist() == [-5.0] * 3 and frontend.std.flatten().tolist() == [2.0] * 3


def test_spec_augment_hides_the_same_bands_and_frames_in_every_channel():
    from models.augment import SpecAugment
    torch.manual_seed(0)
    augment = SpecAugment(freq_mask=8, time_mask=20, masks=2).train()
    x = torch.randn(4, 3, 64, 126)
    hidden = augment(x) == 0
    assert hidden.any() and torch.equal(hidden[:, 0], hidden[:, 1]) and torch.equal(hidden[:, 0], hidden[:, 2])
    assert not torch.equal(hidden[0], hidden[1])  # but each clip has its own masks
    assert torch.equal(augment.eval()(x), x)


def test_multi_resolution_needs_a_model_that_takes_three_channels():
    from models.architectures import build_model
    model = build_model("audio-effnet", spec=MULTI.to_dict(), num_classes=4, pretrained=False).eval()
    with torch.no_grad():
        assert model(torch.from_numpy(tone(2.0, SR))[None]).shape == (1, 4)
    with pytest.raises(ValueError, match="3 channels; this model takes 1"):
        build_model("audio-cnn", spec=MULTI.to_dict(), num_classes=4)
    two = AudioSpec(sample_rate=SR, clip_seconds=2, extra_n_ffts=(256,))
    with pytest.raises(ValueError, match="2 channels; this model takes 1 or 3"):
        build_model("audio-effnet", spec=two.to_dict(), num_classes=4, pretrained=False)
