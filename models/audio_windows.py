"""The length policy: what of a recording a model sees. Silence detection and trimming, peak
normalisation, a fixed-length clip (fix_length), and the windows a long recording is cut into."""
from __future__ import annotations

import numpy as np

from .audio_spec import AudioSpec

# Peak below -60 dBFS: nothing a microphone would call a sound.
SILENCE_PEAK = 1e-3
# A recording up to this much longer than whole windows is whole windows: a 5.00 s file decoded
# at another rate and resampled can come out a sample or two long.
WINDOW_SLACK_SECONDS = 0.01


def is_silent(y: np.ndarray, peak: float = SILENCE_PEAK) -> bool:
    """True when nothing in `y` rises above -60 dBFS (all zeros, muted microphone...)."""
    return len(y) == 0 or float(np.max(np.abs(y))) < peak


def trim_silence(y: np.ndarray, trim_db: float | None) -> np.ndarray:
    """Cut leading and trailing audio quieter than the peak minus trim_db (a spoken digit in
    a longer recording -> the word); a silent or all-quiet clip is returned as it is."""
    if not trim_db or len(y) == 0 or is_silent(y):
        return y
    import librosa
    trimmed, _ = librosa.effects.trim(y, top_db=trim_db, frame_length=512, hop_length=128)
    return trimmed if len(trimmed) else y


def prepare(y: np.ndarray, spec: AudioSpec) -> np.ndarray:
    """What a model's spec asks for before its window: the word cut out of its silence
    (trim_db) and scaled to peak 1 (peak_normalize); the same in training and in the app."""
    y = trim_silence(y, spec.trim_db)
    if spec.peak_normalize and not is_silent(y):
        y = (y / np.max(np.abs(y))).astype(np.float32)
    return y


def fix_length(y: np.ndarray, n: int) -> np.ndarray:
    """Exactly n samples: zero-pad at the end (time 0 stays the recording's start, so the
    spectrogram's seconds axis is right) or keep the centre (where a clip's event usually is)."""
    if len(y) >= n:
        start = (len(y) - n) // 2
        return y[start: start + n]
    return np.pad(y, (0, n - len(y)))


def window_starts(length: int, n: int, hop: int, slack: int = 0) -> np.ndarray:
    """Start sample of each window of n samples over a recording of `length` samples:
    every `hop` samples while whole windows fit; then the rest after the last whole window
    - up to `slack` samples (rounding): dropped;
    - enough for at least half a window of recording: a window of its own, zero-padded;
    - less: no window of its own (mostly padding, it would drag the average towards silence);
      the last window is moved to end with the recording instead (starts at length - n), so the
      rest is analysed and nothing is padded. Without overlap that leaves the stretch just before
      the moved window unseen (less than half a window: 10-12 s of a 12 s recording in 5 s windows
      is seen, 5-7 s is not).
    A recording no longer than n is one window, zero-padded; one that makes a single window with a
    rest (under half a window, or within the slack) is cut at its centre: the clip training cut
    from it (fix_length), so a test file (a 5.02 s ESC-50 clip) is scored on what it was evaluated on."""
    starts = np.arange(1 + max(0, length - n) // hop) * hop  # the whole windows
    rest = length - (int(starts[-1]) + n)
    if rest > slack and length - len(starts) * hop >= n / 2:
        return np.append(starts, len(starts) * hop)
    if len(starts) == 1:
        starts[0] = max(0, length - n) // 2  # as fix_length
    elif rest > slack:
        starts[-1] = length - n
    return starts


def windows(y: np.ndarray, n: int, hop: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a recording into windows of n samples (see window_starts) -> (array (W, n),
    start of each window in seconds)."""
    starts = window_starts(len(y), n, hop, int(WINDOW_SLACK_SECONDS * sample_rate))
    padded = np.pad(y, (0, max(0, int(starts[-1]) + n - len(y))))
    return np.stack([padded[s: s + n] for s in starts]), starts / sample_rate
