"""The checks of the config's data sections the loader reads: each returns the section's settings,
or raises ValueError with what a valid one looks like."""
from __future__ import annotations

from ..schema import ConfigError
from .labels import LABELS
from .phrases import STRETCH_BEND_RANGE, shared_register
from .sample_leaks import shared_samples
from .soundfonts import DEFAULT_SOUNDFONTS, find_soundfont, font_files


def checked_soundfonts(d: dict) -> dict:
    """data.soundfonts ({train: [...], test: [...]}, default DEFAULT_SOUNDFONTS); refused where a
    training font is a held-out one or shares its recorded samples (shared_samples)."""
    fonts = d["soundfonts"] or DEFAULT_SOUNDFONTS
    overlap = (set().union(*(font_files(find_soundfont(n)) for n in fonts["train"]))
               & set().union(*(font_files(find_soundfont(n)) for n in fonts["test"])))
    if overlap:
        raise ConfigError(f"soundfonts {sorted(p.name for p in overlap)} are in both train and test")
    leaks = shared_samples(fonts["train"], fonts["test"])
    if leaks:
        a, b, n = leaks[0]
        raise ConfigError(f"training soundfont {a} shares {n} recorded samples with held-out {b}: "
                         "the test would measure what was trained on; train on another font")
    return fonts


def checked_train_programs(d: dict) -> dict:
    """data.train_programs: {instrument: [General MIDI programs]} ({} when absent)."""
    train_programs = d["train_programs"] or {}
    unknown = set(train_programs) - set(LABELS)
    if unknown:
        raise ConfigError(f"data.train_programs: unknown instrument(s) {sorted(unknown)}; expected some of {LABELS}")
    if not all(isinstance(v, list) and v and all(isinstance(q, int) and 0 <= q <= 127 for q in v)
               for v in train_programs.values()):
        raise ConfigError("data.train_programs: each instrument needs a list of General MIDI programs (0-127)")
    return train_programs


def checked_shared_register(d: dict) -> tuple[list[str], int, tuple[int, int]] | None:
    """data.shared_register {instruments: [...], phrases: N}: (instruments, N, their shared MIDI
    range (lo, hi)); None when absent."""
    reg = d["shared_register"] or {}
    if not reg:
        return None
    if not isinstance(reg.get("phrases"), int) or reg["phrases"] < 1:
        raise ConfigError("data.shared_register needs {instruments: [two or more], phrases: N >= 1}")
    lo, hi = shared_register(list(reg.get("instruments") or []))
    return list(reg["instruments"]), reg["phrases"], (lo, hi)


def checked_stretched(d: dict) -> tuple[list[str], int, list[int]] | None:
    """data.stretched {phrases: N, semitones: [lo, hi], instruments: [...] (default all)}:
    (instruments, N, [lo, hi]); None when absent."""
    st = d["stretched"] or {}
    if not st:
        return None
    top = STRETCH_BEND_RANGE - 2
    names, span = st.get("instruments") or list(LABELS), st.get("semitones")
    if not (isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span)
            and 0 <= span[0] <= span[1] <= top and isinstance(st.get("phrases"), int) and st["phrases"] >= 1
            and set(names) <= set(LABELS)):
        raise ConfigError(f"data.stretched needs {{phrases: N >= 1, semitones: [lo, hi] with 0 <= lo <= hi <= {top}}}, "
                         f"and instruments among {LABELS}")
    return names, st["phrases"], span


def checked_phone_share(d: dict) -> float:
    """data.phone_share: the share of training clips heard through a random phone-like chain (0-1)."""
    share = d["phone_share"]
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"data.phone_share must be between 0 and 1, not {share}")
    return share
