"""The loader, instruments(root, cfg): train = phrases rendered with data.soundfonts.train (and
their variants, phrases played with the training recordings' notes and on modelled instruments)
+ the training recordings, some of it through a phone-like chain; val = the held-out recordings;
test = phrases rendered with the held-out data.soundfonts.test."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..data_common import TaskData, audio_spec
from ..schema import AudioData
from .cached_sets import modelled_set, rendered_set, sampled_set, variant_set
from .checks import (checked_phone_share, checked_shared_register, checked_soundfonts, checked_stretched,
                     checked_train_programs)
from .labels import LABELS
from .recording_chain import phone
from .recordings import cap_per_class, recording_windows
from .render import RENDER_RATE


@dataclass
class InstrumentsData(AudioData):
    """The instruments task's data section (the checks in checks.py validate the nested ones)."""
    soundfonts: dict | None = None        # {train: [...], test: [...]}; default: checks.DEFAULT_SOUNDFONTS
    train_programs: dict | None = None    # GM programs the training fonts play instead (e.g. guitar: [24, 25])
    phrases: int = 200                    # per instrument and training soundfont
    phrase_seconds: float | None = None   # default: the clip length
    test_only: bool = False               # render the held-out soundfont's test phrases only
    real: dict | None = None              # the recordings: folder, val_sources, val_share, cap_per_class
    hop_seconds: float = 1.0              # between the windows cut from a recording
    sampled_phrases: int | None = None    # phrases played with the training recordings' single notes
    plucked_phrases: int | None = None    # guitar phrases on modelled guitars (training/pluck.py)
    bowed_phrases: int | None = None      # cello and violin phrases on modelled bowed strings (training/bow.py)
    shared_register: dict | None = None   # {instruments, phrases}: phrases in the register they share
    stretched: dict | None = None         # {instruments, semitones, phrases}: phrases stretched out of range
    phone_share: float = 0.0              # share of training clips through a random phone-like chain


class _Clips:
    """The played sets as clips of the model's format, with what every set shares: the audio
    spec, phrases per instrument, phrase length and seed."""

    def __init__(self, spec, phrases: int, seconds: float, seed: int):
        self.spec, self.phrases, self.seconds, self.seed = spec, phrases, seconds, seed

    def of(self, w) -> np.ndarray:
        """Played waves (at RENDER_RATE) resampled, prepared and cut to the clip length."""
        from models.audio_loading import resample
        from models.audio_windows import fix_length, prepare
        spec = self.spec
        return np.stack([fix_length(prepare(resample(c, RENDER_RATE, spec.sample_rate), spec), spec.clip_samples)
                         for c in np.asarray(w)])

    def rendered(self, names, offset, programs=None, recordings=None) -> tuple[np.ndarray, np.ndarray]:
        sets = [rendered_set(name, self.phrases, self.seconds, self.seed + offset + j, programs)
                for j, name in enumerate(names)]
        if recordings is not None:  # the phrases as rendered, before of(): what a user would hand the app
            recordings += [(RENDER_RATE, c) for w, _ in sets for c in w]
        return np.concatenate([self.of(w) for w, _ in sets]), np.concatenate([y for _, y in sets])

    def variants(self, fonts, names, phrases, programs, **how) -> list[tuple[np.ndarray, np.ndarray]]:
        """variant_set of each training font (`how`: register=True or stretch_range=(lo, hi))."""
        return [(self.of(w), y) for w, y in (variant_set(name, names, phrases, self.seconds, self.seed + j,
                                                         programs or None, **how) for j, name in enumerate(fonts))]


def _as_set(x, y) -> TensorDataset:
    return TensorDataset(torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                         torch.from_numpy(np.asarray(y, np.int64)))


def _test_only(clips: _Clips, fonts: dict) -> TaskData:
    """data.test_only: the test split alone, built as always, and no training sets (a quick check
    of what the app serves on the test split: tests/test_agreement.py)."""
    spec, test_recordings = clips.spec, []
    x_te, y_te = clips.rendered(fonts["test"], 1000, recordings=test_recordings)
    empty = TensorDataset(torch.zeros(0, spec.clip_samples), torch.zeros(0, dtype=torch.int64))
    return TaskData(empty, empty, _as_set(x_te, y_te), labels=list(LABELS), preprocessing=spec.to_dict(),
                    description=f"test: {len(y_te)} phrases rendered with held-out {', '.join(fonts['test'])}; "
                                f"{spec.clip_seconds:g} s at {spec.sample_rate} Hz (test split only)",
                    test_inputs=test_recordings)


def _variants(d: dict, clips: _Clips, fonts: list[str], programs: dict) -> tuple[list, str]:
    """(training parts, their words in the description) of data.shared_register (more phrases of
    some instruments per training font, all in the register they share: timbre, not pitch, tells
    them apart) and data.stretched (more phrases per training font, each stretch()ed: played from
    the sample a sparsely sampled soundfont would stretch over those keys)."""
    parts, text = [], ""
    reg = checked_shared_register(d)
    if reg:
        names, phrases, (lo, hi) = reg
        parts += clips.variants(fonts, names, phrases, programs, register=True)
        text = (f"{sum(len(y) for _, y in parts)} {' and '.join(l for l in LABELS if l in names)} phrases in "
                f"their shared register (MIDI {lo}-{hi}) + ")
    st = checked_stretched(d)
    if st:
        names, phrases, span = st
        parts += clips.variants(fonts, names, phrases, programs, stretch_range=tuple(span))
        text += f"{phrases * len(names) * len(fonts)} phrases stretched by {span[0]}-{span[1]} semitones + "
    return parts, text


