"""Bowed strings by a source-filter model (a Helmholtz-motion wave through a random violin or
cello body), for violin and cello phrases in timbres no soundfont or recording of the training
set has, so that the modelled guitars of training/pluck.py are not the only modelled sounds
(a model that heard modelled guitars only learns "modelled = guitar").

The source: a bowed string moves in Helmholtz motion, and the force on the bridge is close to a
sawtooth; its n-th harmonic falls as 1/n, with notches near multiples of 1/beta for bowing at
beta of the string's length (Schelleng; Cremer, "The physics of the violin"), and a brightness
that grows with bow pressure. It is read from a one-period wavetable along the note's phase
(vibrato after the onset, a little period jitter), with bow noise, an attack that builds up over
30-200 ms with more noise (the scratch before the Helmholtz motion locks in) and slow changes of
bow pressure. The body: an air mode (A0; violin ~275 Hz, cello ~100 Hz), a "bridge hill" (violin
~2.5 kHz, cello ~1.2 kHz) and a dozen random plate resonances between them.
"""
from __future__ import annotations

import numpy as np

from . import pluck

BODIES = {  # air mode A0 (Hz), bridge hill (Hz), plate resonances between (Hz)
    "violin": {"air": 275.0, "hill": 2500.0, "plates": (400.0, 5000.0)},
    "cello": {"air": 100.0, "hill": 1200.0, "plates": (150.0, 2500.0)},
}
TABLE = 4096  # samples in the one-period wavetable
body = pluck.body  # the body model is the guitar's, with a violin's or a cello's resonances


def instrument(kind: str, rng: np.random.Generator) -> dict:
    """The parameters of one random violin or cello and its player (one per phrase)."""
    b = BODIES[kind]
    lo, hi = np.log(b["plates"][0]), np.log(b["plates"][1])
    return {"beta": rng.uniform(0.05, 0.2),            # bow position, fraction of the string from the bridge
            "rolloff": rng.uniform(0.8, 1.5),          # harmonics fall as n^-rolloff (1: an ideal sawtooth)
            "noise": rng.uniform(0.003, 0.03),         # bow noise against the tone
            "jitter": rng.uniform(0.0005, 0.004),      # period jitter (fraction)
            "attack": rng.uniform(0.03, 0.2),          # seconds until the Helmholtz motion settles
            "vibrato": (rng.uniform(4.5, 7.0), rng.uniform(0.0, 35.0) if rng.random() < 0.85 else 0.0,
                        rng.uniform(0.1, 0.5)),        # rate (Hz), depth (cents), onset delay (s)
            "body": [(b["air"] * rng.uniform(0.85, 1.15), rng.uniform(8, 25), rng.uniform(0.5, 1.5)),
                     (b["hill"] * rng.uniform(0.8, 1.3), rng.uniform(1.0, 3.0), rng.uniform(0.5, 2.5))]
                    + [(float(np.exp(rng.uniform(lo, hi))), rng.uniform(8, 40), rng.uniform(0.2, 1.2))
                       for _ in range(int(rng.integers(8, 16)))],
            "direct": rng.uniform(0.1, 0.5)}


def _smooth_noise(n: int, rate_hz: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Noise of unit spread varying at about `rate_hz`, n samples (linear between random points)."""
    points = max(int(n / sample_rate * rate_hz) + 2, 2)
    return np.interp(np.linspace(0, points - 1, n), np.arange(points), rng.standard_normal(points))


def string(pitch: float, seconds: float, sample_rate: int, params: dict, rng: np.random.Generator) -> np.ndarray:
    """One bowed note at MIDI `pitch` lasting `seconds` (float32, peak 1), without a body."""
    n = int(seconds * sample_rate)
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    t = np.arange(n) / sample_rate
    rate, depth, delay = params["vibrato"]
    cents = depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)) * np.clip((t - delay) / 0.3, 0, 1)
    freq = f0 * 2 ** (cents / 1200) * (1 + params["jitter"] * _smooth_noise(n, 200.0, sample_rate, rng))
    phase = np.cumsum(freq) / sample_rate  # in periods
    # the wavetable: harmonics below the Nyquist frequency at the highest vibrato pitch
    top = int((sample_rate / 2) / (f0 * 2 ** (max(depth, 1) / 1200) * 1.01))
    k = np.arange(1, max(top, 1) + 1)
    amp = k ** -params["rolloff"] * (0.15 + np.abs(np.sin(np.pi * k * params["beta"])))
    spectrum = np.zeros(TABLE // 2 + 1, complex)
    spectrum[k[k < TABLE // 2]] = amp[k < TABLE // 2] * np.exp(1j * rng.uniform(-0.3, 0.3, (k < TABLE // 2).sum()))
    table = np.fft.irfft(spectrum, TABLE)
    table /= np.sqrt(np.mean(table ** 2))  # unit rms: the noise levels are against the tone's rms
    pos = (phase % 1.0) * TABLE
    i0 = pos.astype(int)
    frac = pos - i0
    tone = table[i0] * (1 - frac) + table[(i0 + 1) % TABLE] * frac
    # attack: the tone builds up while the bow scratches; then bow noise and slow pressure changes
    attack = params["attack"]
    rise = np.clip(t / attack, 0, 1) ** 1.5
    noise = rng.standard_normal(n)
    noise = np.diff(noise, prepend=0.0) / np.sqrt(2)  # bow noise is bright; unit spread
    noise_level = params["noise"] + 0.15 * np.exp(-t / max(attack, 1e-3)) * (t < 3 * attack)
    pressure = 10 ** (_smooth_noise(n, 1.5, sample_rate, rng) * 1.5 / 20)  # +-1.5 dB
    y = (tone * rise + noise * noise_level) * pressure
    peak = np.abs(y).max()
    return (y / peak if peak > 0 else y).astype(np.float32)


def bank(pitches, seconds: float, sample_rate: int, params: dict, rng: np.random.Generator) -> list:
    """[(pitch, waveform)] of one violin or cello (through its body, pluck.body): a bank for
    training.sampler.play."""
    return pluck.bank(pitches, seconds, sample_rate, params, rng, note=string)
