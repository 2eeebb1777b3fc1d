"""Image data sets in their official layouts: Tiny ImageNet and CUB-200-2011.

Images are decoded once, resized to data.image_size exactly as the app does it
(models.image_frontend.to_tensor: the whole image, bilinear, no crop, so a CAM maps back
onto all of it) and cached as uint8 under ~/.cache/xai-lab; a data set normalises them
item by item, so 30000 images at 160 px cost 2.3 GB of page cache rather than 9 GB of floats.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from models.architectures import EFFNET_MEAN, EFFNET_STD
from models.image_frontend import load_image, normalise, pixels

from .data_common import TaskData, cached_array
from .schema import DataBase

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class ImageData(DataBase):
    image_size: int = 224            # decoded and resized once to this square (cached)
    normalise: str = "imagenet"      # imagenet statistics, or "effnet": (x - 127) / 128
    val_size: int = 0                # held out from the training images
    limit: int | None = None         # images per class (in each split), for smoke runs
    hf_repo: str | None = None       # where --download fetches it
    hf_file: str | None = None


@dataclass
class TinyImagenetData(ImageData):
    image_size: int = 64


@dataclass
class SyntheticShapesData(ImageData):
    image_size: int = 32
    size: int = 200                  # training images (and half as many test images)


class ImageTensors(TensorDataset):
    """uint8 images (N, 3, S, S) and labels; items come out as normalised float tensors
    (models.image_frontend.normalise, as the app makes them). `.tensors` keeps the uint8
    storage (labels for baselines, cheap subsets)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        super().__init__(images, labels)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def __getitem__(self, i):
        return normalise(self.tensors[0][i], self.mean, self.std), self.tensors[1][i]

    def subset(self, idx) -> "ImageTensors":
        return ImageTensors(self.tensors[0][idx], self.tensors[1][idx], self.mean, self.std)


def decode_resized(paths: list[Path], size: int) -> np.ndarray:
    """(N, 3, size, size) uint8: each file loaded and resized by the app's front end."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    for i, p in enumerate(paths):
        out[i] = pixels(load_image(p), size)
    return out


def _cached_images(name: str, folder: Path, paths: list[Path], size: int) -> np.ndarray:
    key = f"{folder.resolve()}|{size}|".encode() + "\n".join(str(p.relative_to(folder)) for p in paths).encode()
    return cached_array(f"{name}-{size}", key, lambda: decode_resized(paths, size))


def _normalisation(cfg: dict) -> tuple[tuple, tuple]:
    """EfficientNet-Lite wants (x - 127) / 128; models trained here use ImageNet statistics."""
    if cfg["data"]["normalise"] == "effnet":
        return EFFNET_MEAN, EFFNET_STD
    return IMAGENET_MEAN, IMAGENET_STD


def _image_task(cfg: dict, images: np.ndarray, labels: np.ndarray, train_idx, test_idx, names: list[str],
                description: str, paths: list[Path] | None = None) -> TaskData:
    """`paths`: the file of each image (the test split's are kept as TaskData.test_inputs)."""
    mean, std = _normalisation(cfg)
    size = images.shape[-1]
    with warnings.catch_warnings():  # a read-only memory map of the cache: never written to, only read
        warnings.simplefilter("ignore", UserWarning)
        x = torch.from_numpy(np.asarray(images))
    y = torch.from_numpy(labels.astype(np.int64))
    train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    val_size = cfg["data"]["val_size"]
    seed = cfg["train"]["seed"]
    perm = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(seed))]
    val_idx, train_idx = perm[:val_size], perm[val_size:]

    def part(idx):
        return ImageTensors(x[idx], y[idx], mean, std)

    train, val, test = part(train_idx), part(val_idx), part(test_idx)
    return TaskData(train, val, test, labels=names,
                    preprocessing={"kind": "image", "size": size, "mean": list(mean), "std": list(std),
                                   "grayscale": False},
                    description=f"{description}; train {len(train)}, "
                                f"{f'val {len(val)} (held out from train)' if len(val) else 'no validation split'}, "
                                f"test {len(test)}; {size}x{size} px",
                    test_inputs=None if paths is None else [paths[i] for i in test_idx.tolist()])


# --- Tiny ImageNet (<root>/tiny-imagenet-200: wnids.txt, words.txt, train/<wnid>/images/*.JPEG,
# val/images/*.JPEG + val/val_annotations.txt). The official val set serves as the test split.

def tiny_imagenet_labels(folder: Path) -> tuple[list[str], list[str]]:
    """(wnids in wnids.txt order, label = first name of each synset, made unique with its wnid)."""
    wnids = (folder / "wnids.txt").read_text().split()
    words = {}
    for line in (folder / "words.txt").read_text().splitlines():
        wnid, _, text = line.partition("\t")
        words[wnid] = text.split(",")[0].strip()
    names = [words.get(w, w) for w in wnids]
    return wnids, [n if names.count(n) == 1 else f"{n} ({w})" for n, w in zip(names, wnids)]


