"""The config's model: built from its architecture, with what the data tell it (audio models: their
front end's spec, class count and input statistics; on cached features: the part that trains)."""
from __future__ import annotations

import torch
from torch import nn

from models.architectures import build_model

from .data_common import TaskData
from .frozen import Head, probe_init
from .schema import section


def build(cfg: dict, data=None) -> torch.nn.Module:
    """The config's model. Audio models take the data's preprocessing (their LogMel front
    end) and, given the data, its normalisation from training statistics. On backbone
    features (train.frozen_backbone) the model to train is the classifier alone."""
    if data is not None and data.frozen_backbone:
        return head_for(cfg, data)
    model = build_model(cfg["arch"], **(model_kwargs(cfg, data) if data is not None else dict(cfg["model"])))
    if data is not None and hasattr(model, "frontend") and getattr(model, "input_stats", True):
        with torch.no_grad():  # dB statistics of up to 256 training clips, spread over the set (it may be
            x = data.train.tensors[0]  # ordered by source and class)
            pick = torch.linspace(0, len(x) - 1, min(256, len(x))).round().long()
            db = model.frontend.db(x[pick]).transpose(0, 1).flatten(1)  # (C, values)
        model.frontend.set_stats(db.mean(1), db.std(1))
    if data is not None and section(cfg, "train").probe_init:  # on waveforms (cached trunks: head_for)
        probe_init(model, data.train)
    return model


def model_kwargs(cfg: dict, data) -> dict:
    """The builder kwargs a checkpoint stores (audio models: their spec and class count)."""
    kwargs = dict(cfg["model"])
    if data.preprocessing.get("kind") == "audio":
        kwargs.update(spec=data.preprocessing, num_classes=len(data.labels))
    return kwargs


def head_for(cfg: dict, data: TaskData) -> nn.Module:
    """The model to train on cached features: the classifier alone, or the network above a cached trunk."""
    if data.cached_trunk:  # the whole network, its trunk frozen: it runs on the cached maps
        model = build_model(cfg["arch"], **model_kwargs(cfg, data))
        model.frontend.requires_grad_(False)
        model.features[: model.trunk_blocks].requires_grad_(False)
        if section(cfg, "train").probe_init:
            probe_init(model, data.train)
        return model
    return Head(data.train.tensors[0].shape[-1], len(data.labels), float(cfg["model"].get("dropout") or 0.0))
