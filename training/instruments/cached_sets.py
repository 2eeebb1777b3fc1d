"""Played sets, each made once and cached (cache keys hash the settings and the code that plays
them): phrases rendered with a soundfont, their variants (a shared register, stretched), phrases
played with recorded notes (training/sampler.py) and on modelled instruments (training/pluck.py,
training/bow.py); all through random recording chains (room)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..data_common import cached_array
from .labels import LABELS
from .phrases import INSTRUMENTS, fold_into, phrase, shared_register, stretch
from .recording_chain import room
from .recordings import find_recordings, split_by_config
from .render import RENDER_RATE, render_phrases
from .soundfonts import find_soundfont


def rendered_set(soundfont_name: str, phrases: int, seconds: float, seed: int,
                 programs: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(waves (N, samples), labels (N,)) for one soundfont, through random recording chains;
    rendered once and cached. The key holds the soundfont, the counts, the seed and a hash of
    phrase() and room() (as the other played sets' keys), so a change to either renders again."""
    soundfont = find_soundfont(soundfont_name)
    key = f"{soundfont.resolve()}|{soundfont.stat().st_size}|{phrases}|{seconds}|{seed}|{_played_code()}"
    key = (key + (f"|programs={sorted((k, sorted(v)) for k, v in programs.items())}" if programs else "")).encode()

    def build():
        rng = np.random.default_rng(seed + 7)
        print(f"rendering {phrases} phrases per instrument with {soundfont.name}", file=sys.stderr, flush=True)
        clips = render_phrases(soundfont, [label for label in LABELS for _ in range(phrases)], seconds, seed,
                               programs=programs)
        return np.stack([room(c, rng, RENDER_RATE) for c in clips])

    waves = cached_array(f"instruments-render-{soundfont_name}", key, build)
    return waves, np.repeat(np.arange(len(LABELS)), phrases)


