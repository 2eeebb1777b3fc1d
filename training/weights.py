"""Weights across a run and across runs: an exponential moving average during training, the
WiSE-FT interpolation between start and end, and the mean of several runs (a model soup)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .schema import ConfigError


class WeightAverage:
    """An exponential moving average of a model's weights (train.ema = its decay, e.g. 0.998):
    after each optimiser step avg = d * avg + (1 - d) * weights, with d = min(decay, (1 + t) / (10 + t))
    at step t so that the first steps do not keep the initial weights. Float buffers (BatchNorm's
    running statistics) are averaged the same way, integer ones copied. The average is what the
    epoch is evaluated and saved with: it smooths the last epochs' noise without a selection."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"train.ema must be in (0, 1), got {decay}")
        self.decay, self.steps = decay, 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        current = model.state_dict()
        for key, avg in self.model.state_dict().items():
            new = current[key].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(new)


def interpolate(start: dict, end: dict, alpha: float) -> dict:
    """WiSE-FT (Wortsman et al. 2022): the weights (1 - alpha) * start + alpha * end, between the
    model as training found it (pretrained, its output layer from the probe) and as training left
    it; integer buffers come from `end`. Fine-tuning on 1600 clips forgets some of what AudioSet
    taught; part of the way back keeps the fine-tuned gains with less of the forgetting."""
    return {k: (torch.lerp(start[k].to(v.dtype), v, alpha) if v.dtype.is_floating_point else v.clone())
            for k, v in end.items()}


def average(states: list[dict]) -> dict:
    """A uniform model soup (Wortsman et al. 2022, "Model soups"): the mean of several runs' weights,
    every float tensor (BatchNorm statistics too), integer buffers from the first. Runs fine-tuned from
    the same start by different seeds (data order, augmentation) stay in one basin, so their mean is a
    model as fast as one of them that errs less (an ensemble's gain without its cost at inference)."""
    if not states:
        raise ValueError("average of no weights")
    first = states[0]
    for other in states[1:]:
        if other.keys() != first.keys() or any(other[k].shape != v.shape for k, v in first.items()):
            raise ValueError("the runs to average are not one architecture (their weights differ in names or shapes)")
    return {k: (torch.stack([s[k].to(v.dtype) for s in states]).mean(0) if v.dtype.is_floating_point else v.clone())
            for k, v in first.items()}
