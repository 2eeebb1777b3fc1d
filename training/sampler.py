"""A sampler made of recorded notes: the phrases of training/instruments.py played with the
training recordings' own single notes (the way NSynth-like sets are built from sample
libraries), so that phrases - chords, arpeggios, scales - also come in real timbres, not only in
those of the training soundfonts (FluidR3_GM and MuseScore_General share their guitar and
violin samples: one timbre each).

A note's pitch is read from its file name (note names as in "A4", "Cs4", "Ab5", or a MIDI
number as the last part of the name, as in Headroom's "..._CLOSE_60"); files whose pitch cannot
be read (whole performances) or that hold harmonics are left out. Each note event takes a
recording within a few semitones, shifted to its pitch by resampling, cut to its duration with a
short release, and scaled by its velocity.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NOTE = re.compile(r"^([A-G])(s|#|b)?(-?\d)$")
MAX_SHIFT = 4  # semitones a recording may be moved


def pitch_of(path: Path) -> int | None:
    """MIDI pitch from a note file's name, or None."""
    stem = Path(path).stem
    if "harmonic" in stem.lower():
        return None
    parts = re.split(r"[_.\- ]", stem)
    for part in parts:
        m = _NOTE.match(part)
        if m:
            shift = {"s": 1, "#": 1, "b": -1}.get(m.group(2) or "", 0)
            return 12 * (int(m.group(3)) + 1) + NOTE_NAMES[m.group(1)] + shift
    if parts and parts[-1].isdigit() and 21 <= int(parts[-1]) <= 108:
        return int(parts[-1])
    return None


def note_bank(files: list[tuple[Path, str]], sample_rate: int, seconds: float = 6.0) -> dict[str, list]:
    """{label: [(pitch, waveform), ...]} of the files (path, label) whose pitch is known; each
    note starts at its onset (leading silence cut) and lasts at most `seconds`."""
    from models.audio_frontend import load_audio
    bank: dict[str, list] = {}
    for path, label in files:
        pitch = pitch_of(path)
        if pitch is None:
            continue
        y = load_audio(path, sample_rate)
        peak = float(np.abs(y).max()) if len(y) else 0.0
        if peak <= 0:
            continue
        onset = int(np.argmax(np.abs(y) > peak * 10 ** (-30 / 20)))
        bank.setdefault(label, []).append((pitch, (y[onset: onset + int(seconds * sample_rate)] / peak)
                                           .astype(np.float32)))
    return bank


def note_events(events: list[tuple[float, bytes]]) -> list[tuple[float, float, int, int]]:
    """(start, end, pitch, velocity) of the note-on/note-off pairs in MIDI events."""
    open_notes: dict[int, list] = {}
    notes = []
    for t, msg in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):
        kind = msg[0] & 0xF0
        if kind == 0x90 and msg[2] > 0:
            open_notes.setdefault(msg[1], []).append((t, msg[2]))
        elif kind == 0x80 or (kind == 0x90 and msg[2] == 0):
            if open_notes.get(msg[1]):
                start, velocity = open_notes[msg[1]].pop(0)
                notes.append((start, t, msg[1], velocity))
    return sorted(notes)


def play(notes: list[tuple[float, float, int, int]], bank: list[tuple[int, np.ndarray]], seconds: float,
         sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """The notes played with the recordings of one instrument (bank): a waveform of `seconds`."""
    out = np.zeros(int(round(seconds * sample_rate)), np.float32)
    pitches = np.array([p for p, _ in bank])
    release = int(rng.uniform(0.08, 0.3) * sample_rate)
    for start, end, pitch, velocity in notes:
        near = np.flatnonzero(np.abs(pitches - pitch) <= MAX_SHIFT)
        k = int(rng.choice(near)) if len(near) else int(np.argmin(np.abs(pitches - pitch)))
        source_pitch, wave = bank[k]
        ratio = 2.0 ** ((pitch - source_pitch) / 12)  # read the recording faster to raise its pitch
        length = int((end - start) * sample_rate) + release
        pos = np.arange(min(length, int((len(wave) - 1) / ratio))) * ratio
        if len(pos) == 0:
            continue
        note = np.interp(pos, np.arange(len(wave)), wave).astype(np.float32)
        tail = max(len(note) - int((end - start) * sample_rate), 0)
        if tail:
            note[-tail:] *= np.linspace(1.0, 0.0, tail, dtype=np.float32)
        i = int(start * sample_rate)
        if i >= len(out):
            continue
        note = note[: len(out) - i]
        out[i: i + len(note)] += note * (velocity / 127.0) ** 1.5
    return out