def variant_set(soundfont_name: str, instruments: list[str], phrases: int, seconds: float, seed: int,
                programs: dict | None = None, *, register: bool = False,
                stretch_range: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(waves, labels): `phrases` more phrases of each of `instruments`, rendered with one
    soundfont through random recording chains and cached like rendered_set - with `register`,
    all in the register they share (shared_register, fold_into); with `stretch_range`, each
    stretch()ed by a random number of semitones in that range (a sparsely sampled soundfont)."""
    import hashlib
    import inspect
    if register == bool(stretch_range):
        raise ValueError("variant_set: give either register or stretch_range")
    names = [label for label in LABELS if label in instruments]
    soundfont = find_soundfont(soundfont_name)
    if register:
        lo, hi = shared_register(instruments)
        kind, how, offsets, code = "register", f"in MIDI {lo}-{hi}", (29, 31), fold_into
    else:
        lo, hi = stretch_range
        kind, how, offsets, code = "stretched", f"stretched by {lo}-{hi} semitones", (37, 41), stretch
    code_hash = hashlib.sha1(inspect.getsource(code).encode()).hexdigest()[:8]
    key = (f"{soundfont.resolve()}|{soundfont.stat().st_size}|{names}|{kind}|{lo}-{hi}|{phrases}|{seconds}|{seed}|"
           f"{_played_code()}|{code_hash}|programs={sorted((k, sorted(v)) for k, v in (programs or {}).items())}").encode()

    def build():
        rng = np.random.default_rng(seed + offsets[0])
        print(f"rendering {phrases} {' and '.join(names)} phrases {how} with {soundfont.name}",
              file=sys.stderr, flush=True)
        clips = render_phrases(soundfont, [n for n in names for _ in range(phrases)], seconds, seed + offsets[1],
                               programs=programs, register=(lo, hi) if register else None,
                               stretch_range=stretch_range)
        return np.stack([room(c, rng, RENDER_RATE) for c in clips])

    waves = cached_array(f"instruments-{kind}-{soundfont_name}", key, build)
    return waves, np.repeat(np.array([LABELS.index(n) for n in names]), phrases)


def _played_code(*modules) -> str:
    """A hash of what makes a played phrase: phrase(), room(), the instruments' ranges, the
    render rate and the modules that play it (a change to any plays the phrases again)."""
    import hashlib
    import inspect
    text = inspect.getsource(phrase) + inspect.getsource(room) + repr(INSTRUMENTS) + str(RENDER_RATE)
    return hashlib.sha1(text.encode() + b"".join(Path(m.__file__).read_bytes() for m in modules)).hexdigest()[:10]


def sampled_set(folder: Path, real: dict, phrases: int, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(waves (N, samples), labels (N,)): phrases played with the single notes of the training
    recordings (training/sampler.py; never a validation recording), through random recording
    chains; made once and cached."""
    from .. import sampler
    found = find_recordings(folder)
    train = split_by_config(found, real, seed)["train"]
    files = [(found[i][0], found[i][1]) for i in train]
    code = _played_code(sampler)
    key = (f"{phrases}|{seconds}|{seed}|{code}|".encode()
           + "|".join(f"{p}:{p.stat().st_size}" for p, _ in files).encode())

    def build():
        bank = sampler.note_bank(files, RENDER_RATE)
        rng = np.random.default_rng(seed + 11)
        print(f"playing {phrases} phrases per instrument with recorded notes "
              f"({', '.join(f'{k}: {len(v)}' for k, v in sorted(bank.items()))})", file=sys.stderr, flush=True)
        clips, labels = [], []
        for k, label in enumerate(LABELS):
            for _ in range(phrases if bank.get(label) else 0):
                clip = sampler.play(sampler.note_events(phrase(label, rng, seconds)), bank[label], seconds,
                                    RENDER_RATE, rng)
                clips.append(room(clip, rng, RENDER_RATE))
                labels.append(k)
        return np.column_stack([np.stack(clips), np.asarray(labels, np.float32)])

    arr = cached_array("instruments-sampled", key, build)
    return arr[:, :-1], arr[:, -1].astype(np.int64)


MODELLED = {"guitar": 13, "cello": 19, "violin": 23}  # instruments with a physical model: seed offsets


def modelled_set(instrument: str, phrases: int, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(waves (N, samples), labels (N,)): phrases of one instrument played on modelled
    instruments - guitars as plucked strings (training/pluck.py), violins and cellos as bowed
    strings (training/bow.py), a new random instrument for each phrase - through random recording
    chains; made once and cached."""
    from .. import bow, pluck, sampler
    if instrument not in MODELLED:
        raise ValueError(f"no physical model for {instrument!r}; modelled: {', '.join(MODELLED)}")
    code = _played_code(pluck, bow, sampler)

    def build():
        rng = np.random.default_rng(seed + MODELLED[instrument])
        print(f"playing {phrases} {instrument} phrases on modelled {instrument}s", file=sys.stderr, flush=True)
        clips = []
        for _ in range(phrases):
            notes = sampler.note_events(phrase(instrument, rng, seconds))
            longest = min(seconds, max((end - start for start, end, _, _ in notes), default=0.0) + 0.5)
            pitches = [p for _, _, p, _ in notes]
            if instrument == "guitar":
                bank = pluck.bank(pitches, seconds, RENDER_RATE, pluck.guitar(rng), rng)
            else:  # a bowed note lasts as long as the bow: only as long as the longest note needs
                bank = bow.bank(pitches, longest, RENDER_RATE, bow.instrument(instrument, rng), rng)
            clips.append(room(sampler.play(notes, bank, seconds, RENDER_RATE, rng), rng, RENDER_RATE))
        return np.stack(clips)

    waves = cached_array(f"instruments-modelled-{instrument}", f"{phrases}|{seconds}|{seed}|{code}".encode(), build)
    return waves, np.full(len(waves), LABELS.index(instrument), np.int64)