def tiny_imagenet(root: Path, cfg: dict, download: bool = False) -> TaskData:
    folder = root / "tiny-imagenet-200"
    if download and not (folder / "wnids.txt").is_file():
        from .vision_download import download_tiny_imagenet
        download_tiny_imagenet(folder, cfg["data"]["hf_repo"], cfg["data"]["hf_file"])
    if not (folder / "wnids.txt").is_file():
        raise FileNotFoundError(f"Tiny ImageNet not found: no {folder / 'wnids.txt'}; pass --download to fetch it")
    wnids, names = tiny_imagenet_labels(folder)
    index = {w: i for i, w in enumerate(wnids)}
    train = sorted((p, index[p.parent.parent.name]) for p in (folder / "train").glob("*/images/*.JPEG"))
    val = []
    for line in (folder / "val" / "val_annotations.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            val.append((folder / "val" / "images" / parts[0], index[parts[1]]))
    limit = cfg["data"]["limit"]
    if limit:
        train = _per_class(train, int(limit))
        val = _per_class(val, max(1, int(limit) // 2))
    paths = [p for p, _ in train + val]
    images = _cached_images("tiny-imagenet", folder, paths, cfg["data"]["image_size"])
    labels = np.array([k for _, k in train + val])
    return _image_task(cfg, images, labels, np.arange(len(train)), np.arange(len(train), len(paths)), names,
                       f"Tiny ImageNet: official train images, official val set as test ({len(names)} classes)", paths)


def _per_class(items: list, n: int) -> list:
    count: dict[int, int] = {}
    kept = []
    for p, k in items:
        if count.get(k, 0) < n:
            kept.append((p, k))
            count[k] = count.get(k, 0) + 1
    return kept


# --- CUB-200-2011 (<root>/cub-200-2011-50/CUB_200_2011 or <root>/CUB_200_2011: images.txt,
# classes.txt, image_class_labels.txt, train_test_split.txt, bounding_boxes.txt, images/)

CUB_DIRS = ("cub-200-2011-50/CUB_200_2011", "CUB_200_2011")


def cub_folder(root: Path) -> Path:
    for rel in CUB_DIRS:
        if (root / rel / "images.txt").is_file():
            return root / rel
    raise FileNotFoundError(f"CUB-200-2011 not found: no images.txt under {root} ({' or '.join(CUB_DIRS)}); "
                            "pass --download to fetch it")


def _id_table(path: Path) -> dict[int, str]:
    return {int(a): b.strip() for a, b in (line.split(" ", 1) for line in path.read_text().splitlines() if line.strip())}


def read_cub(folder: Path) -> dict:
    """The official tables as lists in images.txt order: paths, class index (0-based among the
    classes present), is_train, box (x, y, w, h in the image's pixels), and the class names."""
    images = _id_table(folder / "images.txt")
    classes = _id_table(folder / "classes.txt")
    label_of = {k: int(v) for k, v in _id_table(folder / "image_class_labels.txt").items()}
    is_train = {k: v == "1" for k, v in _id_table(folder / "train_test_split.txt").items()}
    boxes = {k: tuple(float(t) for t in v.split()) for k, v in _id_table(folder / "bounding_boxes.txt").items()}
    present = sorted({label_of[i] for i in images})
    class_index = {c: j for j, c in enumerate(present)}
    ids = sorted(images)
    return {"ids": ids, "paths": [folder / "images" / images[i] for i in ids],
            "labels": np.array([class_index[label_of[i]] for i in ids]),
            "is_train": np.array([is_train[i] for i in ids]), "boxes": [boxes[i] for i in ids],
            "names": [classes[c] for c in present]}


def cub(root: Path, cfg: dict, download: bool = False) -> TaskData:
    if download:
        try:
            cub_folder(root)
        except FileNotFoundError:
            from .vision_download import download_cub
            download_cub(root, cfg["data"]["hf_repo"], cfg["data"]["hf_file"])
    folder = cub_folder(root)
    table = read_cub(folder)
    keep = np.arange(len(table["paths"]))
    limit = cfg["data"]["limit"]
    if limit:
        keep = np.sort(np.concatenate([
            [i for i, _ in _per_class([(i, table["labels"][i]) for i in np.flatnonzero(table["is_train"] == part)],
                                      int(limit))] for part in (True, False)])).astype(np.int64)
    paths, is_train = [table["paths"][i] for i in keep], table["is_train"][keep]
    images = _cached_images("cub", folder, paths, cfg["data"]["image_size"])
    train_idx, test_idx = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    return _image_task(cfg, images, table["labels"][keep], train_idx, test_idx, table["names"],
                       f"CUB-200-2011 ({len(table['names'])} classes): official train/test split", paths)


# --- a tiny learnable colour-and-shape task for tests (seconds on a CPU)

def synthetic_shapes(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """Class k = a bright square in quadrant k of a noisy data.image_size image."""
    size, n = cfg["data"]["image_size"], cfg["data"]["size"]
    rng = np.random.default_rng(cfg["train"]["seed"])
    total = n + n // 2
    labels = rng.integers(0, 4, total)
    images = rng.integers(0, 90, (total, 3, size, size)).astype(np.uint8)
    h = size // 2
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 2)
        images[i, :, r * h + h // 4: r * h + 3 * h // 4, c * h + h // 4: c * h + 3 * h // 4] = 230
    return _image_task(cfg, images, labels, np.arange(n), np.arange(n, total),
                       ["top-left", "top-right", "bottom-left", "bottom-right"], "synthetic shapes")

