"""Spoken digits: the Free Spoken Digit Dataset (`{digit}_{speaker}_{index}.wav`), and the
AudioMNIST layout (`data/<speaker>/{digit}_{speaker}_{index}.wav`) for users who have it.

Two splits, the lesson of the practical: `data.split: speaker` keeps every speaker in one
split (data.test_speakers, data.val_speakers; the rest train), `data.split: random` draws
files at random with the same split sizes, so the same speaker is heard in train and test.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .data_common import TaskData, audio_spec, cached_array
from .schema import AudioData, ConfigError

FILE_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$", re.I)


@dataclass
class FsddData(AudioData):
    folder: str = "fsdd/recordings"   # under the data root
    split: str = "speaker"            # speaker: no speaker in two splits; random: by file (the leak it measures)
    val_speakers: list = field(default_factory=list)
    test_speakers: list = field(default_factory=list)


def find_recordings(folder: Path) -> list[tuple[Path, int, str]]:
    """(path, digit, speaker) of every `{digit}_{speaker}_{index}.wav` under folder, at any depth."""
    found = []
    for path in sorted(Path(folder).rglob("*.wav")):
        m = FILE_NAME.match(path.name)
        if m:
            found.append((path, int(m.group(1)), m.group(2).lower()))
    return found


def split_indices(speakers: list[str], data_cfg: dict, seed: int) -> dict[str, np.ndarray]:
    """Indices of train / val / test. By speaker: no speaker in two splits. Random: the same
    sizes drawn by file (speakers shared: the leak the speaker split measures)."""
    speakers = np.asarray(speakers)
    test_spk = [s.lower() for s in data_cfg["test_speakers"]]
    val_spk = [s.lower() for s in data_cfg["val_speakers"]]
    unknown = sorted(set(test_spk + val_spk) - set(speakers))
    if unknown:
        raise ConfigError(f"speakers {unknown} are not in the data; known: {sorted(set(speakers))}")
    test, val = np.isin(speakers, test_spk), np.isin(speakers, val_spk)
    if (test & val).any() or not test.any():
        raise ConfigError("data.test_speakers must be non-empty and share no speaker with data.val_speakers")
    by_speaker = {"train": np.flatnonzero(~test & ~val), "val": np.flatnonzero(val), "test": np.flatnonzero(test)}
    if data_cfg["split"] == "speaker":
        return by_speaker
    if data_cfg["split"] != "random":
        raise ConfigError(f"data.split must be 'speaker' or 'random', not {data_cfg['split']!r}")
    perm = np.random.default_rng(seed).permutation(len(speakers))
    n_test, n_val = len(by_speaker["test"]), len(by_speaker["val"])
    return {"test": np.sort(perm[:n_test]), "val": np.sort(perm[n_test:n_test + n_val]),
            "train": np.sort(perm[n_test + n_val:])}


def fsdd(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """Waveforms (N, samples) float32 at data.sample_rate, prepared as the app does (silence
    trimmed, peak-normalised: audio.trim_db, audio.peak_normalize), padded or centre-cropped
    to data.clip_seconds."""
    from models.audio_loading import load_audio
    from models.audio_windows import fix_length, prepare
    folder = Path(root) / cfg["data"]["folder"]
    found = find_recordings(folder)
    if not found:
        raise FileNotFoundError(f"no {{digit}}_{{speaker}}_{{index}}.wav recordings under {folder}")
    spec = audio_spec(cfg)
    key = f"{folder.resolve()}|{spec.waveform_key}|".encode() + "|".join(f"{p.name}:{p.stat().st_size}" for p, _, _ in found).encode()
    waves = cached_array(f"fsdd-{spec.sample_rate}", key, lambda: np.stack(
        [fix_length(prepare(load_audio(p, spec.sample_rate), spec), spec.clip_samples) for p, _, _ in found]))
    digits = torch.tensor([d for _, d, _ in found])
    speakers = [s for _, _, s in found]
    idx = split_indices(speakers, cfg["data"], cfg["train"]["seed"])
    sets = {k: TensorDataset(torch.from_numpy(np.asarray(waves[v], dtype=np.float32)), digits[v]) for k, v in idx.items()}
    who = {k: sorted({speakers[i] for i in v}) for k, v in idx.items()}
    how = "by speaker" if cfg["data"]["split"] == "speaker" else "random by file"
    return TaskData(sets["train"], sets["val"], sets["test"], labels=[str(d) for d in range(10)],
                    preprocessing=spec.to_dict(),
                    description=(f"FSDD split {how}: train {len(idx['train'])} clips, val {len(idx['val'])}, "
                                 f"test {len(idx['test'])} (test speakers: {', '.join(who['test'])})"),
                    test_inputs=[found[i][0] for i in idx["test"]])  # the recordings (the split holds them trimmed)
