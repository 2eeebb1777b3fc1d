"""The recording chains a played phrase goes through: a room (reverb, EQ, noise, gain) for every
played set, and a phone-like chain (low rate, MP3, noise) for a share of the training clips."""
from __future__ import annotations

import numpy as np

PHONE_RATES = (8000, 11025, 12000, 16000)  # rates MP3 encodes at
MP3_LEVEL_MAX = 0.999  # libsndfile 1.2 refuses MP3 compression levels above about 0.9999


def room(y: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A random recording chain: reverb (an exponentially decaying noise impulse response,
    RT60 0.2-1.5 s), an EQ tilt, background noise (15-50 dB SNR) and a gain."""
    n = len(y)
    if rng.random() < 0.7:
        rt60 = rng.uniform(0.2, 1.5)
        t = np.arange(int(rt60 * sample_rate)) / sample_rate
        ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
        ir[0] = 1.0 / rng.uniform(0.15, 0.6)  # direct sound vs room
        y = np.fft.irfft(np.fft.rfft(y, 2 * n) * np.fft.rfft(ir / np.abs(ir).sum() * 4, 2 * n))[:n]
    if rng.random() < 0.6:
        freqs = np.fft.rfftfreq(n, 1 / sample_rate)
        tilt_db = rng.uniform(-6, 6) * np.log2(np.maximum(freqs, 50) / 1000) / 3  # dB per octave / 3
        y = np.fft.irfft(np.fft.rfft(y) * 10 ** (tilt_db / 20), n)
    if rng.random() < 0.6:
        power = np.mean(y ** 2) + 1e-12
        noise = rng.standard_normal(n)
        if rng.random() < 0.5:  # pink-ish: brown noise mixed in
            noise = noise + np.cumsum(rng.standard_normal(n)) * 0.02
            noise -= noise.mean()
        y = y + noise * np.sqrt(power / 10 ** (rng.uniform(15, 50) / 10) / (np.mean(noise ** 2) + 1e-12))
    peak = np.abs(y).max()
    return (y / peak * rng.uniform(0.2, 0.95) if peak > 0 else y).astype(np.float32)


def phone(y: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A random phone-like chain, for training: resampled to a phone's rate (8-16 kHz, so band-
    limited to 4-8 kHz), MP3-compressed at a random bit rate, back to `sample_rate`, with noise at
    25-45 dB SNR. Same length (the codec's start delay, a few ms, shifts the sound)."""
    import io

    import soundfile as sf
    from models.audio_loading import resample
    rate = int(rng.choice([r for r in PHONE_RATES if r <= sample_rate] or [sample_rate]))
    low = resample(np.asarray(y, np.float32), sample_rate, rate)
    buffer = io.BytesIO()
    sf.write(buffer, low, rate, format="MP3", bitrate_mode="CONSTANT", compression_level=min(float(rng.uniform(0.3, 1.0)), MP3_LEVEL_MAX))
    buffer.seek(0)
    back = resample(sf.read(buffer, dtype="float32")[0], rate, sample_rate)[:len(y)]
    back = np.pad(back, (0, len(y) - len(back)))
    noise = rng.standard_normal(len(back)).astype(np.float32)
    snr = 10 ** (rng.uniform(25, 45) / 10)
    return (back + noise * np.sqrt((np.mean(back ** 2) + 1e-12) / snr / np.mean(noise ** 2))).astype(np.float32)
