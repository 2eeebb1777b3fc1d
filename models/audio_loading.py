"""Audio loading: safe decoding of whatever a user uploads or records (the length policy is
models.audio_windows, the log-mel features models.logmel).

Every odd input (an empty file, a text file called .wav, a truncated file, 6 channels,
192 kHz, NaN samples, an int16 array from a microphone) ends as a float32 mono waveform at
the model's sample rate or an InputError with a one-line message.

Choices, in one place:
- Non-finite samples (NaN/inf, seen from broken encoders and float WAVs) are replaced by 0
  and decoding goes on: a few bad samples should not cost a prediction, and a recording
  that was all NaN becomes silence, which `is_silent` reports.
- Silence is returned, not refused: the UI warns (with `is_silent`) and still shows the
  flat spectrogram, which explains the prediction better than an error would.
- A truncated file gives what could be decoded before the damage; a message only when
  nothing could.
- Anything shorter than MIN_AUDIO_SECONDS is zero-padded to it, so the STFT always has a
  full frame to work on.
- What the user should know about what was analysed (a file that held far less audio than its
  size, clipping, floats scaled down to full scale) is said in `load_audio_report`'s notes;
  the decoder's own words for a file it cannot read go to the server log, the user gets ours.
"""
from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio_windows import fix_length
from .errors import InputError, check_upload
from .limits import LIMITS

# Uploads longer than this are refused before decoding (10 minutes; a model sees 1-5 s).
MAX_AUDIO_SECONDS = int(LIMITS.audio_seconds)
# 10 minutes of 48 kHz 24-bit stereo WAV is 173 MB.
MAX_FILE_BYTES = LIMITS.bytes(LIMITS.audio_upload_mb)
MIN_AUDIO_SECONDS = LIMITS.audio_min_seconds
# Sample rates outside this range are a broken header, not a recording.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000
# Decoded in small blocks, each mixed to mono at once: a 10-minute 6-channel 192 kHz file
# never holds all its channels in memory, and when a truncated file fails mid-read only the
# failing block is lost (libsndfile returns nothing of a read that fails).
DECODE_BLOCK_FRAMES = 4096
# Formats libsndfile reads itself (MP3 since libsndfile 1.1).
SOUNDFILE_SUFFIXES = {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64"}
# Containers only ffmpeg (through audioread, which librosa uses) decodes.
FFMPEG_SUFFIXES = {".m4a", ".mp4", ".aac", ".webm", ".wma", ".mka"}
READABLE = "WAV, FLAC, OGG or MP3 (M4A and WebM need ffmpeg)"
# Bytes one sample takes in the file, by libsndfile subtype, to tell a file that held far less
# audio than its size; other (compressed) encodings take at most DEFAULT_SAMPLE_BYTES.
SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
DEFAULT_SAMPLE_BYTES = 4
# A file over SHORT_READ_RATIO times the size of the audio decoded from it (and more than
# SHORT_READ_SLACK bytes over: headers, tags, cover art) held mostly something else.
SHORT_READ_RATIO, SHORT_READ_SLACK = 2, 64 * 1024
# At or above CLIP_LEVEL is full scale (8-bit PCM tops out at 127/128); a recording with more than
# CLIPPED_FRACTION of its samples there was clipped (a loud, normalised recording has a few peaks).
CLIP_LEVEL, CLIPPED_FRACTION = 0.99, 0.01

log = logging.getLogger(__name__)


def _to_float(a: np.ndarray, name: str) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1); floats as they are; non-finite -> 0."""
    if a.dtype.kind == "i":
        a = a.astype(np.float32) / float(2 ** (8 * a.dtype.itemsize - 1))
    elif a.dtype.kind == "u":  # 8-bit WAV is unsigned, centred on 128
        half = float(2 ** (8 * a.dtype.itemsize - 1))
        a = (a.astype(np.float32) - half) / half
    elif a.dtype.kind == "f":
        a = a.astype(np.float32, copy=False)
    else:
        raise InputError(f"{name} has samples of type {a.dtype}; expected integers or floats.")
    if not np.isfinite(a).all():
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    return a


FAR_BEYOND_FULL_SCALE = 2.0  # float samples above this are a wrongly scaled file, not a codec's overshoot


def _full_scale(y: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Floats louder than full scale scaled by their peak (1e30 would overflow the power
    spectrogram), and a note saying so, or that the recording is clipped."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1.0:
        # a lossy decoder (Vorbis, MP3) overshoots full scale by up to ~1.5 on loud material: that
        # is the codec, not the recording, and needs no word; far beyond it, the file's scale is wrong
        note = ([f"The samples reach {peak:.3g}, far beyond full scale (1.0): the recording was scaled down "
                 f"by that peak."] if peak > FAR_BEYOND_FULL_SCALE else [])
        return (y.astype(np.float64) / peak).astype(np.float32), note
    clipped = np.count_nonzero(np.abs(y) >= CLIP_LEVEL) / max(y.size, 1)
    if clipped > CLIPPED_FRACTION:
        return y, [f"The recording is clipped ({clipped:.0%} of samples at full scale): the prediction may suffer."]
    return y, []


def _mono(a: np.ndarray) -> np.ndarray:
    """(n,), (n, channels) or (channels, n) -> (n,). The layout of a 2-D array is guessed
    from its shape: no recording has more channels than samples."""
    if a.ndim == 1:
        return a
    if a.ndim != 2:
        raise InputError(f"Audio arrays must be 1-D or 2-D, not {a.ndim}-D.")
    if a.shape[0] < a.shape[1]:
        a = a.T
    return a.mean(axis=1, dtype=np.float32) if a.shape[1] > 1 else a[:, 0]


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return y
    import soxr  # what librosa.resample uses by default (soxr_hq), without librosa's import time
    return soxr.resample(y, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def _check_rate(sr, name: str) -> int:
    if isinstance(sr, (float, np.floating)) and float(sr).is_integer():
        sr = int(sr)
    if not isinstance(sr, (int, np.integer)) or not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise InputError(f"{name} has a sample rate of {sr!r} Hz; expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz.")
    return int(sr)


def _too_long(seconds: float, name: str) -> InputError:
    return InputError(f"{name} is {seconds / 60:.1f} minutes long; the limit is {MAX_AUDIO_SECONDS / 60:g} minutes.")


def _unreadable(path: Path, exc: Exception) -> InputError:
    """Our words for a file no decoder could read; the decoder's own go to the server log."""
    log.warning("could not decode %s: %s: %s", path.name, type(exc).__name__, str(exc).strip())
    return InputError(f"{path.name} is damaged, truncated or in an encoding this app cannot read: no audio could be "
                      f"read from it; try exporting it again as WAV, FLAC or OGG.")


