"""Recordings: `<class>/<source>/<recording>` (or `<class>/<recording>`) of any length, cut into
windows (data.hop_seconds apart). Split by recording, never by window, and by source where a class
has several: data.real.val_sources are never trained on."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data_common import cached_array
from .labels import LABELS

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".oga"}


def find_recordings(folder: Path) -> list[tuple[Path, str, str]]:
    """(path, class, source) for every audio file under folder/<class>/; source "-" when the
    files lie directly in the class folder."""
    found = []
    for label in LABELS:
        for path in sorted((Path(folder) / label).rglob("*")):
            if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
                rel = path.relative_to(Path(folder) / label).parts
                found.append((path, label, rel[0] if len(rel) > 1 else "-"))
    return found


def split_recordings(found: list[tuple[Path, str, str]], val_sources: list[str], val_share: float,
                     seed: int) -> dict[str, list[int]]:
    """Indices of train / val recordings. A source named in val_sources is all val; a class
    with no val source gives val_share of its recordings (whole recordings) to val."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in LABELS:
        idx = [i for i, (_, c, _) in enumerate(found) if c == label]
        held = [i for i in idx if found[i][2] in val_sources]
        if held:
            val += held
            train += [i for i in idx if i not in held]
        else:
            order = list(rng.permutation(idx))
            k = int(round(val_share * len(order)))
            val += order[:k]
            train += order[k:]
    return {"train": sorted(train), "val": sorted(val)}


def split_by_config(found: list[tuple[Path, str, str]], real: dict, seed: int) -> dict[str, list[int]]:
    """split_recordings with the config's data.real settings (the windows and the sampler share it)."""
    return split_recordings(found, list(real.get("val_sources", [])), float(real.get("val_share", 0.2)), seed)


def windows_of(found, indices, spec, hop_seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows (W, samples), labels (W,), recording index of each window (W,))."""
    from models.audio_loading import load_audio
    from models.audio_windows import prepare, windows
    waves, labels, groups = [], [], []
    for i in indices:
        path, label, _ = found[i]
        y = prepare(load_audio(path, spec.sample_rate), spec)
        w, _ = windows(y, spec.clip_samples, int(round(hop_seconds * spec.sample_rate)), spec.sample_rate)
        waves.append(w)
        labels += [LABELS.index(label)] * len(w)
        groups += [i] * len(w)
    if not waves:
        return np.zeros((0, spec.clip_samples), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(waves).astype(np.float32), np.asarray(labels), np.asarray(groups)


def cap_per_class(labels: np.ndarray, groups: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of windows keeping at most `cap` per class, dropping whole recordings at random
    (so no class's real recordings swamp the others)."""
    rng = np.random.default_rng(seed)
    keep = []
    for k in range(len(LABELS)):
        recs = list(rng.permutation(np.unique(groups[labels == k])))
        total = 0
        for r in recs:
            idx = np.flatnonzero(groups == r)
            if total and total + len(idx) > cap:
                continue
            keep += list(idx)
            total += len(idx)
    return np.sort(np.asarray(keep, dtype=np.int64))


def recording_windows(folder: Path, real: dict, spec, hop: float, seed: int) -> dict[str, tuple]:
    """{"train": ..., "val": ...}: (windows, labels, recording index of each window) of the
    recordings under folder, split by recording and source (split_recordings), decoded once
    and cached."""
    found = find_recordings(folder)
    if not found:
        raise FileNotFoundError(f"no recordings under {folder}/<class>/ (classes: {', '.join(LABELS)})")
    parts = split_by_config(found, real, seed)
    key = f"{folder.resolve()}|{spec.waveform_key}|{hop}|".encode() + "|".join(f"{p}:{p.stat().st_size}" for p, _, _ in found).encode()
    out = {}
    for part, idx in parts.items():
        # one cached array: the windows, then each window's label and recording index as two
        # more columns (exact in float32)
        arr = cached_array(f"instruments-real-{part}", key + repr(idx).encode(),
                           lambda idx=idx: np.column_stack(windows_of(found, idx, spec, hop)).astype(np.float32))
        out[part] = (arr[:, :-2], arr[:, -2].astype(np.int64), arr[:, -1].astype(np.int64))
    return out
