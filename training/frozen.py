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

from .data_common import TaskData, cached_array
from .schema import ConfigError, section


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
            from models.augment import pick_view
            z = pick_view(z, self.training)
        return self._fc(self._dropout(z))


def enabled(cfg: dict) -> bool:
    return section(cfg, "train").frozen_backbone


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
    key_cfg = {"arch": cfg["arch"], "model": {k: v for k, v in cfg["model"].items() if k != "dropout"}}
    key = json.dumps(key_cfg, sort_keys=True).encode() + _fingerprint(ds) + (b"|flip" if mirrored else b"")
    name = f"features-{cfg['task']}-{split}{'-flip' if mirrored else ''}"
    return np.asarray(cached_array(name, key, lambda: features_of(
        backbone, ds, device, desc=f"{split} features{' (mirrored)' if mirrored else ''}", flip=mirrored)))


# --- a frozen trunk (front end + first blocks of an audio CNN), cached with augmented views

VIEW_DEFAULTS = {"count": 8, "gain_db": 6.0, "time_shift": 2.5, "freq_mask": 24, "time_mask": 64, "masks": 2}
TRUNK_BATCH = 16


def view_settings(cfg: dict) -> dict:
    """train.views: how many versions of each training clip the cache holds (the first is the
    clip as it is) and how the others are altered: a random gain (+-gain_db), a circular time
    shift (+-time_shift s) of the waveform, and SpecAugment-style masks on the model's input."""
    views = {**VIEW_DEFAULTS, **(section(cfg, "train").views or {})}
    unknown = set(views) - set(VIEW_DEFAULTS)
    if unknown or int(views["count"]) < 1:
        raise ConfigError(f"train.views takes {sorted(VIEW_DEFAULTS)} with count >= 1; got {views}")
    return views


def _masker(views: dict, g: torch.Generator):
    def mask(x):  # x (B, 1, mels, frames): zero (the input's mean) in random bands and spans
        keep = torch.ones_like(x)
        for row in keep:
            for _ in range(int(views["masks"])):
                for axis, width in ((1, int(views["freq_mask"])), (2, int(views["time_mask"]))):
                    if width <= 0:
                        continue
                    w = int(torch.randint(0, width + 1, (1,), generator=g))
                    start = int(torch.randint(0, max(1, row.shape[axis] - w), (1,), generator=g))
                    row.narrow(axis, start, w).zero_()
        return x * keep
    return mask