def _read_soundfile(path: Path) -> tuple[np.ndarray, int, int]:
    """Decode with libsndfile, block by block; keeps what precedes damage in a truncated file.
    -> (mono samples, sample rate, bytes a frame takes in the file)."""
    import soundfile as sf
    with sf.SoundFile(path) as f:
        sr = _check_rate(f.samplerate, path.name)
        frame_bytes = f.channels * SAMPLE_BYTES.get(f.subtype, DEFAULT_SAMPLE_BYTES)
        if f.frames / sr > MAX_AUDIO_SECONDS:
            raise _too_long(f.frames / sr, path.name)
        blocks, total = [], 0
        while total <= MAX_AUDIO_SECONDS * sr:  # a header may understate the length
            try:
                block = f.read(DECODE_BLOCK_FRAMES, dtype="float32", always_2d=True)
            except sf.SoundFileError:
                if not blocks:
                    raise
                break  # truncated: keep the part before the damage
            if len(block) == 0:
                break
            blocks.append(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0])
            total += len(block)
    if total > MAX_AUDIO_SECONDS * sr:
        raise _too_long(total / sr, path.name)
    return (np.concatenate(blocks) if blocks else np.zeros(0, np.float32)), sr, frame_bytes


def _read_audioread(path: Path) -> tuple[np.ndarray, int, int]:
    """M4A/WebM (and MP3s libsndfile rejects) through librosa -> audioread -> ffmpeg."""
    if path.suffix.lower() in FFMPEG_SUFFIXES and shutil.which("ffmpeg") is None:
        raise InputError(f"{path.name}: reading {path.suffix} files needs ffmpeg, which is not installed; "
                         f"convert it to WAV, FLAC, OGG or MP3.")
    import librosa
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa's audioread-fallback deprecation notice
            y, sr = librosa.load(path, sr=None, mono=True, duration=MAX_AUDIO_SECONDS + 1)
    except Exception as exc:  # audioread raises its own zoo of errors (NoBackendError, DecodeError...)
        raise _unreadable(path, exc) from None
    if len(y) > MAX_AUDIO_SECONDS * sr:
        raise _too_long(len(y) / sr, path.name)
    # librosa mixed it down: counted as stereo of DEFAULT_SAMPLE_BYTES samples, more than a compressed file holds
    return y, _check_rate(int(sr), path.name), 2 * DEFAULT_SAMPLE_BYTES


