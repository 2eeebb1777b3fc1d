"""Data sets in the official layouts, as in-memory tensors (all tasks here fit in RAM).

`load_task_data(cfg, root)` -> TaskData(train, val, test, labels, preprocessing).
A data set is registered with @dataset("name"); the config's data.dataset picks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import TensorDataset

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


def _split_val(x: torch.Tensor, y: torch.Tensor, val_size: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


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

    def prep(images, labels):
        x = torch.from_numpy(images.copy()).float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD).unsqueeze(1)
        return x, torch.from_numpy(labels.astype(np.int64))

    train, test = (arrays[0], arrays[1]), (arrays[2], arrays[3])
    (xtr, ytr), (xte, yte) = prep(*train), prep(*test)
    data_cfg = cfg["data"]
    if data_cfg.get("swap"):
        (xtr, ytr), (xte, yte) = (xte, yte), (xtr, ytr)
    (xtr, ytr), (xva, yva) = _split_val(xtr, ytr, int(data_cfg.get("val_size", 5000)), int(cfg["train"].get("seed", 0)))
    split = "official test set" if data_cfg.get("swap") else "official train set"
    return TaskData(
        TensorDataset(xtr, ytr), TensorDataset(xva, yva), TensorDataset(xte, yte),
        labels=[str(d) for d in range(10)],
        preprocessing={"kind": "image", "size": 28, "mean": [MNIST_MEAN] * 3, "std": [MNIST_STD] * 3,
                       "grayscale": True, "invert_light_background": True},
        description=(f"train: {len(ytr)} images of the {split}, val: {len(yva)} held out from it, "
                     f"test: {len(yte)} ({'official train set' if data_cfg.get('swap') else 'official test set'})"),
    )


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

    tr, va, te = make(n), make(max(n // 4, 8)), make(max(n // 4, 8))
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
        x, y = data.train.tensors
        data.train = TensorDataset(x[: int(subset)], y[: int(subset)])
    return data
