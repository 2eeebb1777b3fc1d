"""Phrases as MIDI events: scales, arpeggios, melodies, single notes; chords for piano and guitar
(strummed on the guitar); legato lines with vibrato and swells for violin and cello, in each
instrument's range, at random tempi and velocities. Also their variants: folded into a register
two instruments share (fold_into), or stretched as a sparsely sampled soundfont plays them (stretch)."""
from __future__ import annotations

import numpy as np

from ..schema import ConfigError
from .labels import LABELS
from .midi import _bend, _note

# General MIDI programs and playable ranges (MIDI note numbers), as played in practice
INSTRUMENTS = {
    "piano": {"programs": [0, 1], "range": (33, 96), "chords": True},
    "guitar": {"programs": [24, 25], "range": (40, 81), "chords": True, "strum": True},
    "violin": {"programs": [40], "range": (55, 93), "vibrato": True},
    "cello": {"programs": [42], "range": (36, 72), "vibrato": True},
}
MAJOR, MINOR = [0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10]


def _scale_notes(rng: np.random.Generator, lo: int, hi: int) -> np.ndarray:
    root = int(rng.integers(0, 12))
    steps = MAJOR if rng.random() < 0.6 else MINOR
    return np.array([n for n in range(lo, hi + 1) if (n - root) % 12 in steps])


# long: one function on purpose: its source is hashed into the played sets' cache keys (_played_code)
def phrase(instrument: str, rng: np.random.Generator, seconds: float,
           programs: list[int] | None = None) -> list[tuple[float, bytes]]:
    """One musical phrase of about `seconds`, as MIDI events from t = 0 (program change first);
    `programs`: the General MIDI programs to draw from (default: the instrument's own)."""
    spec = INSTRUMENTS[instrument]
    lo, hi = spec["range"]
    program = int(rng.choice(programs or spec["programs"]))
    events = [(0.0, bytes([0xC0, program])), (0.0, bytes([0xB0, 7, 110])), (0.0, bytes([0xB0, 11, 127])),
              _bend(0.0, 0.0)]
    notes = _scale_notes(rng, lo, hi)
    kinds = ["scale", "arpeggio", "melody", "single"] + (["chords"] if spec.get("chords") else []) + \
        (["legato"] if spec.get("vibrato") else [])
    kind = str(rng.choice(kinds))
    beat = 60.0 / rng.uniform(60, 160)
    base_velocity = int(rng.integers(40, 120))

    def vel():
        return int(np.clip(base_velocity + rng.integers(-12, 13), 20, 127))

    t, seq = 0.05, []  # (start, end, [pitches])
    if kind == "single":
        dur = rng.uniform(0.8, seconds - 0.2)
        seq.append((t, t + dur, [int(rng.choice(notes))]))
    elif kind == "chords":
        while t < seconds - 0.3:
            dur = beat * float(rng.choice([1, 2, 4]))
            root_i = int(rng.integers(0, max(len(notes) - 5, 1)))
            chord = [int(notes[min(root_i + k, len(notes) - 1)]) for k in (0, 2, 4)]
            if spec.get("strum") or rng.random() < 0.3:
                chord += [int(notes[min(root_i + 7, len(notes) - 1)])]
            seq.append((t, min(t + dur, seconds), sorted(set(chord))))
            t += dur
    else:
        i = int(rng.integers(0, len(notes)))
        direction = 1 if rng.random() < 0.5 else -1
        step_beats = float(rng.choice([0.25, 0.5, 1.0])) if kind != "legato" else float(rng.choice([1.0, 2.0]))
        while t < seconds - 0.2:
            if kind == "scale":
                i += direction
            elif kind == "arpeggio":
                i += 2 * direction
            else:
                i += int(rng.choice([-3, -2, -1, 1, 2, 3]))
            if not 0 <= i < len(notes):
                direction, i = -direction, int(np.clip(i, 0, len(notes) - 1))
            dur = beat * step_beats * float(rng.choice([1, 1, 1, 2]))
            legato = 1.02 if kind == "legato" else rng.uniform(0.6, 0.98)
            seq.append((t, min(t + dur * legato, seconds), [int(notes[i])]))
            t += dur
    for start, end, pitches in seq:
        for k, p in enumerate(pitches):
            offset = 0.012 * k if spec.get("strum") else 0.0
            events += _note(start + offset, max(end, start + offset + 0.05), p, vel())
    if spec.get("vibrato"):  # pitch bend at 5-7 Hz, 10-35 cents, and a swell of the expression
        rate, depth = rng.uniform(5, 7), rng.uniform(0.10, 0.35)
        for tt in np.arange(0.0, seconds, 0.02):
            events.append(_bend(float(tt), depth * np.sin(2 * np.pi * rate * tt) * min(1.0, tt / 0.4)))
        swell = rng.uniform(70, 127)
        for tt in np.arange(0.0, seconds, 0.1):
            events.append((float(tt), bytes([0xB0, 11, int(swell + (127 - swell) * np.sin(np.pi * tt / seconds))])))
    return events


