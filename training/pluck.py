"""Plucked strings by physical modelling (an extended Karplus-Strong string and a guitar body),
for guitar phrases in timbres no soundfont or recording of the training set has.

The training soundfonts share their guitar samples (one steel and one nylon timbre) and the
training recordings hold one classical guitar, so the guitar class saw few timbres; each phrase
here gets its own instrument: string brightness and sustain, pick position and hardness, and body
resonances are drawn at random (nylon-like to steel-like), then the phrase of
training/instruments.py is played on it through training/sampler.py.

The string: a delay line of one period with a two-tap loss filter (brightness) and a first-order
allpass for the fractional part of the period (Jaffe and Smith 1983), its initial shape a
triangle peaking at the pick position plus some noise, low-passed by the pick's softness.
The body: the string's output plus a few resonances (air ~100 Hz, top plate ~200 Hz, ...).
"""
from __future__ import annotations

import numpy as np

OVERSAMPLE = 3  # the string runs at 3x the output rate, so that high notes stay in tune


def guitar(rng: np.random.Generator) -> dict:
    """The parameters of one random guitar (one per phrase)."""
    return {"brightness": rng.uniform(0.05, 0.45),   # weight of the loss filter's second tap (0.5: darkest)
            "sustain": rng.uniform(1.5, 7.0),        # T60 in seconds at 110 Hz; shorter for higher notes
            "pick": rng.uniform(0.06, 0.3),          # pick position, fraction of the string from the bridge
            "cutoff": float(np.exp(rng.uniform(np.log(800), np.log(8000)))),  # Hz: a soft to a hard pick
            "noise": rng.uniform(0.0, 0.3),          # noise in the excitation, against the triangle's peak 1
            "body": [(f * rng.uniform(0.8, 1.25), rng.uniform(8, 30), rng.uniform(0.3, 1.5))
                     for f in (100.0, 200.0, 400.0, 800.0)[: int(rng.integers(2, 5))]],
            "direct": rng.uniform(0.3, 1.0)}


def string(pitch: float, seconds: float, sample_rate: int, params: dict, rng: np.random.Generator) -> np.ndarray:
    """One plucked note at MIDI `pitch` lasting `seconds` (float32, peak 1), without a body."""
    from scipy.signal import lfilter, resample_poly
    rate = sample_rate * OVERSAMPLE
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    period = rate / f0
    s1 = params["brightness"]
    whole = int(np.floor(period - s1 - 0.1))   # the loss filter delays by s1 samples; the allpass takes the rest
    frac = period - s1 - whole                 # in (0.1, 1.1): allpass coefficient stays stable and flat
    c = (1 - frac) / (1 + frac)
    t60 = params["sustain"] * (f0 / 110.0) ** -0.5
    g = 10 ** (-3.0 / (f0 * t60))              # loop gain per period
    # the string's initial shape: a triangle peaking at the pick position (harmonics falling as
    # 1/n^2, none at multiples of 1/pick), some noise (the pick's scrape), low-passed by the
    # pick's softness
    n_exc = max(int(round(period)), 2)
    pos = np.arange(n_exc) / n_exc
    exc = np.where(pos < params["pick"], pos / params["pick"], (1 - pos) / (1 - params["pick"]))
    exc = exc + params["noise"] * rng.standard_normal(n_exc)
    h = 1 - np.exp(-2 * np.pi * params["cutoff"] / rate)
    exc = lfilter([h], [1, h - 1], exc - exc.mean())
    n = int(seconds * rate) + 1
    x = np.zeros(n + whole)
    x[: n_exc] = exc
    # y[t] = x[t] + g * (loss filter, allpass)(y[t - whole]): the feedback reaches back at least
    # `whole` samples, so each block of `whole` samples follows from the ones before (one lfilter
    # call per block, its state carried over)
    b_loop, a_loop = g * np.convolve([1 - s1, s1], [c, 1.0]), np.array([1.0, c])
    y, state = np.zeros(n + whole), np.zeros(2)
    y[:whole] = x[:whole]
    for start in range(whole, n, whole):
        fed, state = lfilter(b_loop, a_loop, y[start - whole: start], zi=state)
        y[start: start + whole] = x[start: start + whole] + fed[: len(y[start: start + whole])]
    y = y[:n]
    y = resample_poly(y, 1, OVERSAMPLE)[: int(seconds * sample_rate)]
    peak = np.abs(y).max()
    return (y / peak if peak > 0 else y).astype(np.float32)


def body(y: np.ndarray, sample_rate: int, params: dict) -> np.ndarray:
    """The string's sound through the instrument's body: direct sound plus resonances (peak
    filters; params["body"]: (frequency, Q, gain) each, params["direct"]: the direct sound)."""
    from scipy.signal import iirpeak, lfilter
    out = params["direct"] * y.astype(np.float64)
    for freq, q, gain in params["body"]:
        if freq < sample_rate / 2 * 0.9:
            b, a = iirpeak(freq, q, fs=sample_rate)
            out += gain * lfilter(b, a, y)
    peak = np.abs(out).max()
    return (out / peak if peak > 0 else out).astype(np.float32)


def bank(pitches, seconds: float, sample_rate: int, params: dict, rng: np.random.Generator, note=None) -> list:
    """[(pitch, waveform)] of one instrument, one note per pitch: a bank for training.sampler.play.
    `note`: the string model (default: this plucked string; training/bow.py passes its bowed one)."""
    note = note or string
    return [(int(p), body(note(p, seconds, sample_rate, params, rng), sample_rate, params))
            for p in sorted(set(int(p) for p in pitches))]
