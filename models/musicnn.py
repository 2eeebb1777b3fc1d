"""musicnn (Pons & Serra 2019) in PyTorch, with its MagnaTagATune-trained weights.

musicnn is a music-tagging CNN trained on real recordings (MagnaTagATune: 50 tags, among them
guitar, piano, violin, cello, strings, harpsichord, flute). Its front end is musically
motivated: "timbral" filters spanning 7 frames x 40% or 70% of the mel axis and "temporal"
filters of 32-128 frames x 1 band, each max-pooled over frequency; a 1-D CNN with residual
connections follows, then max and mean pooling over time and two dense layers. It takes any
number of frames (trained on 3 s: 187 frames of 96 mels at 16 kHz, hop 256).

The weights come from the `musicnn` wheel on PyPI (ISC licence), installed without its
TensorFlow dependency; models/tf_checkpoint.py reads its TensorFlow checkpoint.
Input: (B, 1, 96 mels, frames) of log10(1 + 10000 * mel power) (AudioSpec log="log10p",
mel_scale="slaney"), the features musicnn was trained on.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MTT_TAGS = ['guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano',
            'ambient', 'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing', 'vocals',
            'no vocals', 'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal', 'pop', 'soft',
            'sitar', 'solo', 'man', 'classic', 'choir', 'voice', 'new age', 'dance', 'male voice', 'female vocal',
            'beats', 'harp', 'cello', 'no voice', 'weird', 'country', 'metal', 'female voice', 'choral']
N_MELS = 96
TF_BN_EPS = 1e-3      # tf.layers.batch_normalization's epsilon and momentum (0.99 -> PyTorch's 0.01)
TF_BN_MOMENTUM = 0.01


def _bn(n: int, dims: int = 1) -> nn.Module:
    return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(n, eps=TF_BN_EPS, momentum=TF_BN_MOMENTUM)


class FreqPooledConv(nn.Module):
    """conv2d over (time, mel) -> ReLU -> BatchNorm -> max over the mel axis: (B, C, frames)."""

    def __init__(self, filters: int, kernel: tuple[int, int], time_pad: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = _bn(filters, 2)
        self.time_pad = time_pad

    def forward(self, x):  # x (B, 1, frames, mels)
        x = F.pad(x, (0, 0, *self.time_pad))
        return self.bn(F.relu(self.conv(x))).amax(dim=3)


class Musicnn(nn.Module):
    """(B, 1, mels, frames) -> logits. `features(x)` is the pooled mid-end output, (B, 2 * 753)."""

    def __init__(self, num_classes: int = 50, n_mels: int = N_MELS, filters_midend: int = 64, units_backend: int = 200,
                 dropout: float = 0.5):
        super().__init__()
        self.bn_input = _bn(1, 2)
        timbral = int(1.6 * 128)
        temporal = int(1.6 * 32)
        # TF "same" padding of an even kernel k pads (k-1)//2 before, k//2 after
        self.frontend = nn.ModuleList(
            [FreqPooledConv(timbral, (7, int(share * n_mels)), (3, 3)) for share in (0.4, 0.7)]
            + [FreqPooledConv(temporal, (k, 1), ((k - 1) // 2, k // 2)) for k in (128, 64, 32)])
        front = 2 * timbral + 3 * temporal
        self.midend = nn.ModuleList([nn.Conv1d(front, filters_midend, 7, padding=3)]
                                    + [nn.Conv1d(filters_midend, filters_midend, 7, padding=3) for _ in range(2)])
        self.midend_bn = nn.ModuleList([_bn(filters_midend) for _ in range(3)])
        pooled = 2 * (front + 3 * filters_midend)
        self.bn_pool = _bn(pooled)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(pooled, units_backend)
        self.bn_dense = _bn(units_backend)
        self.cam = nn.Identity()  # the (B, channels, frames) map the back end pools: the CAM layer
        self.classifier = nn.Linear(units_backend, num_classes)

    def feature_map(self, x):
        """(B, 1, mels, frames) -> (B, 753, frames): front-end and mid-end features per frame."""
        x = self.bn_input(x.transpose(2, 3))  # musicnn's layout: (B, 1, frames, mels)
        front = torch.cat([block(x) for block in self.frontend], 1)
        maps, h = [front], front
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn)):
            out = bn(F.relu(conv(h)))
            h = out if i == 0 else out + h
            maps.append(h)
        return torch.cat(maps, 1)

    def pool(self, m):
        # TF flattened (frames-pooled) [max, mean] per channel: max and mean interleaved
        return torch.stack([m.amax(2), m.mean(2)], 2).flatten(1)

    def features(self, x):
        return self.pool(self.cam(self.feature_map(x)))

    def forward(self, x):
        h = self.bn_dense(F.relu(self.dense(self.dropout(self.bn_pool(self.features(x))))))
        return self.classifier(self.dropout(h))


def weights_dir(model: str = "MTT_musicnn") -> Path:
    """The checkpoint folder inside the installed musicnn wheel (found without importing it:
    its __init__ is empty but its other modules import TensorFlow)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("musicnn weights need the musicnn wheel: pip install --no-deps musicnn==0.1.0")
    return Path(list(spec.submodule_search_locations)[0]) / model


def tf_to_torch(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """musicnn's TensorFlow variables -> a Musicnn state dict (50 MTT tags)."""
    conv2d = ["frontend.0.conv", "frontend.1.conv", "frontend.2.conv", "frontend.3.conv", "frontend.4.conv",
              "midend.0", "midend.1", "midend.2"]
    bns = ["bn_input", "frontend.0.bn", "frontend.1.bn", "frontend.2.bn", "frontend.3.bn", "frontend.4.bn",
           "midend_bn.0", "midend_bn.1", "midend_bn.2", "bn_pool", "bn_dense"]
    out = {}
    for i, name in enumerate(conv2d):
        tf = f"conv2d{'' if i == 0 else f'_{i}'}"
        k = weights[f"{tf}/kernel"]  # (h, w, in, out)
        if name.startswith("midend"):  # a conv2d spanning all channels of a (frames, channels, 1) map: Conv1d
            k = k[:, :, 0, :].transpose(2, 1, 0)  # (out, channels, 7)
        else:
            k = k.transpose(3, 2, 0, 1)
        out[f"{name}.weight"], out[f"{name}.bias"] = torch.from_numpy(k.copy()), torch.from_numpy(weights[f"{tf}/bias"])
    for i, name in enumerate(bns):
        tf = f"batch_normalization{'' if i == 0 else f'_{i}'}"
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                             ("running_var", "moving_variance")):
            out[f"{name}.{ours}"] = torch.from_numpy(weights[f"{tf}/{theirs}"])
        out[f"{name}.num_batches_tracked"] = torch.tensor(0)
    for name, tf in (("dense", "dense"), ("classifier", "dense_1")):
        out[f"{name}.weight"] = torch.from_numpy(weights[f"{tf}/kernel"].T.copy())
        out[f"{name}.bias"] = torch.from_numpy(weights[f"{tf}/bias"])
    return out


def pretrained_musicnn(model: str = "MTT_musicnn") -> Musicnn:
    """musicnn with its MagnaTagATune weights (eval mode: the 50-tag tagger as published)."""
    from .tf_checkpoint import load_tf_checkpoint
    net = Musicnn(num_classes=50)
    net.load_state_dict(tf_to_torch(load_tf_checkpoint(str(weights_dir(model)) + "/")))
    return net.eval()