def _read_file(path: Path) -> tuple[np.ndarray, int, int]:
    import soundfile as sf
    check_upload(path, MAX_FILE_BYTES)
    suffix = path.suffix.lower()
    if suffix in FFMPEG_SUFFIXES:
        return _read_audioread(path)
    try:
        return _read_soundfile(path)
    except sf.SoundFileError as exc:
        if suffix == ".mp3":
            return _read_audioread(path)
        if "not recognised" in str(exc) or suffix not in SOUNDFILE_SUFFIXES:
            raise InputError(f"{path.name} is not an audio file this app can read; use {READABLE}.") from None
        raise _unreadable(path, exc) from None


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"


def _duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


def _short_read(path: Path, frames: int, sr: int, frame_bytes: int) -> list[str]:
    """A note when the file is far bigger than the audio decoded from it (a header that
    understates its data, a file that is mostly something else)."""
    size = path.stat().st_size
    if size <= SHORT_READ_RATIO * frames * frame_bytes + SHORT_READ_SLACK:
        return []
    return [f"Only {_duration(frames / sr)} of audio could be read from this {_size(size)} file: the rest of it is "
            f"damaged or not audio."]


@dataclass
class LoadedAudio:
    """A loaded recording and what the user should know about it (see load_audio_report)."""

    waveform: np.ndarray
    notes: list[str] = field(default_factory=list)


def load_audio(x, sample_rate: int) -> np.ndarray:
    """A path, a (sample_rate, array) tuple as gr.Audio gives, or an array already at
    `sample_rate` -> float32 mono waveform at `sample_rate`, at least MIN_AUDIO_SECONDS long."""
    return load_audio_report(x, sample_rate).waveform


def load_audio_report(x, sample_rate: int) -> LoadedAudio:
    """load_audio, with notes (one sentence each) on what was analysed when it is not simply
    the recording: a file that held far less audio than its size, clipping, floats scaled down."""
    notes = []
    if x is None:
        raise InputError("No sound given: upload or record a sound, or pick an example.")
    if isinstance(x, tuple):
        if len(x) != 2:
            raise InputError("Audio tuples must be (sample_rate, array).")
        name = "The recording"
        sr, a = _check_rate(x[0], name), np.asarray(x[1])
        y = _mono(_to_float(a, name))
    elif isinstance(x, (np.ndarray, torch.Tensor)):
        name, sr = "The recording", sample_rate
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        y = _mono(_to_float(a, name))
    else:
        path = Path(x)
        name = path.name
        y, sr, frame_bytes = _read_file(path)
        y = _to_float(y, name)  # NaNs from the decoder
        notes += _short_read(path, len(y), sr, frame_bytes)
    if len(y) > MAX_AUDIO_SECONDS * sr:
        raise _too_long(len(y) / sr, name)
    if len(y) == 0:
        raise InputError(f"{name} contains no audio (empty or truncated).")
    y, level = _full_scale(y)
    y = resample(np.ascontiguousarray(y, dtype=np.float32), sr, sample_rate)
    min_len = int(np.ceil(MIN_AUDIO_SECONDS * sample_rate))
    return LoadedAudio(fix_length(y, min_len) if len(y) < min_len else y, notes + level)

