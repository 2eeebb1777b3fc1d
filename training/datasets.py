"""Data sets in the official layouts, as in-memory tensors (all tasks here fit in RAM).

`load_task_data(cfg, root)` -> TaskData(train, val, test, labels, preprocessing).
A data set is registered with @dataset("name"); the config's data.dataset picks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

from models.image_frontend import normalise

LOADERS: dict[str, Callable] = {}


def dataset(name: str):
    def wrap(fn):
        LOADERS[name] = fn
        return fn
    return wrap


@dataclass
class TaskData:
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    labels: list[str]
    preprocessing: dict
    description: str = ""
    frozen_backbone: bool = False  # the splits hold backbone features, not inputs (training.frozen)
    cached_trunk: bool = False     # ... the outputs of a frozen trunk, the rest of the network trains
    # What a user would hand the app for each test item (an image or sound file, an image's uint8 pixels), where
    # the test split holds a transform of it: lets a test check the app serves the same tensor (tests/test_agreement.py)
    test_inputs: Sequence | None = None


def split_val(x: torch.Tensor, y: torch.Tensor, val_size: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def take(ds: TensorDataset, idx) -> TensorDataset:
    """The items `idx` of a data set, as a data set of the same kind (image sets keep their
    normalisation)."""
    if hasattr(ds, "subset"):
        return ds.subset(idx)
    return TensorDataset(*(t[idx] for t in ds.tensors))


def split_dataset(ds: TensorDataset, val_size: int, seed: int) -> tuple[TensorDataset, TensorDataset]:
    """(rest, val): `val_size` items drawn with a seeded permutation."""
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    return take(ds, perm[val_size:]), take(ds, perm[:val_size])


def first_items(ds: TensorDataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n items as one (x, y) batch, as the model sees them."""
    from torch.utils.data import default_collate
    return default_collate([ds[i] for i in range(min(n, len(ds)))])


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format), gzipped or not."""
    import gzip
    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


@dataset("mnist")
def mnist(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """torchvision layout (<root>/mnist/MNIST/raw/*-idx?-ubyte[.gz]). `swap: true` trains on
    the official test set and tests on the official train set (the loss-curve study)."""
    raw = root / "mnist" / "MNIST" / "raw"
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if download and any(_find(raw, s) is None for s in stems):
        from torchvision.datasets import MNIST
        MNIST(str(root / "mnist"), train=True, download=True)  # only when the user asked for it
    paths = [_find(raw, s) for s in stems]
    if any(p is None for p in paths):
        raise FileNotFoundError(f"MNIST idx files not found under {raw}; pass --download to fetch them")
    arrays = [read_idx(p) for p in paths]

    def prep(images, labels):  # the app's normalisation (models.image_frontend), on the idx pixels as they are
        x = normalise(torch.from_numpy(images.copy()).unsqueeze(1), [MNIST_MEAN], [MNIST_STD])
        return x, torch.from_numpy(labels.astype(np.int64))

    train, test = (arrays[0], arrays[1]), (arrays[2], arrays[3])
    (xtr, ytr), (xte, yte) = prep(*train), prep(*test)
    data_cfg = cfg["data"]
    if data_cfg.get("swap"):
        (xtr, ytr), (xte, yte) = (xte, yte), (xtr, ytr)
        train, test = test, train
    (xtr, ytr), (xva, yva) = split_val(xtr, ytr, int(data_cfg.get("val_size", 5000)), int(cfg["train"].get("seed", 0)))
    split = "official test set" if data_cfg.get("swap") else "official train set"
    return TaskData(
        TensorDataset(xtr, ytr), TensorDataset(xva, yva), TensorDataset(xte, yte),
        labels=[str(d) for d in range(10)],
        preprocessing={"kind": "image", "size": 28, "mean": [MNIST_MEAN] * 3, "std": [MNIST_STD] * 3,
                       "grayscale": True, "invert_light_background": True},
        description=(f"train: {len(ytr)} images of the {split}, "
                     f"{f'val: {len(yva)} held out from it' if len(yva) else 'no validation split'}, "
                     f"test: {len(yte)} ({'official train set' if data_cfg.get('swap') else 'official test set'})"),
        test_inputs=test[0],
    )


def synthetic_sizes(cfg: dict, n: int) -> tuple[int, int, int]:
    """Train, val and test sizes of a synthetic task: data.size, data.val_size and data.test_size
    (a quarter of the train size each by default, at least 8; test_size 0: a run that is never tested)."""
    d = cfg["data"]
    return n, int(d.get("val_size", max(n // 4, 8))), int(d.get("test_size", max(n // 4, 8)))


@dataset("synthetic-digits")
def synthetic_digits(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """Tiny learnable stand-in for tests: class k = a bright bar at row 2k+4 of a 28x28 image, plus noise."""
    n = int(cfg["data"].get("size", 300))
    g = torch.Generator().manual_seed(int(cfg["train"].get("seed", 0)))
    num_classes = int(cfg["data"].get("num_classes", 4))

    def make(count):
        y = torch.randint(0, num_classes, (count,), generator=g)
        x = torch.randn(count, 1, 28, 28, generator=g) * 0.3
        for i, k in enumerate(y.tolist()):
            x[i, 0, 2 * k + 4: 2 * k + 6, 4:24] += 2.0
        return x, y

    tr, va, te = (make(size) for size in synthetic_sizes(cfg, n))
    return TaskData(TensorDataset(*tr), TensorDataset(*va), TensorDataset(*te),
                    labels=[f"bar{k}" for k in range(num_classes)],
                    preprocessing={"kind": "image", "size": 28, "mean": [0.0] * 3, "std": [1.0] * 3, "grayscale": True},
                    description=f"synthetic: {n} train / {len(va[1])} val / {len(te[1])} test")


def load_task_data(cfg: dict, root: Path, download: bool = False) -> TaskData:
    name = cfg["data"].get("dataset", cfg["task"])
    if name not in LOADERS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(LOADERS)}")
    data = LOADERS[name](Path(root), cfg, download=download)
    subset = cfg["data"].get("train_subset")
    if subset:
        data.train = take(data.train, torch.arange(min(int(subset), len(data.train))))
    return data


# --- ESC-50 (official layout: <root>/esc50/meta/esc50.csv + audio/; the CSV's `filename`
# column names the clips, whatever their format: 44.1 kHz WAV officially, OGG here)

ESC50_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
ESC50_CSV = Path("meta") / "esc50.csv"
# Decoded clips are cached outside the repo: decoding 2000 clips takes a while on 2 cores,
# and the cache (640 MB at 16 kHz) must never end up in git.
CACHE_ENV = "XAI_LAB_CACHE"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "xai-lab"
DOWNLOAD_CHUNK = 1 << 20


def cache_dir() -> Path:
    import os
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def audio_spec(cfg: dict):
    """AudioSpec from data.sample_rate and data.clip_seconds plus the config's `audio`
    section (n_mels, n_fft, hop_length, f_min, f_max, top_db): what the checkpoint stores."""
    from models.audio_frontend import AudioSpec
    data, audio = cfg["data"], dict(cfg.get("audio") or {})
    for key in ("sample_rate", "clip_seconds"):
        if key in audio and key in data and audio[key] != data[key]:
            raise ValueError(f"audio.{key}={audio[key]} contradicts data.{key}={data[key]}")
        if key not in audio and key not in data:
            raise KeyError(f"the config needs data.{key}")
        audio.setdefault(key, data.get(key))
    return AudioSpec.from_dict(audio)


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
    from models.audio_frontend import fix_length, load_audio
    return fix_length(load_audio(path, sample_rate), int(round(clip_seconds * sample_rate)))


def _decode_all(folder: Path, rows: list[dict], sample_rate: int, clip_seconds: float) -> np.ndarray:
    # One process: a clip takes ~5 ms to decode and resample, so all 2000 take seconds and a
    # pool would only fight the training jobs for the cores.
    return np.stack([read_clip(folder / "audio" / r["filename"], sample_rate, clip_seconds) for r in rows])


def cached_array(name: str, key: bytes, build) -> np.ndarray:
    """An array built once by `build()` and memory-mapped from the cache after. The file name
    hashes `key` (data folder, settings, file list...), so another copy of the data or other
    settings never read a stale cache; a damaged cache file is rebuilt."""
    import hashlib
    import sys
    path = cache_dir() / f"{name}-{hashlib.sha1(key).hexdigest()[:10]}.npy"
    if path.is_file():
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            pass
    print(f"decoding {name} once; cache: {path}", file=sys.stderr)
    array = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    tmp.replace(path)  # atomic: an interrupted run never leaves a half-written cache
    return array


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


@dataset("esc50")
def esc50(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """ESC-50 waveforms (N, samples) float32 at data.sample_rate, split by the official folds
    (data.train_folds/val_folds/test_folds). data.limit: clips per fold, uncached (smoke tests)."""
    data_cfg = cfg["data"]
    folder = root / "esc50"
    if download and not (folder / ESC50_CSV).is_file():
        download_esc50(folder, url=data_cfg.get("url", ESC50_URL))
    if not (folder / ESC50_CSV).is_file():
        raise FileNotFoundError(f"ESC-50 not found: no {folder / ESC50_CSV}; pass --download to fetch it")
    spec = audio_spec(cfg)
    rows, labels = read_esc50_meta(folder)
    split_folds = {s: [int(k) for k in data_cfg.get(f"{s}_folds", d)]
                   for s, d in (("train", [1, 2, 3]), ("val", [4]), ("test", [5]))}
    used = sum(split_folds.values(), [])
    if len(used) != len(set(used)):
        raise ValueError(f"ESC-50 folds overlap between splits: {split_folds}")
    if data_cfg.get("limit"):
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


# --- synthetic sound classes for tests and smoke runs (seconds on a CPU)


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


@dataset("synthetic-tones")
def synthetic_tones(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """Tiny learnable audio task: class "tone-<f>" for each data.freqs (Hz), plus "noise" when
    data.noise (default true); data.size training clips at data.sample_rate, data.clip_seconds."""
    data_cfg = cfg["data"]
    spec = audio_spec(cfg)
    labels = [f"tone-{int(f)}" for f in data_cfg.get("freqs", [440, 1000, 2500])]
    labels += ["noise"] if data_cfg.get("noise", True) else []
    rng = np.random.default_rng(int(cfg["train"].get("seed", 0)))
    n = int(data_cfg.get("size", 160))

    def make(count):
        y = rng.integers(0, len(labels), count)
        x = np.stack([_tone_clip(labels[k], spec.clip_samples, spec.sample_rate, rng) for k in y])
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    tr, va, te = (make(size) for size in synthetic_sizes(cfg, n))
    return TaskData(TensorDataset(*tr), TensorDataset(*va), TensorDataset(*te), labels=labels,
                    preprocessing=spec.to_dict(),
                    description=f"synthetic tones: {n} train / {len(va[1])} val / {len(te[1])} test clips of "
                                f"{spec.clip_seconds:g} s at {spec.sample_rate} Hz")


from . import fsdd  # noqa: E402,F401  (registers the spoken-digit loader)
from . import vision  # noqa: E402,F401  (registers the Tiny ImageNet, CUB and synthetic-shapes loaders)
from . import instruments  # noqa: E402,F401  (registers the instruments loader: rendered phrases + recordings)
