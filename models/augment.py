"""Training-time input variation shared by the audio architectures (models.architectures,
models.efficientat): SpecAugment masks and the pick of one cached view per item."""
from __future__ import annotations

import torch
from torch import nn


def pick_view(x: torch.Tensor, training: bool) -> torch.Tensor:
    """(B, V, ...) cached versions of each training item -> (B, ...): a random version per item in
    training, the first (the item as it is) in evaluation."""
    pick = (torch.randint(0, x.shape[1], (len(x),), device=x.device) if training
            else torch.zeros(len(x), dtype=torch.long, device=x.device))
    return x[torch.arange(len(x), device=x.device), pick]


class SpecAugment(nn.Module):
    """Frequency and time masking of the log-mel (Park et al. 2019); active in training only."""

    def __init__(self, freq_mask: int = 0, time_mask: int = 0, masks: int = 2):
        super().__init__()
        self.freq_mask, self.time_mask, self.masks = freq_mask, time_mask, masks

    def forward(self, x):
        if not self.training or self.masks == 0:
            return x
        import torchaudio
        # one mask per clip, shared by its channels (a multi-resolution input's channels are
        # views of the same sound: a band hidden in one must be hidden in all)
        keep = torch.ones_like(x[:, :1])
        for _ in range(self.masks):
            if self.freq_mask:
                keep = torchaudio.transforms.FrequencyMasking(self.freq_mask, iid_masks=True)(keep)
            if self.time_mask:
                keep = torchaudio.transforms.TimeMasking(self.time_mask, iid_masks=True)(keep)
        return x * keep
