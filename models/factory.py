"""load_predictor: a model id -> its Predictor (image or sound), loaded once per process.

    p = load_predictor("esc50:cnn")    # an AudioPredictor; "imagenet" gives an ImagePredictor
"""
from __future__ import annotations

from functools import lru_cache

import torch

from . import artifacts as A
from .architectures import build_model
from .audio_predictor import AudioPredictor
from .audio_spec import AudioSpec
from .checkpoint import load_checkpoint, model_from_checkpoint
from .device import pick_device
from .hub import resolve_checkpoint
from .image_frontend import ImageSpec
from .predictor import ImagePredictor, Predictor
from .registry import parse_model_id


def _build(model_id: str, device: torch.device) -> Predictor:
    task, entry = parse_model_id(model_id)
    full_id = f"{task.id}:{entry.name}"
    if entry.from_checkpoint:
        ckpt = load_checkpoint(resolve_checkpoint(task.checkpoint_path(entry.name)), entry.train_command)
        model = model_from_checkpoint(ckpt)
        labels, pre = ckpt[A.LABELS], ckpt[A.PREPROCESSING]
        card = {k: ckpt.get(k) for k in (A.METRICS, A.CONFIG, A.SEED, A.CODE_VERSION, A.REPRODUCE)}
        if pre.get("kind") == "audio":
            return AudioPredictor(full_id, model, labels, AudioSpec.from_dict(pre), entry.cam_layer, device, card,
                                  multilabel=entry.multilabel,
                                  temperature=float(A.metrics(ckpt).get("temperature") or 1.0))
        spec = ImageSpec.from_dict(pre)
    else:
        model = build_model(entry.arch, **entry.build_kwargs)
        labels, spec, card = task.labels, entry.input_spec, {"description": entry.description}
        if isinstance(spec, AudioSpec):
            return AudioPredictor(full_id, model, labels, spec, entry.cam_layer, device, card,
                                  multilabel=entry.multilabel)
    return ImagePredictor(full_id, model, labels, spec, entry.cam_layer, device, card)


@lru_cache(maxsize=8)
def _cached(model_id: str, device: str) -> Predictor:
    return _build(model_id, torch.device(device))


def load_predictor(model_id: str, device: str | None = None) -> Predictor:
    """Load (once per process, then cached) the predictor for a model id."""
    task, entry = parse_model_id(model_id)
    return _cached(f"{task.id}:{entry.name}", str(pick_device(device)))
