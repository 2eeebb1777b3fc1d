"""AudioSpec: how a model wants its sound (sample rate, clip length, log-mel settings); stored
in checkpoints as the preprocessing and read back by the app, never re-typed."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

# Mel filterbanks (torchaudio's default htk; librosa's slaney) and log compressions (AudioSpec).
MEL_SCALES = ("htk", "slaney")
LOG_SCALES = ("db", "log10p", "ln")
# Front ends: our LogMel (torchaudio mel, dB, training statistics) or EfficientAT's (models.efficientat)
FRONTENDS = ("logmel", "efficientat")


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
        """From a config's audio section or a checkpoint's preprocessing: a key left out takes its
        default above (stated once there), a value is cast to its field's type, other keys are ignored."""
        hints = typing.get_type_hints(cls)
        return cls(**{f.name: _cast(hints[f.name], d[f.name]) for f in dataclasses.fields(cls) if f.name in d})


def _cast(hint, value):
    """`value` as the plain type `hint` names (int, float, bool, str, tuple), None kept where allowed."""
    if hint is tuple:
        return tuple(int(k) for k in value or ())
    if value is None and type(None) in typing.get_args(hint):
        return None
    base = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
    return base(value)
