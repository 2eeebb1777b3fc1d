"""What every data set loader shares: the TaskData it returns, seeded splits, the decode cache,
and the audio spec a config describes. Loaders live in their own modules (mnist, esc50, fsdd,
vision, instruments/); training/dataset_registry.py is the registry that names them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .schema import ConfigError

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


def synthetic_sizes(cfg: dict, n: int) -> tuple[int, int, int]:
    """Train, val and test sizes of a synthetic task: data.size, data.val_size and data.test_size
    (a quarter of the train size each by default, at least 8; test_size 0: a run that is never tested)."""
    d, default = cfg["data"], max(n // 4, 8)
    return n, *(default if d[key] is None else int(d[key]) for key in ("val_size", "test_size"))


# Decoded clips are cached outside the repo: decoding 2000 clips takes a while on 2 cores,
# and the cache (640 MB at 16 kHz) must never end up in git.
CACHE_ENV = "XAI_LAB_CACHE"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "xai-lab"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def audio_spec(cfg: dict):
    """AudioSpec from data.sample_rate and data.clip_seconds plus the config's `audio`
    section (n_mels, n_fft, hop_length, f_min, f_max, top_db): what the checkpoint stores."""
    from models.audio_spec import AudioSpec
    audio = dict(cfg["audio"] or {})
    data = {k: v for k, v in cfg["data"].items() if v is not None}
    for key in ("sample_rate", "clip_seconds"):
        if key in audio and key in data and audio[key] != data[key]:
            raise ConfigError(f"audio.{key}={audio[key]} contradicts data.{key}={data[key]}")
        if key not in audio and key not in data:
            raise ConfigError(f"the config needs data.{key}")
        audio.setdefault(key, data.get(key))
    return AudioSpec.from_dict(audio)


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