def _modelled(d: dict, clips: _Clips) -> tuple[list, dict]:
    """Physically modelled instruments: data.plucked_phrases guitar phrases, data.bowed_phrases
    cello and as many violin phrases. (training parts, {instrument: phrases})."""
    counts = {"guitar": d["plucked_phrases"] or 0, "cello": d["bowed_phrases"] or 0}
    counts["violin"] = counts["cello"]
    parts = [modelled_set(instrument, count, clips.seconds, clips.seed)
             for instrument, count in counts.items() if count]
    return [(clips.of(w), y) for w, y in parts], counts


def _real_windows(root, real: dict, d: dict, spec, seed: int) -> tuple[list, tuple]:
    """([the training windows, at most data.real.cap_per_class per class], the val windows) of
    the recordings under data.real.folder; no windows without one."""
    if not real.get("folder"):
        return [], (np.zeros((0, spec.clip_samples), np.float32), np.zeros(0, np.int64))
    parts = recording_windows(Path(root) / real["folder"], real, spec, d["hop_seconds"], seed)
    (xr, yr, gr), (x_val, y_val, _) = parts["train"], parts["val"]
    keep = cap_per_class(yr, gr, int(real.get("cap_per_class", 300)), seed)
    return [(xr[keep], yr[keep])], (x_val, y_val)


def _through_phones(x: np.ndarray, share: float, spec, seed: int) -> tuple[np.ndarray, int]:
    """(x with a random `share` of its clips heard through a random phone-like chain, how many)."""
    from models.audio_windows import fix_length, prepare
    n_phone = int(round(share * len(x)))
    if n_phone:
        rng = np.random.default_rng(seed + 17)
        x = np.array(x, np.float32)
        for i in rng.choice(len(x), n_phone, replace=False):
            x[i] = fix_length(prepare(phone(x[i], rng, spec.sample_rate), spec), spec.clip_samples)
    return x, n_phone


def _description(fonts: dict, n: dict, variants_text: str, real: dict, spec) -> str:
    """What the splits hold; `n`: the counts (train, variants, sampled, modelled, real, val, phone, test)."""
    modelled = n["modelled"]
    rendered = n["train"] - n["real"] - n["sampled"] - sum(modelled.values()) - n["variants"]
    return (f"train: {rendered} phrases rendered with {', '.join(fonts['train'])} + " + variants_text
            + (f"{n['sampled']} phrases played with the training recordings' notes + " if n["sampled"] else "")
            + (f"{modelled['guitar']} guitar phrases on modelled guitars + " if modelled["guitar"] else "")
            + (f"{modelled['cello']} cello and {modelled['violin']} violin phrases on modelled bowed strings + "
               if modelled["cello"] else "")
            + f"{n['real']} windows of training recordings"
            + (f" ({n['phone']} of all of them through a random phone-like chain)" if n["phone"] else "")
            + f"; val: {n['val']} windows of held-out recordings "
            f"({', '.join(real.get('val_sources', [])) or 'none'} + {real.get('val_share', 0.2):.0%} of "
            f"single-source classes, by recording); test: {n['test']} phrases rendered with held-out "
            f"{', '.join(fonts['test'])}; {spec.clip_seconds:g} s at {spec.sample_rate} Hz")


def instruments(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """train: phrases rendered with data.soundfonts.train + the training recordings; val: the
    held-out recordings (data.real.val_sources; the recording chains the model never heard);
    test: phrases rendered with the held-out data.soundfonts.test."""
    d = cfg["data"]
    spec = audio_spec(cfg)
    seed = cfg["train"]["seed"]
    fonts = checked_soundfonts(d)
    clips = _Clips(spec, d["phrases"], float(d["phrase_seconds"] or spec.clip_seconds), seed)
    train_programs = checked_train_programs(d)
    if d["test_only"]:
        return _test_only(clips, fonts)
    # train_programs: the programs the training fonts play instead of the instruments' own (list
    # those too to keep them); the held-out font always plays the instruments' own
    train = [clips.rendered(fonts["train"], 0, train_programs or None)]
    test_recordings: list = []  # the held-out phrases as rendered (TaskData.test_inputs)
    x_te, y_te = clips.rendered(fonts["test"], 1000, recordings=test_recordings)
    variants, variants_text = _variants(d, clips, fonts["train"], train_programs)
    real = d["real"] or {}
    sampled = []
    if real.get("folder") and d["sampled_phrases"]:
        w, y = sampled_set(Path(root) / real["folder"], real, int(d["sampled_phrases"]), clips.seconds, seed)
        sampled = [(clips.of(w), y)]
    modelled, n_modelled = _modelled(d, clips)
    windows, (x_val, y_val) = _real_windows(root, real, d, spec, seed)
    train += variants + sampled + modelled + windows
    x_tr, y_tr = np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])
    x_tr, n_phone = _through_phones(x_tr, checked_phone_share(d), spec, seed)
    n = {"train": len(y_tr), "variants": sum(len(y) for _, y in variants), "modelled": n_modelled,
         "sampled": sum(len(y) for _, y in sampled), "real": sum(len(y) for _, y in windows), "val": len(y_val),
         "phone": n_phone, "test": len(y_te)}
    return TaskData(_as_set(x_tr, y_tr), _as_set(x_val, y_val), _as_set(x_te, y_te), labels=list(LABELS),
                    preprocessing=spec.to_dict(), description=_description(fonts, n, variants_text, real, spec),
                    test_inputs=test_recordings)
