"""EfficientAT's mn04 (Schmid, Koutini, Widmer, ICASSP 2023; MIT): an AudioSet-pretrained
MobileNetV3 at width 0.4 on 128-band log-mels, and its front end, in our own code.

torchvision's MobileNetV3 building blocks with three changes that the pretrained state dict
needs (see the base's README): one input channel, squeeze-excitation through Linear layers
with a sigmoid gate (`block.2.conc_se_layers.0.fc1/fc2`), BatchNorm eps 1e-3. The state dict
loads strictly; `tests/test_efficientat.py` checks the reference outputs of the original.

The model (`AudioMN`) takes a waveform at 32 kHz. Its `trunk` (front end + the first
`trunk_blocks` feature blocks) can be frozen and its outputs cached (training.frozen); the
model then also accepts those cached maps (4-D, or 5-D with several augmented views) and runs
only the rest: a waveform is always 2-D, so the input says which path it takes.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .augment import SpecAugment, pick_view

# The front end the weights were trained with (EfficientAT's AugmentMelSTFT, eval mode).
SAMPLE_RATE = 32000
N_FFT = 1024
WIN_LENGTH = 800
HOP_LENGTH = 320
N_MELS = 128
F_MIN, F_MAX = 0.0, 15000.0
PREEMPHASIS = 0.97
LOG_OFFSET = 1e-5
NORM_SHIFT, NORM_SCALE = 4.5, 5.0  # (log mel + 4.5) / 5
WIDTH = 0.4
AUDIOSET_CLASSES = 527
EMBED_DIM = 384      # features.16 output channels: the pooled embedding
HIDDEN = 512         # classifier.2 width
BN_EPS, BN_MOMENTUM = 0.001, 0.01

# What the app's AudioSpec says of this front end (stored in checkpoints as preprocessing).
SPEC = {"frontend": "efficientat", "sample_rate": SAMPLE_RATE, "n_mels": N_MELS, "n_fft": N_FFT,
        "win_length": WIN_LENGTH, "hop_length": HOP_LENGTH, "f_min": F_MIN, "f_max": F_MAX, "top_db": None,
        "log": "ln", "mel_scale": "htk"}


class EfficientATMel(nn.Module):
    """(B, samples) at 32 kHz -> (B, 1, 128, frames): pre-emphasis, STFT (1024, Hann 800,
    hop 320), power, Kaldi mel banks 0-15 kHz, log(mel + 1e-5), (x + 4.5) / 5.
    `mel` and `compress` split it for the app (spectrogram plot, re-synthesis)."""

    def __init__(self, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT,
                 win_length: int = WIN_LENGTH, hop_length: int = HOP_LENGTH, f_min: float = F_MIN,
                 f_max: float = F_MAX):
        super().__init__()
        from torchaudio.compliance.kaldi import get_mel_banks
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        banks, _ = get_mel_banks(n_mels, n_fft, float(sample_rate), f_min, f_max, vtln_low=100.0, vtln_high=-500.0,
                                 vtln_warp_factor=1.0)
        self.register_buffer("banks", F.pad(banks, (0, 1)), persistent=False)          # (mels, n_fft/2 + 1)
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-PREEMPHASIS, 1.0]]]), persistent=False)

    @property
    def filterbank(self) -> torch.Tensor:
        """(n_freqs, n_mels): how STFT bins feed mel bands (for re-synthesis)."""
        return self.banks.T

    @property
    def channels(self) -> int:
        return 1

    def mel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, mels, frames) mel power."""
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        x = F.conv1d(wave.unsqueeze(1), self.preemphasis).squeeze(1)
        spec = torch.stft(x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length, window=self.window,
                          center=True, normalized=False, return_complex=True)
        return torch.matmul(self.banks, spec.real.pow(2) + spec.imag.pow(2))

    def compress(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.log(mel + LOG_OFFSET)

    def db(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, 1, mels, frames): the log mel, before normalisation."""
        return self.compress(self.mel(wave)).unsqueeze(1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return (self.db(wave) + NORM_SHIFT) / NORM_SCALE


class SqueezeExcite(nn.Module):
    """EfficientAT's squeeze-excitation: mean over (freq, time), Linear-ReLU-Linear, sigmoid gate."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x):
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * w[:, :, None, None]


class ConcurrentSE(nn.Module):
    """The container the state dict names (`conc_se_layers.0`): one SE over the channels."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcite(channels, squeeze)])

    def forward(self, x):
        return self.conc_se_layers[0](x)


def mn_features(width: float = WIDTH) -> nn.Sequential:
    """features.0-16 of MobileNetV3-Large at `width`, one input channel."""
    from torchvision.models.mobilenetv3 import InvertedResidual, _mobilenet_v3_conf
    from torchvision.ops.misc import Conv2dNormActivation
    setting, _ = _mobilenet_v3_conf("mobilenet_v3_large", width_mult=width)
    norm = partial(nn.BatchNorm2d, eps=BN_EPS, momentum=BN_MOMENTUM)
    first = setting[0].input_channels
    layers = [Conv2dNormActivation(1, first, kernel_size=3, stride=2, norm_layer=norm, activation_layer=nn.Hardswish)]
    layers += [InvertedResidual(cnf, norm, ConcurrentSE) for cnf in setting]
    last_in = setting[-1].out_channels
    layers.append(Conv2dNormActivation(last_in, 6 * last_in, kernel_size=1, norm_layer=norm,
                                       activation_layer=nn.Hardswish))
    return nn.Sequential(*layers)


class AudioMN(nn.Module):
    """waveform (B, samples) at 32 kHz -> logits. `classifier` is EfficientAT's (pool, 384 -> 512,
    Hardswish, dropout, -> num_classes). Given a cached trunk output (B, C, F, T), or (B, V, C,
    F, T) with V augmented views of each clip (training picks one at random per clip, evaluation
    the first), it runs only the blocks after the trunk."""

    def __init__(self, num_classes: int = AUDIOSET_CLASSES, dropout: float = 0.2, trunk_blocks: int = 0,
                 spec_augment: dict | None = None, map_augment: dict | None = None):
        super().__init__()
        self.frontend = EfficientATMel()
        self.augment = SpecAugment(**(spec_augment or {}))
        # on cached trunk outputs (training only): masks of up to freq_mask rows and time_mask steps
        # of the map, and a circular time shift, new at every step (the cached views are fixed)
        self.map_augment = SpecAugment(**{k: v for k, v in (map_augment or {}).items() if k != "roll"})
        self.map_roll = bool((map_augment or {}).get("roll"))
        self.features = mn_features()
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(EMBED_DIM, HIDDEN),
                                        nn.Hardswish(), nn.Dropout(dropout), nn.Linear(HIDDEN, num_classes))
        if not 0 <= trunk_blocks < len(self.features):
            raise ValueError(f"model.trunk_blocks is {trunk_blocks}; expected 0 to {len(self.features) - 1}")
        self.trunk_blocks = int(trunk_blocks)
        self.new_layers = ("classifier.5",)  # not pretrained when the classes are not AudioSet's

    def trunk(self, wave: torch.Tensor, augment=None) -> torch.Tensor:
        """Front end and the first `trunk_blocks` blocks; `augment(mel_input)` may alter the model input."""
        x = self.frontend(wave)
        if augment is not None:
            x = augment(x)
        return self.features[: self.trunk_blocks](x)

    def tail(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features[self.trunk_blocks:](x))

    def embedding(self, wave: torch.Tensor) -> torch.Tensor:
        """The pooled 384-d features (the classifier's input)."""
        return self.features(self.frontend(wave)).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # waveforms
            return self.classifier(self.features(self.augment(self.frontend(x))))
        if x.dim() == 5:  # cached trunk outputs, several views per clip
            x = pick_view(x, self.training)
        x = x.float()
        if self.training:
            if self.map_roll:
                shifts = torch.randint(0, x.shape[-1], (len(x),)).tolist()
                x = torch.stack([torch.roll(row, s, -1) for row, s in zip(x, shifts)])
            x = self.map_augment(x)
        return self.tail(x)
