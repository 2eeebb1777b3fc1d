"""A sampler made of recorded notes: the phrases of training/instruments.py played with the
training recordings' own single notes (the way NSynth-like sets are built from sample
libraries), so that phrases - chords, arpeggios, scales - also come in real timbres, not only in
those of the training soundfonts (FluidR3_GM and MuseScore_General share their guitar and
violin samples: one timbre each).

A note's pitch is read from its file name (note names as in "A4", "Cs4", "Ab5", or a MIDI
number as the last part of the name, as in Headroom's "..._CLOSE_60"); files whose pitch cannot
be read (whole performances) or that hold harmonics, phrases, trills or glissandi are left out.
Some libraries name their octaves one off (tonejs-instruments' "A3" sounds at 440 Hz), so each
source folder's octave is checked against the estimated pitch (YIN) of its notes and corrected
by the median difference in whole octaves. Each note event takes a
recording within a few semitones, shifted to its pitch by resampling, cut to its duration with a
short release, and scaled by its velocity.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NOTE = re.compile(r"^([A-G])(s|#|b)?(-?\d)$")
MAX_SHIFT = 4  # semitones a recording may be moved


def pitch_of(path: Path) -> int | None:
    """MIDI pitch from a note file's name, or None."""
    stem = Path(path).stem
    if any(word in stem.lower() for word in ("harmonic", "phrase", "trill", "gliss")):
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


def estimated_pitch(y: np.ndarray, sample_rate: int) -> float:
    """Median YIN pitch (MIDI, fractional) over the first second of a note; nan if unvoiced."""
    import librosa
    part = y[: sample_rate]
    if len(part) < 2048:
        return float("nan")
    f0 = librosa.yin(part, fmin=30, fmax=min(4200, sample_rate / 2 - 1), sr=sample_rate, frame_length=2048)
    return float(librosa.hz_to_midi(np.median(f0))) if np.isfinite(f0).any() else float("nan")


def octave_offsets(named: list[tuple[Path, int, float]]) -> dict[Path, int]:
    """{source folder: octaves to add to its names' pitches}: the median whole-octave difference
    between the named and the estimated pitch of its notes (0 where they agree)."""
    by_source: dict[Path, list[int]] = {}
    for path, pitch, est in named:
        if np.isfinite(est):
            by_source.setdefault(Path(path).parent, []).append(int(round((est - pitch) / 12)))
    return {src: int(np.median(d)) for src, d in by_source.items()}


def note_bank(files: list[tuple[Path, str]], sample_rate: int, seconds: float = 6.0) -> dict[str, list]:
    """{label: [(pitch, waveform), ...]} of the files (path, label) whose pitch is known; each
    note starts at its onset (leading silence cut), lasts at most `seconds`, and its named
    pitch is corrected by its source's octave offset."""
    from models.audio_loading import load_audio
    notes = []
    for path, label in files:
        pitch = pitch_of(path)
        if pitch is None:
            continue
        y = load_audio(path, sample_rate)
        peak = float(np.abs(y).max()) if len(y) else 0.0
        if peak <= 0:
            continue
        onset = int(np.argmax(np.abs(y) > peak * 10 ** (-30 / 20)))
        y = (y[onset: onset + int(seconds * sample_rate)] / peak).astype(np.float32)
        notes.append((path, label, pitch, y, estimated_pitch(y, sample_rate)))
    offsets = octave_offsets([(p, pitch, est) for p, _, pitch, _, est in notes])
    for src, k in sorted(offsets.items()):
        if k:
            print(f"{src}: named {abs(k)} octave(s) {'low' if k > 0 else 'high'}; corrected", file=sys.stderr)
    bank: dict[str, list] = {}
    for path, label, pitch, y, _ in notes:
        bank.setdefault(label, []).append((pitch + 12 * offsets.get(Path(path).parent, 0), y))
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
        # the release: a fade over what follows the note's end, or over the end of a recording
        # shorter than the note (no click either way)
        tail = min(max(len(note) - int((end - start) * sample_rate), release), len(note))
        note[len(note) - tail:] *= np.linspace(1.0, 0.0, tail, dtype=np.float32)
        i = int(start * sample_rate)
        if i >= len(out):
            continue
        note = note[: len(out) - i]
        out[i: i + len(note)] += note * (velocity / 127.0) ** 1.5
    return out
