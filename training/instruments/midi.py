"""MIDI: a minimal format-0 writer (note on/off, program, pitch bend, controllers)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

TICKS_PER_SECOND = 960  # 480 ticks per quarter at the default 120 bpm


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def write_midi(path: Path, events: list[tuple[float, bytes]]) -> None:
    """events: (time in seconds, raw channel message); written in time order at 120 bpm."""
    track, now = bytearray(), 0
    for t, msg in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):  # note-offs first
        tick = int(round(t * TICKS_PER_SECOND))
        track += _vlq(max(tick - now, 0)) + msg
        now = max(tick, now)
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (480).to_bytes(2, "big")
    path.write_bytes(header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track))


def _note(t0: float, t1: float, pitch: int, velocity: int) -> list[tuple[float, bytes]]:
    return [(t0, bytes([0x90, pitch, velocity])), (t1, bytes([0x80, pitch, 0]))]


def _bend(t: float, semitones: float) -> tuple[float, bytes]:
    value = int(np.clip(8192 + semitones / 2.0 * 8192, 0, 16383))  # default bend range: +-2 semitones
    return t, bytes([0xE0, value & 0x7F, value >> 7])
