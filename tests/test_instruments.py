"""Instruments: the phrase renderer (MIDI -> FluidSynth), the split by recording and by source,
the loader, the LSTM, and the shipped model on a held-out soundfont through a phone-like chain."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from training.instruments import cached_sets, checks, loader, midi, phrases, recording_chain, recordings, render, sample_leaks, soundfonts
from training.instruments.labels import LABELS

HAS_SYNTH = shutil.which("fluidsynth") is not None and any(
    (d / "TimGM6mb.sf2").is_file() for d in soundfonts.SOUNDFONT_DIRS)
needs_synth = pytest.mark.skipif(not HAS_SYNTH, reason="apt-get install fluidsynth timgm6mb-soundfont")
HAS_TIMIDITY = shutil.which("timidity") is not None and Path("/etc/timidity/freepats.cfg").is_file()
needs_timidity = pytest.mark.skipif(not HAS_TIMIDITY, reason="apt-get install timidity freepats")
MODEL = os.environ.get("INSTRUMENTS_MODEL") or __import__("models.registry").registry.TASKS["instruments"].default
CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "instruments" / "cnn.pt"


def test_midi_writer_orders_events_and_encodes_delta_times(tmp_path):
    path = tmp_path / "x.mid"
    events = midi._note(0.5, 1.0, 60, 100) + [(0.0, bytes([0xC0, 40]))]
    midi.write_midi(path, events)
    raw = path.read_bytes()
    assert raw[:4] == b"MThd" and raw[14:18] == b"MTrk"
    track = raw[22:]
    assert int.from_bytes(raw[18:22], "big") == len(track)
    # program change at 0, note on after 0.5 s = 480 ticks (VLQ 0x83 0x60), note off 480 ticks later
    assert track[:3] == b"\x00\xc0\x28"
    assert track[3:8] == b"\x83\x60\x90\x3c\x64" and track[8:13] == b"\x83\x60\x80\x3c\x00"
    assert track.endswith(b"\xff\x2f\x00")
    assert midi._vlq(0) == b"\x00" and midi._vlq(127) == b"\x7f" and midi._vlq(128) == b"\x81\x00"


def test_phrases_stay_in_each_instruments_range():
    rng = np.random.default_rng(0)
    for name, spec in phrases.INSTRUMENTS.items():
        for _ in range(30):
            events = phrases.phrase(name, rng, 4.0)
            pitches = [m[1] for _, m in events if m[0] & 0xF0 == 0x90]
            programs = [m[1] for _, m in events if m[0] & 0xF0 == 0xC0]
            assert pitches and min(pitches) >= spec["range"][0] and max(pitches) <= spec["range"][1] + 12
            assert programs and set(programs) <= set(spec["programs"])
            assert all(0 <= t <= 4.0 + 0.1 for t, _ in events)


def test_phrases_fold_into_the_register_two_instruments_share():
    """fold_into moves notes by octaves only: same pitch classes, same rhythm, every note-off
    matches its note-on, all inside the shared range; ranges under an octave are refused."""
    assert phrases.shared_register(["violin", "cello"]) == (55, 72)
    with pytest.raises(ValueError, match="less than an octave"):
        phrases.fold_into([], 60, 70)
    with pytest.raises(ValueError):
        phrases.shared_register(["cello"])
    from collections import Counter
    rng = np.random.default_rng(3)
    moved = Counter()
    for name in ("cello", "violin"):
        for _ in range(20):
            events = phrases.phrase(name, rng, 4.0)
            folded = phrases.fold_into(events, 55, 72)
            assert [t for t, _ in folded] == [t for t, _ in events]
            notes = [(a, b) for a, b in zip(events, folded) if a[1][0] & 0xF0 in (0x80, 0x90)]
            assert notes and all(55 <= b[1][1] <= 72 for _, b in notes)
            assert all((a[1][1] - b[1][1]) % 12 == 0 and a[1][2:] == b[1][2:] for a, b in notes)
            for (_, a), (_, b) in notes:  # no further than needed: into the nearest octave that fits
                if a[1] > 72:
                    assert 72 - 12 < b[1] <= 72
                elif a[1] < 55:
                    assert 55 <= b[1] < 55 + 12
                else:
                    assert b[1] == a[1]
                moved[name] += a[1] != b[1]
            ons = sorted(b[1][1] for _, b in notes if b[1][0] & 0xF0 == 0x90)
            offs = sorted(b[1][1] for _, b in notes if b[1][0] & 0xF0 == 0x80)
            assert ons == offs
            others = [a for a in events if a[1][0] & 0xF0 not in (0x80, 0x90)]
            assert others == [b for b in folded if b[1][0] & 0xF0 not in (0x80, 0x90)]
    assert moved["cello"] and moved["violin"]  # both instruments have notes outside the shared register


@needs_synth
def test_renderer_plays_each_instrument_and_keeps_phrases_apart():
    font = soundfonts.find_soundfont("TimGM6mb")
    clips = render.render_phrases(font, LABELS, 2.0, seed=1)
    assert clips.shape == (4, 2 * render.RENDER_RATE) and clips.dtype == np.float32
    rms = np.sqrt((clips ** 2).mean(1))
    assert (rms > 1e-3).all(), rms  # every phrase sounds
    # the chain keeps the length, scales to a peak below 1 and changes the signal
    rng = np.random.default_rng(0)
    out = recording_chain.room(clips[0], rng, render.RENDER_RATE)
    assert out.shape == clips[0].shape and 0.1 < np.abs(out).max() < 1.0


def _recordings(tmp_path) -> Path:
    """class/source/recording.wav: several sources for piano, one for the others; one long one."""
    rng = np.random.default_rng(0)
    layout = {"piano": {"a": 3, "b": 2}, "violin": {"a": 2, "long": 1}, "cello": {"only": 5}, "guitar": {"a": 2}}
    for label, sources in layout.items():
        for source, n in sources.items():
            for i in range(n):
                seconds = 9.0 if source == "long" else rng.uniform(1.0, 3.0)
                path = tmp_path / label / source / f"{i}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                t = np.arange(int(seconds * 8000)) / 8000
                sf.write(path, 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t), 8000)
    return tmp_path


def test_split_is_by_recording_and_source(tmp_path):
    from training.data_common import audio_spec
    cfg = {"data": {"sample_rate": 8000, "clip_seconds": 2.0}, "audio": {"n_mels": 16, "n_fft": 256, "hop_length": 128}}
    spec = audio_spec(cfg)
    found = recordings.find_recordings(_recordings(tmp_path))
    assert len(found) == 15 and {s for _, _, s in found} == {"a", "b", "long", "only"}
    parts = recordings.split_recordings(found, ["b", "long"], 0.2, seed=0)
    assert not set(parts["train"]) & set(parts["val"]) and len(parts["train"]) + len(parts["val"]) == 15
    val_sources = {(found[i][1], found[i][2]) for i in parts["val"]}
    assert ("piano", "b") in val_sources and ("violin", "long") in val_sources
    assert {found[i][2] for i in parts["train"]}.isdisjoint({"b", "long"})  # a held-out source never trains
    assert sum(found[i][1] == "cello" for i in parts["val"]) == 1  # one source: 20% of its recordings
    # windows: every window of a recording goes where its recording goes
    x, y, groups = recordings.windows_of(found, parts["val"], spec, hop_seconds=1.0)
    assert len(x) == len(y) == len(groups) and x.shape[1] == spec.clip_samples
    long_idx = [i for i in parts["val"] if found[i][2] == "long"][0]
    assert (groups == long_idx).sum() == 8  # 9 s in 2 s windows, 1 s apart
    _, _, train_groups = recordings.windows_of(found, parts["train"], spec, hop_seconds=1.0)
    assert set(groups).isdisjoint(set(train_groups))


@needs_synth
def test_loader_builds_the_three_splits(tmp_path, monkeypatch):
    from training.datasets import load_task_data
    monkeypatch.setenv("XAI_LAB_CACHE", str(tmp_path / "cache"))
    _recordings(tmp_path / "data" / "instruments")
    cfg = {"task": "instruments", "train": {"seed": 0},
           "data": {"dataset": "instruments", "sample_rate": 8000, "clip_seconds": 2.0, "hop_seconds": 1.0,
                    "phrases": 2, "soundfonts": {"train": ["TimGM6mb"], "test": ["TimGM6mb"]}}}
    with pytest.raises(ValueError, match="both train and test"):
        load_task_data(cfg, tmp_path / "data")
    monkeypatch.setattr(soundfonts, "SOUNDFONT_DIRS", [tmp_path / "fonts", *soundfonts.SOUNDFONT_DIRS])
    (tmp_path / "fonts").mkdir()
    shutil.copy(soundfonts.find_soundfont("TimGM6mb"), tmp_path / "fonts" / "Other.sf2")  # another file (a link is the same font)
    with pytest.raises(ValueError, match="shares 310 recorded samples with held-out Other"):
        load_task_data(dict(cfg, data=dict(cfg["data"], soundfonts={"train": ["TimGM6mb"], "test": ["Other"]})),
                       tmp_path / "data")
    monkeypatch.setattr(checks, "shared_samples", lambda train, test: [])  # the copy stands in for another font
    cfg["data"]["soundfonts"] = {"train": ["TimGM6mb"], "test": ["Other"]}
    cfg["data"]["real"] = {"folder": "instruments", "val_sources": ["b"], "cap_per_class": 100}
    cfg["data"]["train_programs"] = {"guitar": [26, 27]}
    cfg["data"]["plucked_phrases"] = 2
    cfg["data"]["bowed_phrases"] = 1
    cfg["data"]["phone_share"] = 0.5
    cfg["data"]["shared_register"] = {"instruments": ["violin", "cello"], "phrases": 1}
    cfg["data"]["stretched"] = {"instruments": ["cello", "violin"], "phrases": 1, "semitones": [5, 12]}
    calls, render = [], cached_sets.rendered_set
    monkeypatch.setattr(loader, "rendered_set", lambda name, *a: calls.append((name, a[-1])) or render(name, *a))
    data = load_task_data(cfg, tmp_path / "data")
    # more programs for the training font only; the held-out font plays the instruments' own
    assert calls == [("TimGM6mb", {"guitar": [26, 27]}), ("Other", None)]
    assert "2 guitar phrases on modelled guitars + 1 cello and 1 violin phrases on modelled bowed" in data.description
    n_train = len(data.train)
    assert f"({round(n_train / 2)} of all of them through a random phone-like chain); val: " in data.description
    assert "{" not in data.description
    assert ("train: 8 phrases rendered with TimGM6mb + 2 cello and violin phrases in their shared register (MIDI 55-72) + "
            "2 phrases stretched by 5-12 semitones + ") in data.description
    x_te, y_te = data.test.tensors
    assert data.labels == LABELS and x_te.shape == (8, 16000) and sorted(y_te.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    x_tr, y_tr = data.train.tensors
    assert len(y_tr) > 8 + 2 and set(y_tr.tolist()) == {0, 1, 2, 3}
    cfg["data"]["train_programs"] = {"guitar": [24, 300]}
    with pytest.raises(ValueError, match="train_programs"):
        load_task_data(cfg, tmp_path / "data")
    cfg["data"]["train_programs"], cfg["data"]["phone_share"] = {}, 1.5
    with pytest.raises(ValueError, match="phone_share"):
        load_task_data(cfg, tmp_path / "data")
    cfg["data"]["phone_share"], cfg["data"]["shared_register"] = 0.0, {"instruments": ["cello", "piano"], "phrases": 0}
    with pytest.raises(ValueError, match="shared_register"):
        load_task_data(cfg, tmp_path / "data")
    cfg["data"]["shared_register"] = {}
    for bad in ({"phrases": 1, "semitones": [12, 5]}, {"phrases": 1, "semitones": [0, 23]},
                {"phrases": 0, "semitones": [1, 2]}, {"phrases": 1, "semitones": [1, 2], "instruments": ["flute"]}):
        cfg["data"]["stretched"] = bad
        with pytest.raises(ValueError, match=r"data\.stretched needs"):
            load_task_data(cfg, tmp_path / "data")
    cfg["data"]["stretched"] = 7  # not a mapping: the schema says so, before the loader's own check
    with pytest.raises(ValueError, match=r"data\.stretched must be dict or null, not 7"):
        load_task_data(cfg, tmp_path / "data")
    cfg["data"]["stretched"] = {}
    # a TiMidity++ config that plays the held-out soundfont is the held-out font
    (tmp_path / "timidity").mkdir()
    (tmp_path / "timidity" / "tim.cfg").write_text(
        f"dir {soundfonts.find_soundfont('TimGM6mb').parent}\nbank 0\n0 %font \"TimGM6mb.sf2\" 0 0 amp=29\n")
    monkeypatch.setattr(soundfonts, "TIMIDITY_DIRS", [tmp_path / "timidity"])
    cfg["data"]["phone_share"], cfg["data"]["soundfonts"] = 0.0, {"train": ["tim"], "test": ["TimGM6mb"]}
    with pytest.raises(ValueError, match="both train and test"):
        load_task_data(cfg, tmp_path / "data")
    assert len(data.val) > 0 and "held-out" in data.description
    assert float(x_tr.abs().amax(1).min()) > 0.01  # every window sounds
    assert (tmp_path / "cache").is_dir()


def test_lstm_classifies_spectrogram_frames_and_is_trainable():
    from models.architectures import build_model
    spec = {"kind": "audio", "sample_rate": 8000, "clip_seconds": 1.0, "n_mels": 16, "n_fft": 256,
            "hop_length": 128, "f_min": 0.0, "f_max": None, "top_db": 80.0}
    model = build_model("audio-lstm", spec=spec, num_classes=4, hidden=16, layers=2)
    x = torch.randn(3, 8000)
    out = model(x)
    assert out.shape == (3, 4)
    out.sum().backward()
    assert model.body.lstm.weight_ih_l0.grad.abs().sum() > 0


def phone_chain(y: np.ndarray, rate: int, tmp_path: Path, rng) -> np.ndarray:
    """Resampled to 16 kHz, MP3-compressed at a low bit rate, light noise (30 dB SNR)."""
    from models.audio_loading import load_audio, resample
    y16 = resample(y, rate, 16000)
    path = tmp_path / "phone.mp3"
    sf.write(path, y16, 16000, format="MP3", bitrate_mode="CONSTANT", compression_level=0.8)  # about 40 kbit/s
    back = load_audio(path, 16000)
    noise = rng.standard_normal(len(back)).astype(np.float32)
    return back + noise * np.sqrt(np.mean(back ** 2) / 10 ** 3 / np.mean(noise ** 2))


@needs_synth
@pytest.mark.skipif(not CHECKPOINT.with_name(f"{MODEL}.pt").is_file(), reason="instruments checkpoint not trained")
def test_held_out_soundfont_phrases_keep_their_label_through_a_phone_chain(tmp_path):
    """40 dry phrases (10 per instrument) of the held-out soundfont, as a 22.05 kHz recording and
    through a phone-like chain (16 kHz, MP3, noise). The default model gets most of them right and
    keeps at least 90% of those through the phone (a 12-phrase all-or-nothing version of this test
    measured luck: one flip in 7)."""
    from models import load_predictor
    from models.audio_loading import resample
    predictor = load_predictor(f"instruments:{MODEL}", device="cpu")
    font = soundfonts.find_soundfont("TimGM6mb")  # the soundfont held out from training
    labels = [label for label in LABELS for _ in range(10)]
    clips = render.render_phrases(font, labels, 4.0, seed=777)
    rng = np.random.default_rng(0)
    right = kept = 0
    for clip, label in zip(clips, labels):
        y = resample(clip / np.abs(clip).max() * 0.5, render.RENDER_RATE, 22050)  # a 22.05 kHz "recording"
        top = max(predictor.predict((22050, y)).items(), key=lambda kv: kv[1])[0]
        phone = phone_chain(y, 22050, tmp_path, rng)
        top_phone = max(predictor.predict((16000, phone)).items(), key=lambda kv: kv[1])[0]
        right += top == label
        kept += top == label and top_phone == label
    print(f"\nheld-out soundfont: {right}/{len(labels)} right; through the phone chain {kept}/{right} kept")
    assert right >= 28  # of 40 (chance: 10): the model works on a soundfont it never heard
    assert kept >= 0.9 * right  # and what it gets right survives the phone


@needs_synth
@pytest.mark.parametrize("name", ["cnn", "lstm", "effnet-lite0", "effnet-lite0-plucked", "mn04"])
def test_each_model_explains_a_long_recording_in_the_sound_tab_format(name):
    """A 12 s recording (violin, then piano, then guitar): a timeline of 4 s windows, a CAM on
    the spectrogram's grid (the LSTM's at its log-mel input), a re-synthesis of the same length."""
    from models import load_predictor
    path = CHECKPOINT.with_name(f"{name}.pt")
    if not path.is_file():
        pytest.skip(f"{path} not trained")
    predictor = load_predictor(f"instruments:{name}", device="cpu")
    clips = render.render_phrases(soundfonts.find_soundfont("TimGM6mb"), ["violin", "piano", "guitar"], 4.0, seed=7, gap=0.2)
    y = np.concatenate(list(clips))
    a = predictor.analyze((render.RENDER_RATE, y), hop_seconds=4.0)
    assert a.heatmap.shape == a.logmel.shape and 0 <= a.heatmap.min() and a.heatmap.max() <= 1
    assert len(a.heard) == len(a.waveform) == len(y) * predictor.spec.sample_rate // render.RENDER_RATE  # at its rate
    assert [w["start"] for w in a.timeline] == [0.0, 4.0, 8.0]
    assert set(a.probs) <= set(LABELS) and abs(sum(predictor.predict((render.RENDER_RATE, y)).values()) - 1) < 1e-4


# --- the sampler of recorded notes (training/sampler.py)

def peak_hz(y: np.ndarray, sr: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(y * np.hanning(len(y))))) * sr / len(y))


def test_note_names_give_midi_pitches():
    from training.sampler import pitch_of
    assert pitch_of(Path("guitar_Cs4_very-long_forte_normal.ogg")) == 61
    assert pitch_of(Path("Violin.arco.ff.sulA.Ab5.ogg")) == 80
    assert pitch_of(Path("A4.ogg")) == 69 and pitch_of(Path("As1.ogg")) == 34 and pitch_of(Path("C8.ogg")) == 108
    assert pitch_of(Path("HEADROOM_PIANO_LEVEL1_CLOSE_60.ogg")) == 60
    assert pitch_of(Path("cello_A2_025_forte_arco-normal.ogg")) == 45  # "025" is a duration, not a pitch
    assert pitch_of(Path("john-garner_bwv1002_mov6.ogg")) is None       # a whole performance
    assert pitch_of(Path("guitar_G5_very-long_forte_harmonics.ogg")) is None
    assert pitch_of(Path("cello_A2_phrase_forte_arco-legato.ogg")) is None      # several notes
    assert pitch_of(Path("cello_C3_1_forte_arco-trill.ogg")) is None


def test_note_bank_corrects_a_source_whose_octaves_are_named_one_off(tmp_path):
    """tonejs-instruments' "A3" sounds at 440 Hz: each source folder's octave is checked
    against the notes' estimated pitch."""
    from training.sampler import note_bank
    sr = 8000
    t = np.arange(sr) / sr
    files = []
    for source, names in {"right": {"A4": 440.0, "C5": 523.25, "E4": 329.63}, "off": {"A3": 440.0, "G3": 392.0}}.items():
        for name, hz in names.items():
            path = tmp_path / source / f"{name}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, np.concatenate([np.zeros(800), 0.5 * np.sin(2 * np.pi * hz * t)]), sr)
            files.append((path, "piano"))
    bank = note_bank(files, sr)
    assert sorted(p for p, _ in bank["piano"]) == [64, 67, 69, 69, 72]
    assert all(np.abs(w[:5]).max() > 0 for _, w in bank["piano"])  # each note starts at its onset


