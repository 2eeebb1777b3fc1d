"""The audio pointing game: does a sound model's CAM point at the time the sound happens?

Each ESC-50 test clip's event (its loudest second) is cut out and placed at a random time in
10 s of quiet background (pink-ish noise 20 dB below the event's RMS); the scene is analysed as
the app analyses a long recording (5 s windows with a 2.5 s hop, each window's CAM weighted by
its probability of the class and the overlaps averaged). A hit when the CAM's time profile
(its sum over mel bands) peaks inside the event. The random baseline points at a uniformly
random time (expected 1 s / 10 s = 10%).
"""
from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

SCENE_SECONDS = 10.0
EVENT_SECONDS = 1.0
BACKGROUND_DB = -20.0
HOP_SECONDS = 2.5


def loudest_segment(y: np.ndarray, n: int, step: int) -> int:
    """Start (samples) of the n-sample stretch of y with the most energy."""
    if len(y) <= n:
        return 0
    energy = np.cumsum(np.concatenate([[0.0], y.astype(np.float64) ** 2]))
    starts = np.arange(0, len(y) - n + 1, step)
    return int(starts[np.argmax(energy[starts + n] - energy[starts])])


def background(n: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with a 1/f-like tilt (a room, distant traffic) at the given RMS."""
    white = rng.normal(0, 1, n)
    spec = np.fft.rfft(white)
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1.0))
    noise = np.fft.irfft(spec, n)
    return (noise / max(noise.std(), 1e-12) * rms).astype(np.float32)


def make_scene(clip: np.ndarray, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(10 s scene, event start in seconds)."""
    n_event = int(EVENT_SECONDS * sample_rate)
    start = loudest_segment(clip, n_event, max(1, sample_rate // 100))
    event = clip[start: start + n_event]
    ramp = np.minimum(1.0, np.minimum(np.arange(len(event)), np.arange(len(event))[::-1]) / (0.01 * sample_rate))
    event = event * ramp  # 10 ms fades: no click at the cut that would mark the place by itself
    rms = float(np.sqrt(np.mean(event ** 2))) or 1e-4
    n_scene = int(SCENE_SECONDS * sample_rate)
    scene = background(n_scene, rms * 10 ** (BACKGROUND_DB / 20), rng)
    at = int(rng.integers(0, n_scene - len(event) + 1))
    scene[at: at + len(event)] += event.astype(np.float32)
    return scene, at / sample_rate


def time_profile_peak(heatmap: np.ndarray, times: np.ndarray) -> float:
    return float(times[int(np.argmax(heatmap.sum(0)))])


def play(predictor, clips: list[np.ndarray], targets: list[int], method: str, seed: int = 0) -> dict:
    """Hit rates of the CAM's peak time and of a random time over scenes made from `clips`."""
    rng = np.random.default_rng(seed)
    rate = predictor.spec.sample_rate
    hits = random_hits = 0
    for clip, target in tqdm(list(zip(clips, targets)), desc=f"pointing game {method}", disable=not sys.stderr.isatty()):
        scene, at = make_scene(clip, rate, rng)
        a = predictor.analyze(scene, method=method, target=int(target), hop_seconds=HOP_SECONDS)
        t = time_profile_peak(a.heatmap, a.times)
        hits += at <= t <= at + EVENT_SECONDS
        guess = rng.uniform(0, SCENE_SECONDS)
        random_hits += at <= guess <= at + EVENT_SECONDS
    n = max(len(clips), 1)
    return {"pointing_game": hits / n, "pointing_game_random_baseline": random_hits / n,
            "pointing_game_clips": len(clips), "pointing_game_method": method}
