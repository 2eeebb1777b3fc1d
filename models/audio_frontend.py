"""Audio front end: safe loading of whatever a user uploads or records, the length policy,
and the log-mel features a model eats.

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
from torch import nn

from .errors import InputError, check_upload
from .limits import LIMITS

# Uploads longer than this are refused before decoding (10 minutes; a model sees 1-5 s).
MAX_AUDIO_SECONDS = int(LIMITS.audio_seconds)
# 10 minutes of 48 kHz 24-bit stereo WAV is 173 MB.
MAX_FILE_BYTES = LIMITS.bytes(LIMITS.audio_upload_mb)
MIN_AUDIO_SECONDS = LIMITS.audio_min_seconds
# Sample rates outside this range are a broken header, not a recording.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000
# Peak below -60 dBFS: nothing a microphone would call a sound.
SILENCE_PEAK = 1e-3
# Decoded in small blocks, each mixed to mono at once: a 10-minute 6-channel 192 kHz file
# never holds all its channels in memory, and when a truncated file fails mid-read only the
# failing block is lost (libsndfile returns nothing of a read that fails).
DECODE_BLOCK_FRAMES = 4096
# Mel filterbanks (torchaudio's default htk; librosa's slaney) and log compressions (AudioSpec).
MEL_SCALES = ("htk", "slaney")
LOG_SCALES = ("db", "log10p", "ln")
# Front ends: our LogMel (torchaudio mel, dB, training statistics) or EfficientAT's (models.efficientat)
FRONTENDS = ("logmel", "efficientat")
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
# A recording up to this much longer than whole windows is whole windows: a 5.00 s file decoded
# at another rate and resampled can come out a sample or two long.
WINDOW_SLACK_SECONDS = 0.01

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioSpec:
    """How a model wants its sound: sample rate, clip length and log-mel settings.
    Defaults are the course ESC-50 CNN's (64 mels, 25 ms window, 10 ms hop at 16 kHz)."""

    sample_rate: int
    clip_seconds: float
    n_mels: int = 64
    n_fft: int = 400
    hop_length: int = 160
    f_min: float = 0.0
    f_max: float | None = None  # None: sample_rate / 2
    top_db: float | None = 80.0
    trim_db: float | None = None  # trim leading/trailing silence quieter than peak - trim_db (spoken words)
    peak_normalize: bool = False  # scale each recording to peak 1 (speakers and microphones differ by 60 dB)
    # more channels: the same mel grid from STFTs of other window lengths (a multi-resolution
    # input: short windows keep transients sharp, long ones resolve pitch); channel 0 is n_fft's.
    # A window shorter than n_fft is zero-padded to n_fft (so no mel band falls between bins).
    extra_n_ffts: tuple = ()
    # the mel filterbank: "htk" (torchaudio's default) or "slaney" (librosa's: Slaney's scale and
    # area-normalised filters, what models trained on librosa features such as musicnn expect)
    mel_scale: str = "htk"
    # the compression of the mel power: "db" (10 log10, floored top_db below the clip's peak) or
    # "log10p" (log10(1 + 10000 power): musicnn's, no floor needed)
    log: str = "db"
    # "efficientat": pre-emphasis, Kaldi mel banks, ln(mel + 1e-5), fixed scaling (models.efficientat)
    frontend: str = "logmel"
    win_length: int | None = None  # None: n_fft

    def __post_init__(self):
        if self.frontend not in FRONTENDS:
            raise ValueError(f"audio.frontend is {self.frontend!r}; expected one of {', '.join(FRONTENDS)}")
        if self.mel_scale not in MEL_SCALES:
            raise ValueError(f"audio.mel_scale is {self.mel_scale!r}; expected one of {', '.join(MEL_SCALES)}")
        if self.log not in LOG_SCALES:
            raise ValueError(f"audio.log is {self.log!r}; expected one of {', '.join(LOG_SCALES)}")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def frames(self) -> int:
        """Frames of a clip's spectrogram (centred STFT; EfficientAT's pre-emphasis filter first
        takes a sample off, which is a frame fewer for a clip of whole hops)."""
        return 1 + (self.clip_samples - (self.frontend == "efficientat")) // self.hop_length

    @property
    def log_unit(self) -> str:
        """What the log-mel's values are, for a colour bar."""
        return {"db": "dB", "log10p": "log10(1 + 10⁴ power)", "ln": "ln(power + 10⁻⁵)"}[self.log]

    @property
    def waveform_key(self) -> str:
        """The settings a prepared waveform depends on (not the log-mel's): for cache keys."""
        return f"{self.sample_rate}|{self.clip_seconds}|{self.trim_db}|{self.peak_normalize}"

    def to_dict(self) -> dict:
        return {"kind": "audio", "sample_rate": self.sample_rate, "clip_seconds": self.clip_seconds,
                "n_mels": self.n_mels, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "f_min": self.f_min, "f_max": self.f_max, "top_db": self.top_db, "trim_db": self.trim_db,
                "peak_normalize": self.peak_normalize, "extra_n_ffts": list(self.extra_n_ffts),
                "mel_scale": self.mel_scale, "log": self.log, "frontend": self.frontend,
                "win_length": self.win_length}

    @classmethod
    def from_dict(cls, d: dict) -> "AudioSpec":
        def opt_float(v):
            return None if v is None else float(v)
        return cls(sample_rate=int(d["sample_rate"]), clip_seconds=float(d["clip_seconds"]),
                   n_mels=int(d.get("n_mels", 64)), n_fft=int(d.get("n_fft", 400)),
                   hop_length=int(d.get("hop_length", 160)), f_min=float(d.get("f_min", 0.0)),
                   f_max=opt_float(d.get("f_max")), top_db=opt_float(d.get("top_db", 80.0)),
                   trim_db=opt_float(d.get("trim_db")), peak_normalize=bool(d.get("peak_normalize", False)),
                   extra_n_ffts=tuple(int(k) for k in d.get("extra_n_ffts") or ()),
                   mel_scale=str(d.get("mel_scale", "htk")), log=str(d.get("log", "db")),
                   frontend=str(d.get("frontend", "logmel")),
                   win_length=None if d.get("win_length") is None else int(d["win_length"]))


# --- loading


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


def is_silent(y: np.ndarray, peak: float = SILENCE_PEAK) -> bool:
    """True when nothing in `y` rises above -60 dBFS (all zeros, muted microphone...)."""
    return len(y) == 0 or float(np.max(np.abs(y))) < peak


# --- length policy


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


# --- features


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