@torch.inference_mode()
def trunk_views(model: nn.Module, waves: torch.Tensor, views: dict, sample_rate: int, seed: int) -> torch.Tensor:
    """(B, samples) -> (B, V, C, F, T) float16: the trunk's output for V versions of each clip."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for v in range(int(views["count"])):
        x, augment = waves, None
        if v > 0:
            gain = 10 ** ((torch.rand(len(x), 1, generator=g) * 2 - 1) * float(views["gain_db"]) / 20)
            limit = int(float(views["time_shift"]) * sample_rate)
            shifts = torch.randint(-limit, limit + 1, (len(x),), generator=g).tolist()
            x = torch.stack([torch.roll(row, s) for row, s in zip(x * gain, shifts)])
            augment = _masker(views, g)
        out.append(model.trunk(x, augment).half())
    return torch.stack(out, 1)


def _clip_key(wave: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(wave, dtype=np.float32).tobytes()).hexdigest()[:20]


def trunk_cache(cfg: dict, ds, model: nn.Module, device, sample_rate: int, desc: str) -> torch.Tensor:
    """(N, V, C, F, T) float16 for a split's clips. Each clip's views are computed once and
    kept in the cache under the clip's content hash, so every split and fold that holds the
    clip (cross-validation) reuses them."""
    from .data_common import cache_dir
    views = view_settings(cfg)
    key_cfg = {"arch": cfg["arch"], "trunk_blocks": model.trunk_blocks, "views": views, "rate": sample_rate}
    folder = cache_dir() / f"trunk-{cfg['task']}-{hashlib.sha1(json.dumps(key_cfg, sort_keys=True).encode()).hexdigest()[:10]}"
    folder.mkdir(parents=True, exist_ok=True)
    waves = ds.tensors[0]
    keys = [_clip_key(w.numpy()) for w in waves]
    todo = [i for i, k in enumerate(keys) if not (folder / f"{k}.npy").is_file()]
    if todo:
        print(f"{desc}: computing {len(todo)} clips x {views['count']} views of the frozen trunk once; cache: {folder}",
              file=sys.stderr, flush=True)
    model.eval().to(device)
    for start in tqdm(range(0, len(todo), TRUNK_BATCH), desc=desc, disable=not sys.stderr.isatty(), leave=False):
        idx = todo[start: start + TRUNK_BATCH]
        seed = int(keys[idx[0]][:8], 16)  # the views depend on the clip, not on the split it came in
        maps = trunk_views(model, waves[idx].to(device), views, sample_rate, seed).cpu().numpy()
        for i, m in zip(idx, maps):
            tmp = folder / f"{keys[i]}.tmp.npy"
            np.save(tmp, m)
            tmp.replace(folder / f"{keys[i]}.npy")
    return torch.from_numpy(np.stack([np.load(folder / f"{k}.npy") for k in keys]))


def trunk_data(cfg: dict, data: TaskData, model: nn.Module, device) -> TaskData:
    """The task with each split's waveforms replaced by the frozen trunk's cached outputs: all
    views for training, the clip as it is (view 0) for validation and test."""
    rate = int(data.preprocessing["sample_rate"])
    sets = {}
    for split in ("train", "val", "test"):
        ds = getattr(data, split)
        if ds is None or len(ds) == 0:
            sets[split] = ds
            continue
        maps = trunk_cache(cfg, ds, model, device, rate, f"{split} trunk")
        sets[split] = TensorDataset(maps if split == "train" else maps[:, 0], ds.tensors[1])
    views = view_settings(cfg)
    return TaskData(sets["train"], sets["val"], sets["test"], labels=data.labels, preprocessing=data.preprocessing,
                    description=data.description + f"; the first {model.trunk_blocks} blocks frozen (outputs cached, "
                                f"{views['count']} versions of each training clip), the rest fine-tuned",
                    frozen_backbone=True, cached_trunk=True)


def feature_data(cfg: dict, data: TaskData, backbone: nn.Module, device) -> TaskData:
    """The same task with each split replaced by its cached backbone features; with
    `train.frozen_flip` the training split also holds the features of its mirror images."""
    if hasattr(backbone, "trunk"):
        return trunk_data(cfg, data, backbone, device)
    if not hasattr(backbone, "extract_features"):
        raise ConfigError(f"train.frozen_backbone needs a pretrained backbone with extract_features (arch effnet), "
                          f"not {cfg['arch']!r}")
    flip = section(cfg, "train").frozen_flip
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


def _hidden(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output layer's input for waveforms (B, samples) or cached trunk views (B, V, C, F, T; view 0)."""
    feats = model.features(model.frontend(x)) if x.dim() == 2 else model.features[model.trunk_blocks:](x[:, 0].float())
    return model.classifier[:-1](feats)


@torch.no_grad()
def probe_init(model: nn.Module, train, batch_size: int = 256) -> None:
    """train.probe_init: the new output layer starts as a logistic regression on the pretrained
    network's features of the training clips (as they are: view 0 of cached maps, or the waveforms
    of a model that trains on them), then everything trains (LP-FT,
    Kumar et al. 2022): a random new layer would send large gradients into the pretrained blocks
    in the first steps and distort what they learnt on AudioSet."""
    from sklearn.linear_model import LogisticRegression
    maps, y = train.tensors
    if len(torch.unique(y)) < 2:  # a smoke run on a handful of clips: nothing to regress
        print("probe init skipped: the training clips hold a single class", file=sys.stderr, flush=True)
        return
    model.eval()
    layer = model.classifier[-1]
    hidden = torch.cat([_hidden(model, maps[i: i + batch_size]) for i in range(0, len(maps), batch_size)]).numpy()
    mean, std = hidden.mean(0), hidden.std(0) + 1e-6
    probe = LogisticRegression(max_iter=2000).fit((hidden - mean) / std, y.numpy())
    coef, intercept = probe.coef_, probe.intercept_
    if len(probe.classes_) == 2:  # sklearn keeps one row for two classes: logit(1) - logit(0)
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    w = coef / std  # the standardisation folded into the weights
    weight = np.zeros(tuple(layer.weight.shape))
    bias = np.full(layer.bias.shape, float((intercept - w @ mean).min()))  # classes absent from training
    weight[probe.classes_], bias[probe.classes_] = w, intercept - w @ mean
    layer.weight.copy_(torch.from_numpy(weight).float())
    layer.bias.copy_(torch.from_numpy(bias).float())
    print(f"probe init: logistic regression on {len(y)} clips' features, train accuracy "
          f"{probe.score((hidden - mean) / std, y.numpy()):.3f}", file=sys.stderr, flush=True)


def merge_head(model: nn.Module, head_state: dict) -> nn.Module:
    """Put a trained Head's weights into the full network (which holds the pretrained backbone)."""
    missing, unexpected = model.load_state_dict(head_state, strict=False)
    if unexpected or not set(head_state) <= set(model.state_dict()):
        raise ValueError(f"the head's weights do not fit the network: unexpected {unexpected}")
    return model