def shared_register(instruments: list[str]) -> tuple[int, int]:
    """The MIDI range every one of `instruments` plays (the intersection of their ranges)."""
    unknown = set(instruments) - set(INSTRUMENTS)
    if unknown or len(instruments) < 2:
        raise ConfigError(f"a shared register needs two or more of {', '.join(LABELS)}; got {instruments}")
    lo = max(INSTRUMENTS[i]["range"][0] for i in instruments)
    hi = min(INSTRUMENTS[i]["range"][1] for i in instruments)
    if hi - lo < 11:
        raise ConfigError(f"{', '.join(instruments)} share less than an octave (MIDI {lo}-{hi})")
    return lo, hi


def fold_into(events: list[tuple[float, bytes]], lo: int, hi: int) -> list[tuple[float, bytes]]:
    """The phrase with each note moved by whole octaves into MIDI lo..hi (pitch classes, rhythm,
    dynamics and vibrato kept): phrases in a register that two instruments share, where pitch
    does not tell them apart and only timbre does. Needs a range of an octave or more."""
    if hi - lo < 11:
        raise ValueError(f"MIDI {lo}-{hi} is less than an octave")
    out = []
    for t, msg in events:
        if msg[0] & 0xF0 in (0x80, 0x90):
            pitch = msg[1]
            while pitch > hi:
                pitch -= 12
            while pitch < lo:
                pitch += 12
            msg = bytes([msg[0], pitch, *msg[2:]])
        out.append((t, msg))
    return out


STRETCH_BEND_RANGE = 24  # semitones: the General MIDI maximum; stretch() leaves 2 for vibrato


def stretch(events: list[tuple[float, bytes]], semitones: int,
            bend_range: int = STRETCH_BEND_RANGE) -> list[tuple[float, bytes]]:
    """The phrase as a sparsely multisampled soundfont plays it: every note written `semitones`
    keys lower and the whole phrase bent up as far (the bend range set to `bend_range` semitones
    by RPN 0), so every pitch is unchanged but is played from the sample zone `semitones` below,
    resampled up: its formants, attack and noise move up with it, as when a small soundfont (or
    sampler) stretches one recorded note over many keys. Vibrato bends are kept on top."""
    if not 0 <= semitones <= bend_range - 2:
        raise ValueError(f"stretch: semitones must be 0..{bend_range - 2} (bend range {bend_range}), not {semitones}")
    rpn = [bytes([0xB0, 101, 0]), bytes([0xB0, 100, 0]), bytes([0xB0, 6, bend_range]), bytes([0xB0, 38, 0]),
           bytes([0xB0, 101, 127]), bytes([0xB0, 100, 127])]
    out = []
    for t, msg in events:
        kind = msg[0] & 0xF0
        if kind in (0x80, 0x90):
            msg = bytes([msg[0], max(msg[1] - semitones, 0), *msg[2:]])
        elif kind == 0xE0:
            bent = ((msg[1] | msg[2] << 7) - 8192) / 8192 * 2.0 + semitones  # _bend's +-2 range, moved up
            value = int(np.clip(round(8192 + bent / bend_range * 8192), 0, 16383))
            msg = bytes([0xE0, value & 0x7F, value >> 7])
        out.append((t, msg))
    start = min((t for t, _ in events), default=0.0)
    return [(start, m) for m in rpn] + out

