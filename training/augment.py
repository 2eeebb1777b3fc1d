"""Batch augmentation from the config's train section: waveforms (time shift, speed, noise, EQ,
gain), images (mirror, shifted crop), both (mixup)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .schema import section


def _speed(x: torch.Tensor, max_change: float) -> torch.Tensor:
    """Each waveform played faster or slower by up to +-max_change (pitch moves with it, like
    another vocal tract or instrument size), then padded or cut back to its length."""
    n, rows = x.shape[1], []
    for row in x:
        m = max(2, int(round(n / (1 + (2 * torch.rand(1).item() - 1) * max_change))))
        row = F.interpolate(row[None, None], size=m, mode="linear", align_corners=False)[0, 0]
        rows.append(row[:n] if m >= n else F.pad(row, (0, n - m)))
    return torch.stack(rows)


def _noise(x: torch.Tensor, prob: float, snr_db=(5.0, 40.0)) -> torch.Tensor:
    """White noise at a random SNR on a `prob` share of the waveforms (microphones, rooms)."""
    pick = torch.rand(len(x), device=x.device) < prob
    snr = torch.empty(len(x), device=x.device).uniform_(*snr_db)
    power = x.pow(2).mean(1).clamp_min(1e-10)
    scale = (power / 10 ** (snr / 10)).sqrt() * pick
    return x + torch.randn_like(x) * scale[:, None]


def _eq(x: torch.Tensor, max_db: float, points: int = 6) -> torch.Tensor:
    """Each waveform through a random smooth EQ (another microphone, room or phone): a gain
    curve of `points` random levels in +-max_db, spaced evenly on a log-frequency axis from
    1/256 of the Nyquist frequency (16 Hz at 8 kHz) up to Nyquist and interpolated between
    them, applied in the frequency domain; the clip's peak level is kept."""
    n = x.shape[1]
    spec = torch.fft.rfft(x, dim=1)
    bins = spec.shape[1]
    pos = torch.log2(torch.arange(bins, device=x.device).clamp_min(1) / max(bins - 1, 1) * 2 ** 8).clamp(0, 8)
    pos = pos / 8 * (points - 1)  # 0..points-1: 1/256 of Nyquist (~16-100 Hz) .. Nyquist
    levels = (torch.rand(len(x), points, device=x.device) * 2 - 1) * max_db
    lo = pos.floor().long().clamp(max=points - 2)
    frac = pos - lo
    gain_db = levels[:, lo] * (1 - frac) + levels[:, lo + 1] * frac
    y = torch.fft.irfft(spec * 10 ** (gain_db / 20), n=n, dim=1)
    peak_in, peak_out = x.abs().amax(1, keepdim=True), y.abs().amax(1, keepdim=True).clamp_min(1e-8)
    return y * (peak_in / peak_out)


def _flip_crop(x: torch.Tensor, hflip: bool, pad: int) -> torch.Tensor:
    """With hflip, half the images mirrored left-right; with pad > 0, each shifted by up to
    `pad` pixels (reflection-padded random crop of the same size)."""
    if hflip:
        mirror = torch.rand(len(x), device=x.device) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
    if pad:
        h, w = x.shape[-2:]
        padded = F.pad(x, (pad,) * 4, mode="reflect")
        dy, dx = torch.randint(0, 2 * pad + 1, (2, len(x))).tolist()
        x = torch.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(zip(dy, dx))])
    return x


def batch_augment(cfg: dict, sample_rate: int | None = None):
    """Batch augmentation. Waveforms: train.time_shift (max seconds, circular), train.speed
    (max relative speed change), train.noise (share of clips given white noise at 5-40 dB SNR),
    train.eq (max dB of a random smooth EQ curve per clip), train.gain_db (a random gain within +-gain_db).
    Images: train.hflip (mirror half the images), train.crop_pad (random shift in pixels).
    Both: train.mixup (Beta alpha). Returns f(x, y) -> (x, y_a, y_b, lam) or None."""
    t = section(cfg, "train")
    shift_s, alpha, speed, noise = t.time_shift, t.mixup, t.speed, t.noise
    hflip, crop_pad, eq, gain_db = t.hflip, t.crop_pad, t.eq, t.gain_db
    wave = sample_rate is not None
    if not ((shift_s or speed or noise or eq or gain_db) and wave) and not alpha and not (hflip or crop_pad):
        return None
    beta = torch.distributions.Beta(alpha, alpha) if alpha else None

    def augment(x, y):
        if x.dim() == 4 and (hflip or crop_pad):
            x = _flip_crop(x, hflip, crop_pad)
        if wave and x.dim() == 2:
            if speed:
                x = _speed(x, speed)
            if eq:
                x = _eq(x, eq)
            if gain_db:  # another recording level
                x = x * 10 ** ((torch.rand(len(x), 1, device=x.device) * 2 - 1) * gain_db / 20)
            if shift_s:
                max_shift = int(shift_s * sample_rate)
                shifts = torch.randint(-max_shift, max_shift + 1, (len(x),)).tolist()
                x = torch.stack([torch.roll(row, s) for row, s in zip(x, shifts)])
            if noise:
                x = _noise(x, noise)
        if beta is None:
            return x, y, y, 1.0
        lam = float(beta.sample())
        perm = torch.randperm(len(x), device=x.device)
        return lam * x + (1 - lam) * x[perm], y, y[perm], lam

    return augment
