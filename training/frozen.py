"""Transfer learning on a CPU: the pretrained backbone frozen, its features computed once.

With `train.frozen_backbone: true` the training commands see, instead of images, the
backbone's pooled features (computed once per data set and cached on disk) and train only
the classifier (`Head`: dropout + linear, named like EfficientNet's own `_dropout`/`_fc`).
The checkpoint is the whole network: the pretrained backbone with the trained classifier,
so the app, CAM and `evaluate` run on images as usual. The one pass over Tiny ImageNet's
30000 images at 224 px took ~40 CPU-minutes here; fine-tuning the whole network would cost
about three times a pass (forward + backward), every epoch.
"""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from .datasets import TaskData, cached_array


class Head(nn.Module):
    """The classifier that sits on pooled backbone features; its state dict keys are the
    full network's (`_fc.weight`, `_fc.bias`). A training item may hold several views of one
    image (B, V, D): each step uses a random one, evaluation the first (the image as is).
    Keeping the views of an image in one item means no split can put a mirror image on
    the other side of the image it mirrors."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(in_features, num_classes)

    def forward(self, z):
        if z.dim() == 3:
            pick = torch.randint(0, z.shape[1], (len(z),), device=z.device) if self.training else \
                torch.zeros(len(z), dtype=torch.long, device=z.device)
            z = z[torch.arange(len(z), device=z.device), pick]
        return self._fc(self._dropout(z))


def enabled(cfg: dict) -> bool:
    return bool(cfg.get("train", {}).get("frozen_backbone"))


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What EfficientNet's classifier sees: extract_features -> global average pool."""
    return model.extract_features(x).mean((2, 3))


@torch.inference_mode()
def features_of(model: nn.Module, ds, device, batch_size: int = 64, desc: str = "features",
                flip: bool = False) -> np.ndarray:
    model.eval().to(device)
    out = []
    show = sys.stderr.isatty()
    for x, _ in tqdm(DataLoader(ds, batch_size=batch_size), desc=desc, disable=not show, leave=False):
        x = x.to(device)
        out.append(pooled_features(model, x.flip(-1) if flip else x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _fingerprint(ds) -> bytes:
    """Cheap content key of a data set: its size and a strided sample of its items."""
    h = hashlib.sha1(str(len(ds)).encode())
    for i in range(0, len(ds), max(1, len(ds) // 50)):
        x, y = ds[i]
        h.update(np.ascontiguousarray(x.numpy()).tobytes()[::97])
        h.update(str(int(y)).encode())
    return h.digest()


def split_features(cfg: dict, ds, split: str, backbone: nn.Module, device, mirrored: bool = False) -> np.ndarray:
    """One split's pooled features (of the mirror images with `mirrored`), computed once and
    cached; the key is the config's model part (dropout aside) and the split's content."""
    key_cfg = {"arch": cfg["arch"], "model": {k: v for k, v in cfg.get("model", {}).items() if k != "dropout"}}
    key = json.dumps(key_cfg, sort_keys=True).encode() + _fingerprint(ds) + (b"|flip" if mirrored else b"")
    name = f"features-{cfg['task']}-{split}{'-flip' if mirrored else ''}"
    return np.asarray(cached_array(name, key, lambda: features_of(
        backbone, ds, device, desc=f"{split} features{' (mirrored)' if mirrored else ''}", flip=mirrored)))


def feature_data(cfg: dict, data: TaskData, backbone: nn.Module, device) -> TaskData:
    """The same task with each split replaced by its cached backbone features; with
    `train.frozen_flip` the training split also holds the features of its mirror images."""
    if not hasattr(backbone, "extract_features"):
        from .config import ConfigError
        raise ConfigError(f"train.frozen_backbone needs a pretrained backbone with extract_features (arch effnet), "
                          f"not {cfg['arch']!r}")
    flip = bool(cfg["train"].get("frozen_flip"))
    sets = {}
    for split in ("train", "val", "test"):
        ds = getattr(data, split)
        if ds is None or len(ds) == 0:
            sets[split] = TensorDataset(torch.zeros(0, 1), torch.zeros(0, dtype=torch.int64))
            continue
        views = [False, True] if (flip and split == "train") else [False]
        feats = [split_features(cfg, ds, split, backbone, device, mirrored) for mirrored in views]
        z = torch.from_numpy(np.stack(feats, 1) if len(feats) > 1 else feats[0]).float()
        sets[split] = TensorDataset(z, ds.tensors[1])
    return TaskData(sets["train"], sets["val"], sets["test"], labels=data.labels, preprocessing=data.preprocessing,
                    description=data.description + "; backbone frozen (features computed once), classifier trained"
                                + (" on the images and their mirror images" if flip else ""),
                    frozen_backbone=True)


def head_for(cfg: dict, data: TaskData) -> Head:
    return Head(data.train.tensors[0].shape[-1], len(data.labels), float(cfg.get("model", {}).get("dropout") or 0.0))


def merge_head(model: nn.Module, head_state: dict) -> nn.Module:
    """Put a trained Head's weights into the full network (which holds the pretrained backbone)."""
    missing, unexpected = model.load_state_dict(head_state, strict=False)
    if unexpected or not set(head_state) <= set(model.state_dict()):
        raise ValueError(f"the head's weights do not fit the network: unexpected {unexpected}")
    return model
