"""Every limit the app enforces, in one place, with sane defaults.

Each can be changed by an environment variable XAI_LAB_<NAME> (e.g. XAI_LAB_AUDIO_SECONDS=120
on a small Space). A bad value is reported in one line at start-up and its default is
kept, so the app still serves.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields


class LimitsError(ValueError):
    """An XAI_LAB_* limit variable is not a positive number."""


@dataclass(frozen=True)
class Limits:
    image_upload_mb: float = 50  # an image file, before decoding
    image_megapixels: float = 40  # checked from the header, before decoding
    audio_upload_mb: float = 200  # 10 minutes of 48 kHz stereo WAV is 110 MB
    audio_seconds: float = 600  # longer recordings are refused, not truncated silently
    audio_min_seconds: float = 0.05
    sound_windows: int = 120  # windows analysed per recording (the hop is widened past this)
    queue_concurrency: int = 2  # requests run at once per event (CPU: 2 cores)
    queue_size: int = 64  # requests waiting; more get "queue full" instead of a long wait
    torch_threads: int = 0  # 0: torch's default

    @classmethod
    def from_env(cls, environ=os.environ, strict: bool = True) -> "Limits":
        """The defaults, overridden by XAI_LAB_<NAME>; a bad value raises LimitsError, or
        with strict=False is reported on stderr and left at its default."""
        values = {}
        for f in fields(cls):
            raw = environ.get(f"XAI_LAB_{f.name.upper()}")
            if raw is None:
                continue
            kind = int if f.type in (int, "int") else float
            try:
                value = kind(raw)
                if value < 0 or (value == 0 and f.name != "torch_threads"):
                    raise ValueError
            except ValueError:
                error = LimitsError(f"XAI_LAB_{f.name.upper()}={raw!r} is not a positive "
                                    f"{'whole ' if kind is int else ''}number; using {getattr(cls, f.name)}")
                if strict:
                    raise error from None
                print(f"warning: {error}", file=sys.stderr)
                continue
            values[f.name] = value
        return cls(**values)

    def bytes(self, megabytes: float) -> int:
        return int(megabytes * 1024 * 1024)


LIMITS = Limits.from_env(strict=False)