def test_sampler_moves_a_recorded_note_to_the_phrase_pitch():
    from training.sampler import note_events, play
    sr = 8000
    t = np.arange(2 * sr) / sr
    g4 = (np.sin(2 * np.pi * 392.0 * t) * np.exp(-t)).astype(np.float32)       # a recorded G4 (MIDI 67)
    events = midi._note(0.5, 1.2, 69, 127) + midi._note(0.1, 0.3, 67, 64)       # an A4, and a quieter G4 before it
    notes = note_events(events)
    assert notes == [(0.1, 0.3, 67, 64), (0.5, 1.2, 69, 127)]
    y = play(notes, [(67, g4)], 2.0, sr, np.random.default_rng(0))
    assert y.shape == (2 * sr,) and np.abs(y[: int(0.1 * sr)]).max() == 0        # silence before the first note
    a4 = y[int(0.55 * sr): int(1.15 * sr)]
    assert peak_hz(a4, sr) == pytest.approx(440.0, abs=4)                         # two semitones up
    assert np.abs(y[int(1.6 * sr):]).max() == 0                                   # released after 1.2 s + <= 0.3 s
    assert np.abs(y[int(0.15 * sr): int(0.25 * sr)]).max() < np.abs(a4).max()     # velocity 64 < 127


def test_sampled_phrases_use_only_training_recordings(tmp_path, monkeypatch):
    """The sampler's notes come from the training split: no file of a held-out source, and none
    of the recordings a single-source class gives to validation."""
    from training import sampler
    monkeypatch.setenv("XAI_LAB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "instruments"
    for label, source, names in [("piano", "a", ["C4", "E4", "G4"]), ("piano", "b", ["C5", "D5"]),
                                 ("cello", "only", ["C3", "D3", "E3", "F3", "G3"]), ("guitar", "a", ["E3", "mov6"])]:
        for name in names:
            path = folder / label / source / f"{name}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000), 8000)
    used = []
    real_bank = sampler.note_bank
    monkeypatch.setattr(sampler, "note_bank", lambda files, sr: used.extend(files) or real_bank(files, sr))
    real = {"val_sources": ["b"], "val_share": 0.2}
    waves, labels = cached_sets.sampled_set(folder, real, phrases=3, seconds=2.0, seed=0)
    found = recordings.find_recordings(folder)
    val = {found[i][0] for i in recordings.split_recordings(found, ["b"], 0.2, seed=0)["val"]}
    assert used and not {p for p, _ in used} & val and len(val) == 3   # piano/b (2) + one of cello's 5
    assert sorted(set(labels.tolist())) == [0, 1, 2]                     # violin has no notes: no phrases
    assert waves.shape == (9, 2 * render.RENDER_RATE) and np.abs(waves).max(1).min() > 0.1


def test_training_only_programs_change_the_training_phrases_not_the_instruments():
    """data.train_programs: more General MIDI programs for the training soundfonts; phrase()
    draws from them when asked and from the instrument's own otherwise."""
    rng = np.random.default_rng(3)
    drawn = {phrases.phrase("guitar", rng, 2.0, programs=[24, 25, 26, 27])[0][1][1] for _ in range(60)}
    assert drawn == {24, 25, 26, 27}
    assert {phrases.phrase("guitar", rng, 2.0)[0][1][1] for _ in range(60)} == set(phrases.INSTRUMENTS["guitar"]["programs"])


# --- modelled guitars (training/pluck.py) and the modelled sets

@pytest.mark.parametrize("pitch", [40, 57, 69, 81])
def test_modelled_string_sounds_at_its_pitch_and_decays(pitch):
    from training import pluck
    from training.sampler import estimated_pitch
    rng = np.random.default_rng(pitch)
    params = pluck.guitar(rng)
    y = pluck.string(pitch, 2.0, 16000, params, rng)
    assert y.shape == (32000,) and y.dtype == np.float32 and np.abs(y).max() == pytest.approx(1.0)
    assert abs(estimated_pitch(y, 16000) - pitch) < 0.05  # in tune to 5 cents
    rms = lambda part: float(np.sqrt(np.mean(part ** 2)))  # noqa: E731
    assert rms(y[-4000:]) < 0.3 * rms(y[:4000])  # a pluck dies away
    z = pluck.body(y, 16000, params)
    assert z.shape == y.shape and np.isfinite(z).all() and not np.allclose(z, y)


def test_a_brighter_string_has_more_high_harmonics():
    from training import pluck
    params = pluck.guitar(np.random.default_rng(0))

    def centroid(brightness):
        y = pluck.string(52, 1.0, 16000, {**params, "brightness": brightness, "cutoff": 8000.0},
                         np.random.default_rng(1))[4000:]  # after the attack: what the string keeps
        mag = np.abs(np.fft.rfft(y))
        return float((mag * np.fft.rfftfreq(len(y), 1 / 16000)).sum() / mag.sum())

    assert centroid(0.05) > 1.3 * centroid(0.45)


@pytest.mark.parametrize("instrument", ["guitar", "cello", "violin"])
def test_modelled_set_plays_phrases_on_different_instruments(tmp_path, monkeypatch, instrument):
    monkeypatch.setenv("XAI_LAB_CACHE", str(tmp_path / "cache"))
    waves, labels = cached_sets.modelled_set(instrument, 3, 2.0, seed=5)
    assert waves.shape == (3, 2 * render.RENDER_RATE) and np.isfinite(waves).all()
    assert (labels == LABELS.index(instrument)).all()
    assert (np.sqrt((waves ** 2).mean(1)) > 1e-3).all()  # every phrase sounds
    assert not np.allclose(waves[0], waves[1])
    again, _ = cached_sets.modelled_set(instrument, 3, 2.0, seed=5)  # from the cache: the same clips
    assert np.array_equal(again, waves)
    assert len(list((tmp_path / "cache").glob(f"instruments-modelled-{instrument}-*.npy"))) == 1
    with pytest.raises(ValueError, match="no physical model for 'piano'"):
        cached_sets.modelled_set("piano", 3, 2.0, seed=5)


# --- modelled violins and cellos (training/bow.py)

@pytest.mark.parametrize("kind,pitch", [("cello", 36), ("cello", 57), ("violin", 67), ("violin", 81)])
def test_bowed_string_sounds_at_its_pitch_and_sustains(kind, pitch):
    from training import bow
    rng = np.random.default_rng(pitch)
    params = {**bow.instrument(kind, rng), "vibrato": (5.0, 0.0, 0.2), "jitter": 0.0}  # a steady pitch
    y = bow.string(pitch, 2.0, 16000, params, rng)
    assert y.shape == (32000,) and y.dtype == np.float32 and np.abs(y).max() == pytest.approx(1.0)
    # in tune to 2 cents: the strongest frequency near the fundamental, on a finely padded spectrum
    mag = np.abs(np.fft.rfft(y[8000:] * np.hanning(24000), 8 * 24000))
    f = np.fft.rfftfreq(8 * 24000, 1 / 16000)
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    near = (f > 0.9 * f0) & (f < 1.1 * f0)
    assert abs(12 * np.log2(f[near][mag[near].argmax()] / f0)) < 0.02
    rms = lambda part: float(np.sqrt(np.mean(part ** 2)))  # noqa: E731
    assert rms(y[-4000:]) > 0.6 * rms(y[8000:12000])  # the bow keeps the string sounding
    assert rms(y[:160]) < 0.5 * rms(y[8000:12000])  # and the tone builds up at the start
    z = bow.body(y, 16000, params)
    assert z.shape == y.shape and np.isfinite(z).all() and not np.allclose(z, y)


def test_bowed_string_has_a_sawtooth_like_spectrum_with_a_notch_from_the_bow_position():
    """Helmholtz motion: harmonics falling as 1/n, the ones near multiples of 1/beta quieter."""
    from training import bow
    rng = np.random.default_rng(0)
    params = {**bow.instrument("cello", rng), "vibrato": (5.0, 0.0, 0.2), "rolloff": 1.0, "beta": 0.125,
              "jitter": 0.0, "noise": 0.0}
    y = bow.string(45, 2.0, 16000, params, rng)[8000:]  # A2, 110 Hz, after the attack
    mag = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    f = np.fft.rfftfreq(len(y), 1 / 16000)
    harmonic = [mag[np.abs(f - 110 * k) < 20].max() for k in range(1, 17)]
    assert 0.3 < harmonic[1] / harmonic[0] < 0.9 and harmonic[3] < harmonic[1] and harmonic[11] < harmonic[3]
    assert harmonic[7] < 0.5 * min(harmonic[6], harmonic[8])  # 8 = 1/beta: the notch
    # with vibrato the pitch moves by the depth asked for
    wide = bow.string(69, 2.0, 16000, {**params, "vibrato": (5.0, 30.0, 0.0)}, rng)

    def pitch(part):  # the strongest frequency near A4 on a padded spectrum of 50 ms, in semitones
        mag = np.abs(np.fft.rfft(part * np.hanning(len(part)), 32768))
        f = np.fft.rfftfreq(32768, 1 / 16000)
        near = (f > 400) & (f < 480)
        return 69 + 12 * np.log2(f[near][mag[near].argmax()] / 440)

    track = [pitch(wide[i: i + 800]) for i in range(8000, 30000, 200)]
    assert 0.1 < np.std(track) < 0.35  # 30 cents peak: about 21 cents standard deviation
    steady = bow.string(69, 2.0, 16000, params, rng)
    assert np.std([pitch(steady[i: i + 800]) for i in range(8000, 30000, 200)]) < 0.05  # none without


# --- a TiMidity++ patch set as a training font, and the phone-like chain for training

def test_a_timidity_config_names_its_samples_and_melodic_programs(tmp_path):
    (tmp_path / "patches").mkdir()
    for name in ("piano.pat", "snare.pat"):
        (tmp_path / "patches" / name).write_bytes(b"GF1PATCH")
    (tmp_path / "Some.sf2").write_bytes(b"RIFF")
    (tmp_path / "more.cfg").write_text("bank 0\n42 %font Some.sf2 0 42\n")
    cfg = tmp_path / "set.cfg"
    cfg.write_text(f"# a comment\ndir {tmp_path}/patches\ndir {tmp_path}\nbank 0\n 0\tpiano.pat amp=120\n"
                   "drumset 0\n 38 snare.pat\nsource more.cfg\n")
    files, programs = soundfonts._timidity_config(cfg)
    assert programs == {0, 42}  # the drum kit's notes are not programs
    assert {tmp_path / "patches", (tmp_path / "Some.sf2").resolve()} <= files == soundfonts.font_files(cfg)
    assert soundfonts.font_files(tmp_path / "Some.sf2") == {(tmp_path / "Some.sf2").resolve()}
    assert render.playable_programs(cfg, "cello", None) == [42]
    assert render.playable_programs(cfg, "piano", [0, 1, 5]) == [0]  # what the set has
    with pytest.raises(ValueError, match="no program for violin"):
        render.playable_programs(cfg, "violin", [40, 110])


@needs_timidity
def test_freepats_plays_each_instrument_through_timidity():
    font = soundfonts.find_soundfont("freepats")
    assert font.suffix == ".cfg"
    assert render.playable_programs(font, "violin", [40, 110]) == [40]  # no fiddle in FreePats
    clips = render.render_phrases(font, list(LABELS), 2.0, seed=4, programs={"violin": [40, 110]})
    assert clips.shape == (4, 2 * render.RENDER_RATE) and np.isfinite(clips).all()
    assert (np.sqrt((clips ** 2).mean(1)) > 1e-3).all()  # every instrument sounds (no missing patch)


def test_phone_chain_for_training_band_limits_compresses_and_keeps_the_length():
    t = np.arange(32000) / 16000
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    outs = [recording_chain.phone(y, np.random.default_rng(s), 16000) for s in range(12)]
    assert all(o.shape == y.shape and o.dtype == np.float32 and np.isfinite(o).all() for o in outs)
    assert not any(np.allclose(o, y, atol=1e-3) for o in outs)
    spectra = [np.abs(np.fft.rfft(o)) for o in outs]
    f = np.fft.rfftfreq(len(y), 1 / 16000)
    high = [s[(f > 5900) & (f < 6100)].sum() / s[(f > 430) & (f < 450)].sum() for s in spectra]
    assert min(high) < 0.02 < 0.2 < max(high)  # some chains cut 6 kHz (8-12 kHz rates), others keep it
    assert all(s[(f > 430) & (f < 450)].sum() > 0.5 * np.abs(np.fft.rfft(y))[(f > 430) & (f < 450)].sum()
               for s in spectra)  # the tone itself survives
    assert np.array_equal(recording_chain.phone(y, np.random.default_rng(3), 16000), outs[3])


def test_phone_chain_survives_the_top_of_its_random_ranges():
    """A draw at the top of the bit-rate range (level 1.0, which libsndfile refuses) ended a training run
    once its data had rendered; the chain clips it."""
    class Top:  # every uniform draw at its upper end
        def __init__(self):
            self.rng = np.random.default_rng(0)

        def uniform(self, lo, hi):
            return hi

        def __getattr__(self, name):
            return getattr(self.rng, name)

    y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    out = recording_chain.phone(y, Top(), 16000)
    assert out.shape == y.shape and np.isfinite(out).all() and np.abs(out).max() > 0.1


def test_stretch_writes_lower_keys_and_bends_them_back_up():
    rng = np.random.default_rng(3)
    events = phrases.phrase("violin", rng, 3.0)  # vibrato: pitch bends all along
    out = phrases.stretch(events, 14)
    rpn = [m for _, m in out[:6]]
    assert rpn[:4] == [bytes([0xB0, 101, 0]), bytes([0xB0, 100, 0]), bytes([0xB0, 6, 24]), bytes([0xB0, 38, 0])]
    body = out[6:]
    assert [t for t, _ in body] == [t for t, _ in events]
    for (_, a), (_, b) in zip(events, body):
        if a[0] & 0xF0 in (0x80, 0x90):
            assert b[1] == a[1] - 14 and b[2:] == a[2:]
        elif a[0] & 0xF0 == 0xE0:  # the same bend in semitones, + 14, on a 24-semitone range
            before = ((a[1] | a[2] << 7) - 8192) / 8192 * 2
            after = ((b[1] | b[2] << 7) - 8192) / 8192 * 24
            assert after == pytest.approx(before + 14, abs=0.01)
        else:
            assert a == b
    with pytest.raises(ValueError, match="semitones"):
        phrases.stretch(events, 23)


@needs_synth
def test_a_stretched_note_keeps_its_pitch_but_not_its_sound(tmp_path):
    import librosa
    font = soundfonts.find_soundfont("TimGM6mb")

    def play(semitones):
        events = [(0.0, bytes([0xC0, 40])), midi._bend(0.0, 0.0)] + midi._note(0.05, 1.5, 72, 100)
        if semitones is not None:
            events = phrases.stretch(events, semitones)
        mid, wav = tmp_path / f"{semitones}.mid", tmp_path / f"{semitones}.wav"
        midi.write_midi(mid, events)
        render._synthesize(font, mid, wav, 60)
        y, rate = sf.read(str(wav), always_2d=True)
        return y.mean(1)[int(0.3 * rate):int(1.2 * rate)], rate

    (plain, rate), (same, _), (stretched, _) = play(None), play(0), play(16)
    f0 = {k: np.nanmedian(librosa.pyin(y, fmin=200, fmax=1500, sr=rate)[0]) for k, y in
          (("plain", plain), ("same", same), ("stretched", stretched))}
    target = librosa.midi_to_hz(72)
    assert all(abs(12 * np.log2(v / target)) < 0.3 for v in f0.values()), f0  # within 30 cents of C5
    assert np.allclose(plain, same, atol=1e-4)  # stretch by 0 is the phrase itself
    spectrum = lambda y: np.abs(np.fft.rfft(y[:8192]))  # noqa: E731
    assert np.corrcoef(spectrum(plain), spectrum(stretched))[0, 1] < 0.95  # another sample, resampled


def _soundfont(path: Path, samples: list[np.ndarray]) -> Path:
    """A minimal .sf2: the given 16-bit samples in sdta/smpl, their headers in pdta/shdr."""
    def chunk(cid, body):
        return cid + len(body).to_bytes(4, "little") + body + b"\0" * (len(body) & 1)
    smpl, headers, at = b"", b"", 0
    for k, s in enumerate(samples):
        raw = np.asarray(s, "<i2").tobytes()
        headers += f"s{k}".encode().ljust(20, b"\0") + b"".join(
            v.to_bytes(4, "little") for v in (at, at + len(s), at, at + len(s), 16000)) + bytes([60, 0, 0, 0, 1, 0])
        smpl, at = smpl + raw + b"\0" * 92, at + len(s) + 46
    headers += b"EOS".ljust(46, b"\0")
    sdta = chunk(b"LIST", b"sdta" + chunk(b"smpl", smpl))
    pdta = chunk(b"LIST", b"pdta" + chunk(b"shdr", headers))
    path.write_bytes(chunk(b"RIFF", b"sfbk" + sdta + pdta))
    return path


@needs_synth
def test_a_training_font_made_of_the_held_out_fonts_samples_is_refused(tmp_path, monkeypatch):
    tim = soundfonts.find_soundfont("TimGM6mb")
    data = tim.read_bytes()
    taken = [np.frombuffer(data[lo:hi], "<i2") for lo, hi in sample_leaks.sample_ranges(data) if hi - lo >= 8192]
    assert len(taken) > 20 and len(sample_leaks.sample_hashes(tim)) == 310
    rng = np.random.default_rng(0)
    own = [rng.integers(-3000, 3000, 5000).astype(np.int16) for _ in range(5)]
    monkeypatch.setattr(soundfonts, "SOUNDFONT_DIRS", [tmp_path, *soundfonts.SOUNDFONT_DIRS])
    _soundfont(tmp_path / "Borrowed.sf2", own + taken[:12])
    _soundfont(tmp_path / "Own.sf2", own + taken[:3])  # a few shared samples are tolerated
    assert len(sample_leaks.sample_hashes(tmp_path / "Borrowed.sf2")) == 17
    assert sample_leaks.shared_samples(["Borrowed", "Own"], ["TimGM6mb"]) == [("Borrowed", "TimGM6mb", 12)]
    assert sample_leaks.sample_hashes(soundfonts.find_soundfont("freepats") if HAS_TIMIDITY else tmp_path / "x.cfg") == set()
