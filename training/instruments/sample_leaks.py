"""The leak check: the recorded samples of a SoundFont, hashed, so that a training font built from
the held-out font's recordings is refused (the test would measure what was trained on)."""
from __future__ import annotations

import functools
from pathlib import Path

from .soundfonts import find_soundfont

SHARED_SAMPLES_MAX = 10  # a training and a held-out soundfont sharing more recorded samples than this: refused


def _riff_chunks(data: bytes, start: int, end: int):
    """(id, offset of the body, size) of each chunk in data[start:end]; a LIST chunk's own
    chunks follow it (its body starts with a 4-byte type)."""
    at = start
    while at + 8 <= end:
        cid, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        yield cid, at + 8, size
        if cid in (b"RIFF", b"LIST"):
            yield from _riff_chunks(data, at + 12, min(at + 8 + size, end))
        at += 8 + size + (size & 1)


def sample_hashes(font: Path) -> set[str]:
    """Hashes of the recorded samples (sample_ranges) of a SoundFont (.sf2/.sf3); empty for anything else."""
    return set(_sample_hashes(str(Path(font).resolve()), Path(font).stat().st_size)) \
        if Path(font).suffix in (".sf2", ".sf3") else set()


def sample_ranges(data: bytes, sf3: bool = False) -> list[tuple[int, int]]:
    """Byte ranges (in `data`, a whole .sf2/.sf3 file) of its recorded samples: the sdta/smpl
    data cut by the pdta/shdr sample headers; samples under 2048 frames (256 bytes of an
    Ogg-compressed .sf3) left out."""
    chunks = {cid: (at, n) for cid, at, n in _riff_chunks(data, 0, len(data)) if cid in (b"smpl", b"shdr")}
    if len(chunks) < 2:
        return []
    (s_at, s_n), (h_at, h_n) = chunks[b"smpl"], chunks[b"shdr"]
    out = []
    for k in range(h_n // 46 - 1):  # the last header is the terminal "EOS"
        start, end = (int.from_bytes(data[h_at + 46 * k + o:h_at + 46 * k + o + 4], "little") for o in (20, 24))
        lo, hi = (start, end) if sf3 else (2 * start, 2 * end)  # .sf3: byte offsets, .sf2: 16-bit frames
        if end - start >= (256 if sf3 else 2048) and hi <= s_n:
            out.append((s_at + lo, s_at + hi))
    return out


@functools.lru_cache(maxsize=16)
def _sample_hashes(path: str, size: int) -> tuple[str, ...]:
    import hashlib
    data = Path(path).read_bytes()
    return tuple(hashlib.sha1(data[lo:hi]).hexdigest() for lo, hi in sample_ranges(data, path.endswith(".sf3")))


def shared_samples(train: list[str], test: list[str]) -> list[tuple[str, str, int]]:
    """(training font, held-out font, how many recorded samples they share) for each pair that
    shares more than SHARED_SAMPLES_MAX: another soundfont built from the held-out font's
    recordings (e.g. csound's sf_GMbank holds most of TimGM6mb's) would leak the test set."""
    found = []
    for a in train:
        for b in test:
            n = len(sample_hashes(find_soundfont(a)) & sample_hashes(find_soundfont(b)))
            if n > SHARED_SAMPLES_MAX:
                found.append((a, b, n))
    return found

