"""The log-mel front end a model eats: LogMel (an nn.Module stored inside the model, so training
and the app compute the same features) and the spectrogram's axes for plotting."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .audio_spec import AudioSpec


class LogMel(nn.Module):
    """(B, samples) -> (B, C, n_mels, frames): power mel spectrogram in dB, normalised by a
    fixed mean/std. Stored inside the model so training and the app compute the same features;
    mean/std are buffers, so a checkpoint carries the training statistics. C is 1, or 1 +
    len(extra_n_ffts): the same mel grid and hop from STFTs of other window lengths, each
    channel with its own statistics. `mel` (channel 0) is what the app shows and re-synthesises."""

    def __init__(self, sample_rate: int, n_fft: int = 400, hop_length: int = 160, n_mels: int = 64,
                 f_min: float = 0.0, f_max: float | None = None, top_db: float | None = 80.0,
                 mean: float = 0.0, std: float = 1.0, extra_n_ffts=(), mel_scale: str = "htk", log: str = "db"):
        super().__init__()
        import torchaudio

        def mel(k):  # a window of k samples; a shorter one than n_fft is zero-padded to n_fft
            return torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=max(k, n_fft), win_length=k, hop_length=hop_length, n_mels=n_mels,
                f_min=f_min, f_max=f_max, power=2.0, mel_scale=mel_scale, norm="slaney" if mel_scale == "slaney" else None)
        self.mel = mel(n_fft)
        self.extra = nn.ModuleList([mel(int(k)) for k in extra_n_ffts])
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=top_db)
        self.log = log
        shape = () if not self.extra else (self.channels, 1, 1)
        self.register_buffer("mean", torch.full(shape, float(mean)))
        self.register_buffer("std", torch.full(shape, float(std)))

    @property
    def channels(self) -> int:
        return 1 + len(self.extra)

    @property
    def filterbank(self) -> torch.Tensor:
        """(n_freqs, n_mels): how STFT bins feed mel bands (for re-synthesis)."""
        return self.mel.mel_scale.fb

    @classmethod
    def from_spec(cls, spec: AudioSpec, mean: float = 0.0, std: float = 1.0) -> "LogMel":
        return cls(spec.sample_rate, spec.n_fft, spec.hop_length, spec.n_mels, spec.f_min, spec.f_max,
                   spec.top_db, mean, std, spec.extra_n_ffts, spec.mel_scale, spec.log)

    def set_stats(self, mean, std) -> None:
        """Normalisation from training statistics (dB mean and std over the training set): a
        number, or one per channel."""
        for buf, value in ((self.mean, mean), (self.std, std)):
            v = torch.as_tensor(value, dtype=torch.float32).reshape(-1, 1, 1)
            buf.copy_(torch.broadcast_to(v if self.extra else v.reshape(()), buf.shape))
        self.std.clamp_(min=1e-6)

    def compress(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel power (B, 1, mels, frames) -> its log: dB, or log10(1 + 10000 power)."""
        if self.log == "log10p":
            return torch.log10(1.0 + 10000.0 * mel)
        return self.to_db(mel)

    def db(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, C, mels, frames) log mel power (dB unless log="log10p"), before normalisation."""
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        # each channel (B, 1, mels, frames) before AmplitudeToDB: on a larger input its top_db
        # clamp is taken against the max of all of it, so a clip's features would depend on its
        # batch (or on its other channels).
        return torch.cat([self.compress(m(wave).unsqueeze(1)) for m in (self.mel, *self.extra)], 1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return (self.db(wave) - self.mean) / self.std


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def spectrogram_axes(spec: AudioSpec, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(time in seconds of each frame's centre, centre frequency in Hz of each mel band),
    for plotting a LogMel output with real axes."""
    times = np.arange(frames) * spec.hop_length / spec.sample_rate
    f_max = spec.f_max if spec.f_max is not None else spec.sample_rate / 2
    if spec.mel_scale == "slaney":
        import librosa
        return times, librosa.mel_frequencies(spec.n_mels + 2, fmin=spec.f_min, fmax=f_max, htk=False)[1:-1]
    mels = np.linspace(_hz_to_mel(spec.f_min), _hz_to_mel(f_max), spec.n_mels + 2)
    return times, _mel_to_hz(mels[1:-1])
