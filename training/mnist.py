"""MNIST in torchvision's layout, and a tiny synthetic digit task for tests."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from models.image_frontend import normalise

from .data_common import TaskData, split_val, synthetic_sizes
from .schema import DataBase


@dataclass
class MnistData(DataBase):
    swap: bool = False      # train on the official test set, test on the train set (the loss-curve study)
    val_size: int = 5000    # held out from the training set


@dataclass
class SyntheticDigitsData(DataBase):
    size: int = 300
    num_classes: int = 4
    val_size: int | None = None   # default: a quarter of size, at least 8
    test_size: int | None = None

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
    if data_cfg["swap"]:
        (xtr, ytr), (xte, yte) = (xte, yte), (xtr, ytr)
        train, test = test, train
    (xtr, ytr), (xva, yva) = split_val(xtr, ytr, data_cfg["val_size"], cfg["train"]["seed"])
    split = "official test set" if data_cfg["swap"] else "official train set"
    return TaskData(
        TensorDataset(xtr, ytr), TensorDataset(xva, yva), TensorDataset(xte, yte),
        labels=[str(d) for d in range(10)],
        preprocessing={"kind": "image", "size": 28, "mean": [MNIST_MEAN] * 3, "std": [MNIST_STD] * 3,
                       "grayscale": True, "invert_light_background": True},
        description=(f"train: {len(ytr)} images of the {split}, "
                     f"{f'val: {len(yva)} held out from it' if len(yva) else 'no validation split'}, "
                     f"test: {len(yte)} ({'official train set' if data_cfg['swap'] else 'official test set'})"),
        test_inputs=test[0],
    )



def synthetic_digits(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """Tiny learnable stand-in for tests: class k = a bright bar at row 2k+4 of a 28x28 image, plus noise."""
    n = cfg["data"]["size"]
    g = torch.Generator().manual_seed(cfg["train"]["seed"])
    num_classes = cfg["data"]["num_classes"]

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
