"""ESC-50 in its official layout (<root>/esc50/meta/esc50.csv + audio/; the CSV's `filename`
column names the clips, whatever their format: 44.1 kHz WAV officially, OGG here), and a tiny
synthetic sound task for tests and smoke runs (seconds on a CPU)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .data_common import TaskData, audio_spec, cached_array, synthetic_sizes
from .schema import AudioData, ConfigError

ESC50_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
ESC50_CSV = Path("meta") / "esc50.csv"
DOWNLOAD_CHUNK = 1 << 20


@dataclass
class Esc50Data(AudioData):
    train_folds: list = field(default_factory=lambda: [1, 2, 3])
    val_folds: list = field(default_factory=lambda: [4])
    test_folds: list = field(default_factory=lambda: [5])
    limit: int | None = None        # clips per fold, uncached (smoke tests)
    url: str = ESC50_URL            # where --download fetches it


@dataclass
class SyntheticTonesData(AudioData):
    freqs: list = field(default_factory=lambda: [440, 1000, 2500])
    noise: bool = True              # a "noise" class too
    size: int = 160
    val_size: int | None = None     # default: a quarter of size, at least 8
    test_size: int | None = None


def _first_per_fold(rows: list[dict], n: int) -> list[dict]:
    taken: dict[str, int] = {}
    kept = []
    for r in rows:
        if taken.get(r["fold"], 0) < n:
            kept.append(r)
            taken[r["fold"]] = taken.get(r["fold"], 0) + 1
    return kept


def read_esc50_meta(folder: Path) -> tuple[list[dict], list[str]]:
    """CSV rows (filename, fold, target, category...) and the class names ordered by target."""
    import csv
    with open(folder / ESC50_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    names = {int(r["target"]): r["category"] for r in rows}
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{folder / ESC50_CSV}: targets are not 0..{len(names) - 1}")
    return rows, [names[t] for t in range(len(names))]


def read_clip(path: Path, sample_rate: int, clip_seconds: float) -> np.ndarray:
    """One clip -> float32 mono at sample_rate, exactly clip_seconds long (a few ESC-50
    clips are 3.6 to 7.2 s: padded at the end or centre-cropped)."""
    from models.audio_loading import load_audio
    from models.audio_windows import fix_length
    return fix_length(load_audio(path, sample_rate), int(round(clip_seconds * sample_rate)))


def _decode_all(folder: Path, rows: list[dict], sample_rate: int, clip_seconds: float) -> np.ndarray:
    # One process: a clip takes ~5 ms to decode and resample, so all 2000 take seconds and a
    # pool would only fight the training jobs for the cores.
    return np.stack([read_clip(folder / "audio" / r["filename"], sample_rate, clip_seconds) for r in rows])


def _cached_waveforms(folder: Path, rows: list[dict], sample_rate: int, clip_seconds: float) -> np.ndarray:
    """All ESC-50 clips as (N, samples) float32, decoded once (a few ESC-50 clips are 3.6 to 7.2 s)."""
    key = f"{folder.resolve()}|{sample_rate}|{clip_seconds}|".encode() + (folder / ESC50_CSV).read_bytes()
    return cached_array(f"esc50-{sample_rate}", key, lambda: _decode_all(folder, rows, sample_rate, clip_seconds))


def download_esc50(dest: Path, url: str = ESC50_URL, timeout: float = 60) -> Path:
    """Fetch the official ESC-50 zip (~600 MB) and unpack meta/ and audio/ into `dest`.
    Only called when the user asks for it (--download)."""
    import shutil
    import sys
    import tempfile
    import urllib.request
    import zipfile
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    print(f"downloading ESC-50 from {url} to {dest}", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:  # same disk as dest: moves are renames
        archive = Path(tmp) / "esc50.zip"
        with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as f:
            shutil.copyfileobj(response, f, DOWNLOAD_CHUNK)
        with zipfile.ZipFile(archive) as z:
            csv_names = [n for n in z.namelist() if n.endswith(ESC50_CSV.as_posix())]
            if not csv_names:
                raise ValueError(f"{url} is not the ESC-50 archive: no {ESC50_CSV.as_posix()} in it")
            z.extractall(Path(tmp) / "x")  # zipfile drops '..' and absolute parts of member names
        top = Path(tmp) / "x" / csv_names[0][: -len(ESC50_CSV.as_posix())]
        for name in ("meta", "audio", "LICENSE"):
            src, dst = top / name, dest / name
            if not src.exists():
                continue
            if dst.is_dir():  # a partial earlier copy: the archive's is complete
                shutil.rmtree(dst)
            elif dst.exists():
                dst.unlink()
            shutil.move(str(src), str(dst))
    return dest



def esc50(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """ESC-50 waveforms (N, samples) float32 at data.sample_rate, split by the official folds
    (data.train_folds/val_folds/test_folds). data.limit: clips per fold, uncached (smoke tests)."""
    data_cfg = cfg["data"]
    folder = root / "esc50"
    if download and not (folder / ESC50_CSV).is_file():
        download_esc50(folder, url=data_cfg["url"])
    if not (folder / ESC50_CSV).is_file():
        raise FileNotFoundError(f"ESC-50 not found: no {folder / ESC50_CSV}; pass --download to fetch it")
    spec = audio_spec(cfg)
    rows, labels = read_esc50_meta(folder)
    split_folds = {s: [int(k) for k in data_cfg[f"{s}_folds"]] for s in ("train", "val", "test")}
    used = sum(split_folds.values(), [])
    if len(used) != len(set(used)):
        raise ConfigError(f"ESC-50 folds overlap between splits: {split_folds}")
    if data_cfg["limit"]:
        rows = _first_per_fold(rows, int(data_cfg["limit"]))
        waves = _decode_all(folder, rows, spec.sample_rate, spec.clip_seconds)
    else:
        waves = _cached_waveforms(folder, rows, spec.sample_rate, spec.clip_seconds)
    folds = np.array([int(r["fold"]) for r in rows])
    targets = torch.tensor([int(r["target"]) for r in rows], dtype=torch.int64)

    def split(name):
        idx = np.flatnonzero(np.isin(folds, split_folds[name]))
        return TensorDataset(torch.from_numpy(np.asarray(waves[idx], dtype=np.float32)), targets[idx])

    train, val, test = split("train"), split("val"), split("test")
    test_files = [folder / "audio" / rows[i]["filename"] for i in np.flatnonzero(np.isin(folds, split_folds["test"]))]
    return TaskData(
        train, val, test, labels=labels, preprocessing=spec.to_dict(), test_inputs=test_files,
        description=(f"ESC-50 official folds: train {split_folds['train']} ({len(train)} clips), "
                     f"val {split_folds['val']} ({len(val)}), test {split_folds['test']} ({len(test)}); "
                     f"{spec.clip_seconds:g} s at {spec.sample_rate} Hz"),
    )


def _tone_clip(label: str, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of class `label`: "tone-<Hz>" is a sine at that frequency with a random
    onset, length and level; "noise" is white noise at a random level. The background is
    faint noise or, in a third of the clips, digital silence (as in a synthesised file)."""
    t = np.arange(n) / sample_rate
    y = rng.normal(0, rng.choice([0.0, 0.002, 0.01]), n)
    if label == "noise":
        y += rng.normal(0, rng.uniform(0.05, 0.3), n)
    else:
        freq = float(label.split("-", 1)[1])
        start = int(rng.uniform(0, 0.5) * n)
        stop = start + int(rng.uniform(0.3, 1.0) * n)
        y[start:stop] += rng.uniform(0.1, 0.8) * np.sin(2 * np.pi * freq * t[start:stop] + rng.uniform(0, 2 * np.pi))
    return np.clip(y, -1.0, 1.0).astype(np.float32)  # full scale, as a file holds it



def synthetic_tones(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """Tiny learnable audio task: class "tone-<f>" for each data.freqs (Hz), plus "noise" when
    data.noise (default true); data.size training clips at data.sample_rate, data.clip_seconds."""
    data_cfg = cfg["data"]
    spec = audio_spec(cfg)
    labels = [f"tone-{int(f)}" for f in data_cfg["freqs"]]
    labels += ["noise"] if data_cfg["noise"] else []
    rng = np.random.default_rng(cfg["train"]["seed"])
    n = data_cfg["size"]

    def make(count):
        y = rng.integers(0, len(labels), count)
        x = np.stack([_tone_clip(labels[k], spec.clip_samples, spec.sample_rate, rng) for k in y])
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    tr, va, te = (make(size) for size in synthetic_sizes(cfg, n))
    return TaskData(TensorDataset(*tr), TensorDataset(*va), TensorDataset(*te), labels=labels,
                    preprocessing=spec.to_dict(),
                    description=f"synthetic tones: {n} train / {len(va[1])} val / {len(te[1])} test clips of "
                                f"{spec.clip_seconds:g} s at {spec.sample_rate} Hz")
