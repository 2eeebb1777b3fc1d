"""Instrument recognition data (cello, guitar, piano, violin).

Two sources, as the issue asks:
1. Rendered phrases (how NSynth was made): scales, arpeggios, melodies, single notes; chords
   for piano and guitar (strummed on the guitar); legato lines with vibrato and swells for
   violin and cello, in each instrument's range, at random tempi and velocities. Written as
   MIDI, played by FluidSynth through General MIDI soundfonts, then given a room (reverb), an
   EQ, noise and gain. A soundfont is held out for the test split.
2. Recordings: `<class>/<source>/<recording>` (or `<class>/<recording>`) of any length, cut
   into windows (data.hop_seconds apart). Split by recording, never by window, and by source
   where a class has several: data.real.val_sources are never trained on.

    python -m training.instruments render [--config training/configs/instruments.yaml]
        # renders the phrases of every soundfont in the config once into the cache (not committed)

The loader renders whatever is missing on demand; `python -m training.evaluate` gives the
per-class figures on the held-out recordings (val) and the held-out soundfont (test).
"""
from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .datasets import TaskData, audio_spec, cache_dir, cached_array, dataset

LABELS = ["cello", "guitar", "piano", "violin"]
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".oga"}
SOUNDFONT_DIRS = [Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"), Path("/usr/share/soundfonts")]
# the Debian packages: fluid-soundfont-gm, musescore-general-soundfont, timgm6mb-soundfont; a
# "soundfont" may also be a TiMidity++ patch set (freepats: apt-get install timidity freepats),
# played by TiMidity++ through its config
TIMIDITY_DIRS = [Path("/etc/timidity")]
DEFAULT_SOUNDFONTS = {"train": ["FluidR3_GM", "MuseScore_General"], "test": ["TimGM6mb"]}
RENDER_RATE = 16000
TICKS_PER_SECOND = 960  # 480 ticks per quarter at the default 120 bpm

# General MIDI programs and playable ranges (MIDI note numbers), as played in practice
INSTRUMENTS = {
    "piano": {"programs": [0, 1], "range": (33, 96), "chords": True},
    "guitar": {"programs": [24, 25], "range": (40, 81), "chords": True, "strum": True},
    "violin": {"programs": [40], "range": (55, 93), "vibrato": True},
    "cello": {"programs": [42], "range": (36, 72), "vibrato": True},
}
MAJOR, MINOR = [0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10]


# --- MIDI: a minimal format-0 writer (note on/off, program, pitch bend, controllers)

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


# --- phrases

def _scale_notes(rng: np.random.Generator, lo: int, hi: int) -> np.ndarray:
    root = int(rng.integers(0, 12))
    steps = MAJOR if rng.random() < 0.6 else MINOR
    return np.array([n for n in range(lo, hi + 1) if (n - root) % 12 in steps])


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
        raise ValueError(f"a shared register needs two or more of {', '.join(LABELS)}; got {instruments}")
    lo = max(INSTRUMENTS[i]["range"][0] for i in instruments)
    hi = min(INSTRUMENTS[i]["range"][1] for i in instruments)
    if hi - lo < 11:
        raise ValueError(f"{', '.join(instruments)} share less than an octave (MIDI {lo}-{hi})")
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


# --- rendering and the recording chain

def find_soundfont(name: str) -> Path:
    """The .sf2/.sf3 file called `name`*, or else the TiMidity++ config `name`.cfg."""
    for folder in SOUNDFONT_DIRS:
        for path in sorted(folder.glob(f"{name}*.sf[23]")):
            return path
    for folder in TIMIDITY_DIRS:
        if (folder / f"{name}.cfg").is_file():
            return folder / f"{name}.cfg"
    raise FileNotFoundError(f"soundfont {name!r} not found in {', '.join(map(str, SOUNDFONT_DIRS + TIMIDITY_DIRS))}: "
                            "install fluid-soundfont-gm, musescore-general-soundfont and timgm6mb-soundfont (apt), "
                            "or timidity and freepats for 'freepats'")


def _timidity_config(cfg: Path) -> tuple[set[Path], set[int]]:
    """(the sample files a TiMidity++ config plays: its patches' folders and %font soundfonts,
    the melodic programs of its bank 0). Only `dir`, `source`, `bank`, `drumset` and program lines count."""
    dirs, files, programs, section = [cfg.parent], {cfg.resolve()}, set(), None
    for line in cfg.read_text(errors="replace").splitlines():
        words = line.split("#")[0].split()
        if not words:
            continue
        if words[0] == "dir":
            dirs.insert(0, Path(words[1]))
        elif words[0] in ("bank", "drumset"):
            section = (words[0], words[1] if len(words) > 1 else "0")
        elif words[0].isdigit() and len(words) > 1:
            if section == ("bank", "0"):
                programs.add(int(words[0]))
            target = words[2].strip('"') if words[1] == "%font" and len(words) > 2 else words[1]
            for d in dirs:
                if (d / target).exists():
                    found = (d / target).resolve()
                    files.add(found if found.suffix in (".sf2", ".sf3") else found.parent)
                    break
        elif words[0] == "source" and len(words) > 1:
            sub = next((d / words[1] for d in dirs if (d / words[1]).is_file()), None)
            if sub is not None and sub.resolve() != cfg.resolve():
                more_files, more_programs = _timidity_config(sub)
                files |= more_files
                programs |= more_programs
    return files, programs


def font_files(font: Path) -> set[Path]:
    """What a font's sounds come from: the soundfont itself, or the patch folders and soundfonts
    of a TiMidity++ config (so timgm6mb.cfg and TimGM6mb.sf2 count as the same font)."""
    return _timidity_config(font)[0] if font.suffix == ".cfg" else {font.resolve()}


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


def fluidsynth_binary() -> str:
    found = shutil.which("fluidsynth")
    if not found:
        raise FileNotFoundError("fluidsynth is not installed: apt-get install fluidsynth")
    return found


def _synthesize(font: Path, mid: Path, wav: Path, timeout: float) -> None:
    """MIDI file -> mono-or-stereo wav at RENDER_RATE, with FluidSynth (.sf2/.sf3) or TiMidity++
    (.cfg), both with their own reverb and chorus off (room() adds the room)."""
    if font.suffix == ".cfg":
        binary = shutil.which("timidity")
        if not binary:
            raise FileNotFoundError("timidity is not installed: apt-get install timidity freepats")
        command = [binary, "-c", str(font), "-Ow", "--output-mono", "-s", str(RENDER_RATE), "-EFreverb=0",
                   "-EFchorus=0", "-o", str(wav), str(mid)]
    else:
        command = [fluidsynth_binary(), "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(RENDER_RATE),
                   "-F", str(wav), str(font), str(mid)]
    subprocess.run(command, check=True, capture_output=True, timeout=timeout)


def playable_programs(font: Path, instrument: str, programs: list[int] | None) -> list[int] | None:
    """The programs to draw from on this font: all of them for a soundfont (a General MIDI
    soundfont has all 128); for a TiMidity++ patch set, those it has (else the instrument's own)."""
    if font.suffix != ".cfg":
        return programs
    have = _timidity_config(font)[1]
    for wanted in (programs or [], INSTRUMENTS[instrument]["programs"]):
        kept = [q for q in wanted if q in have]
        if kept:
            return kept
    raise ValueError(f"{font.name} has no program for {instrument} (GM {INSTRUMENTS[instrument]['programs']})")


def render_phrases(soundfont: Path, instruments: list[str], seconds: float, seed: int,
                   gap: float = 1.5, timeout: float = 3600, programs: dict | None = None,
                   register: tuple[int, int] | None = None, stretch_range: tuple[int, int] | None = None) -> np.ndarray:
    """(len(instruments), samples) float32 at RENDER_RATE: one phrase per entry, all played in
    one FluidSynth (or TiMidity++) run (one MIDI file: a soundfont loads once, which takes a
    minute for a compressed .sf3), with a gap of silence after each so release tails stay in
    their clip. `programs`: {instrument: [GM programs]} to draw from instead of the instrument's
    own (on a patch set, those it has); `register`: (lo, hi) MIDI notes the phrases are folded into;
    `stretch_range`: (lo, hi) semitones, each phrase played stretch()ed by a random number in it."""
    import soundfile as sf
    rng = np.random.default_rng(seed)
    events, slot = [], seconds + gap
    for i, instrument in enumerate(instruments):
        playable = playable_programs(soundfont, instrument, (programs or {}).get(instrument))
        played = phrase(instrument, rng, seconds, playable)
        played = fold_into(played, *register) if register else played
        if stretch_range:
            played = stretch(played, int(rng.integers(stretch_range[0], stretch_range[1] + 1)))
        events += [(t + i * slot, msg) for t, msg in played]
        events.append((i * slot + seconds + min(0.3, gap / 2), bytes([0xB0, 123, 0])))  # all notes off
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "phrases.mid", Path(tmp) / "phrases.wav"
        write_midi(mid, events)
        _synthesize(soundfont, mid, wav, timeout)
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)  # our own file: no size limit
        audio = audio.mean(1)
        if rate != RENDER_RATE:
            raise RuntimeError(f"the synthesizer wrote {rate} Hz, not the {RENDER_RATE} Hz asked for")
    n, step, count = int(round(seconds * RENDER_RATE)), int(round(slot * RENDER_RATE)), len(instruments)
    audio = np.pad(audio, (0, max(0, count * step - len(audio))))
    return np.stack([audio[i * step: i * step + n] for i in range(count)]).astype(np.float32)


def room(y: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A random recording chain: reverb (an exponentially decaying noise impulse response,
    RT60 0.2-1.5 s), an EQ tilt, background noise (15-50 dB SNR) and a gain."""
    n = len(y)
    if rng.random() < 0.7:
        rt60 = rng.uniform(0.2, 1.5)
        t = np.arange(int(rt60 * sample_rate)) / sample_rate
        ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
        ir[0] = 1.0 / rng.uniform(0.15, 0.6)  # direct sound vs room
        y = np.fft.irfft(np.fft.rfft(y, 2 * n) * np.fft.rfft(ir / np.abs(ir).sum() * 4, 2 * n))[:n]
    if rng.random() < 0.6:
        freqs = np.fft.rfftfreq(n, 1 / sample_rate)
        tilt_db = rng.uniform(-6, 6) * np.log2(np.maximum(freqs, 50) / 1000) / 3  # dB per octave / 3
        y = np.fft.irfft(np.fft.rfft(y) * 10 ** (tilt_db / 20), n)
    if rng.random() < 0.6:
        power = np.mean(y ** 2) + 1e-12
        noise = rng.standard_normal(n)
        if rng.random() < 0.5:  # pink-ish: brown noise mixed in
            noise = noise + np.cumsum(rng.standard_normal(n)) * 0.02
            noise -= noise.mean()
        y = y + noise * np.sqrt(power / 10 ** (rng.uniform(15, 50) / 10) / (np.mean(noise ** 2) + 1e-12))
    peak = np.abs(y).max()
    return (y / peak * rng.uniform(0.2, 0.95) if peak > 0 else y).astype(np.float32)


PHONE_RATES = (8000, 11025, 12000, 16000)  # rates MP3 encodes at
MP3_LEVEL_MAX = 0.999  # libsndfile 1.2 refuses MP3 compression levels above about 0.9999


def phone(y: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A random phone-like chain, for training: resampled to a phone's rate (8-16 kHz, so band-
    limited to 4-8 kHz), MP3-compressed at a random bit rate, back to `sample_rate`, with noise at
    25-45 dB SNR. Same length (the codec's start delay, a few ms, shifts the sound)."""
    import io

    import soundfile as sf
    from models.audio_frontend import resample
    rate = int(rng.choice([r for r in PHONE_RATES if r <= sample_rate] or [sample_rate]))
    low = resample(np.asarray(y, np.float32), sample_rate, rate)
    buffer = io.BytesIO()
    sf.write(buffer, low, rate, format="MP3", bitrate_mode="CONSTANT", compression_level=min(float(rng.uniform(0.3, 1.0)), MP3_LEVEL_MAX))
    buffer.seek(0)
    back = resample(sf.read(buffer, dtype="float32")[0], rate, sample_rate)[:len(y)]
    back = np.pad(back, (0, len(y) - len(back)))
    noise = rng.standard_normal(len(back)).astype(np.float32)
    snr = 10 ** (rng.uniform(25, 45) / 10)
    return (back + noise * np.sqrt((np.mean(back ** 2) + 1e-12) / snr / np.mean(noise ** 2))).astype(np.float32)


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
    from . import sampler
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
    from . import bow, pluck, sampler
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


# --- recordings: <class>/<source>/<recording> or <class>/<recording>

def find_recordings(folder: Path) -> list[tuple[Path, str, str]]:
    """(path, class, source) for every audio file under folder/<class>/; source "-" when the
    files lie directly in the class folder."""
    found = []
    for label in LABELS:
        for path in sorted((Path(folder) / label).rglob("*")):
            if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
                rel = path.relative_to(Path(folder) / label).parts
                found.append((path, label, rel[0] if len(rel) > 1 else "-"))
    return found


def split_recordings(found: list[tuple[Path, str, str]], val_sources: list[str], val_share: float,
                     seed: int) -> dict[str, list[int]]:
    """Indices of train / val recordings. A source named in val_sources is all val; a class
    with no val source gives val_share of its recordings (whole recordings) to val."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in LABELS:
        idx = [i for i, (_, c, _) in enumerate(found) if c == label]
        held = [i for i in idx if found[i][2] in val_sources]
        if held:
            val += held
            train += [i for i in idx if i not in held]
        else:
            order = list(rng.permutation(idx))
            k = int(round(val_share * len(order)))
            val += order[:k]
            train += order[k:]
    return {"train": sorted(train), "val": sorted(val)}


def split_by_config(found: list[tuple[Path, str, str]], real: dict, seed: int) -> dict[str, list[int]]:
    """split_recordings with the config's data.real settings (the windows and the sampler share it)."""
    return split_recordings(found, list(real.get("val_sources", [])), float(real.get("val_share", 0.2)), seed)


def windows_of(found, indices, spec, hop_seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows (W, samples), labels (W,), recording index of each window (W,))."""
    from models.audio_frontend import load_audio, prepare, windows
    waves, labels, groups = [], [], []
    for i in indices:
        path, label, _ = found[i]
        y = prepare(load_audio(path, spec.sample_rate), spec)
        w, _ = windows(y, spec.clip_samples, int(round(hop_seconds * spec.sample_rate)), spec.sample_rate)
        waves.append(w)
        labels += [LABELS.index(label)] * len(w)
        groups += [i] * len(w)
    if not waves:
        return np.zeros((0, spec.clip_samples), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(waves).astype(np.float32), np.asarray(labels), np.asarray(groups)


def _cap_per_class(labels: np.ndarray, groups: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of windows keeping at most `cap` per class, dropping whole recordings at random
    (so no class's real recordings swamp the others)."""
    rng = np.random.default_rng(seed)
    keep = []
    for k in range(len(LABELS)):
        recs = list(rng.permutation(np.unique(groups[labels == k])))
        total = 0
        for r in recs:
            idx = np.flatnonzero(groups == r)
            if total and total + len(idx) > cap:
                continue
            keep += list(idx)
            total += len(idx)
    return np.sort(np.asarray(keep, dtype=np.int64))


def recording_windows(folder: Path, real: dict, spec, hop: float, seed: int) -> dict[str, tuple]:
    """{"train": ..., "val": ...}: (windows, labels, recording index of each window) of the
    recordings under folder, split by recording and source (split_recordings), decoded once
    and cached."""
    found = find_recordings(folder)
    if not found:
        raise FileNotFoundError(f"no recordings under {folder}/<class>/ (classes: {', '.join(LABELS)})")
    parts = split_by_config(found, real, seed)
    key = f"{folder.resolve()}|{spec.waveform_key}|{hop}|".encode() + "|".join(f"{p}:{p.stat().st_size}" for p, _, _ in found).encode()
    out = {}
    for part, idx in parts.items():
        # one cached array: the windows, then each window's label and recording index as two
        # more columns (exact in float32)
        arr = cached_array(f"instruments-real-{part}", key + repr(idx).encode(),
                           lambda idx=idx: np.column_stack(windows_of(found, idx, spec, hop)).astype(np.float32))
        out[part] = (arr[:, :-2], arr[:, -2].astype(np.int64), arr[:, -1].astype(np.int64))
    return out


@dataset("instruments")
def instruments(root: Path, cfg: dict, download: bool = False) -> TaskData:
    """train: phrases rendered with data.soundfonts.train + the training recordings; val: the
    held-out recordings (data.real.val_sources; the recording chains the model never heard);
    test: phrases rendered with the held-out data.soundfonts.test."""
    from models.audio_frontend import fix_length, prepare, resample
    d = cfg["data"]
    spec = audio_spec(cfg)
    seed = int(cfg["train"].get("seed", 0))
    fonts = d.get("soundfonts") or DEFAULT_SOUNDFONTS
    overlap = (set().union(*(font_files(find_soundfont(n)) for n in fonts["train"]))
               & set().union(*(font_files(find_soundfont(n)) for n in fonts["test"])))
    if overlap:
        raise ValueError(f"soundfonts {sorted(p.name for p in overlap)} are in both train and test")
    leaks = shared_samples(fonts["train"], fonts["test"])
    if leaks:
        a, b, n = leaks[0]
        raise ValueError(f"training soundfont {a} shares {n} recorded samples with held-out {b}: "
                         "the test would measure what was trained on; train on another font")
    phrases, seconds = int(d.get("phrases", 200)), float(d.get("phrase_seconds", spec.clip_seconds))

    def as_clips(w):
        return np.stack([fix_length(prepare(resample(c, RENDER_RATE, spec.sample_rate), spec), spec.clip_samples)
                         for c in np.asarray(w)])

    train_programs = d.get("train_programs") or {}
    unknown = set(train_programs) - set(LABELS)
    if unknown:
        raise ValueError(f"data.train_programs: unknown instrument(s) {sorted(unknown)}; expected some of {LABELS}")
    if not all(isinstance(v, list) and v and all(isinstance(q, int) and 0 <= q <= 127 for q in v)
               for v in train_programs.values()):
        raise ValueError("data.train_programs: each instrument needs a list of General MIDI programs (0-127)")

    def rendered(names, offset, programs=None, recordings=None):
        sets = [rendered_set(name, phrases, seconds, seed + offset + j, programs) for j, name in enumerate(names)]
        if recordings is not None:  # the phrases as rendered, before as_clips: what a user would hand the app
            recordings += [(RENDER_RATE, c) for w, _ in sets for c in w]
        return np.concatenate([as_clips(w) for w, _ in sets]), np.concatenate([y for _, y in sets])

    test_recordings: list = []  # the held-out phrases as rendered (TaskData.test_inputs)
    # data.test_only: the test split alone, built as always, and no training sets (a quick check of
    # what the app serves on the test split: tests/test_agreement.py)
    if d.get("test_only"):
        x_te, y_te = rendered(fonts["test"], 1000, recordings=test_recordings)
        empty = TensorDataset(torch.zeros(0, spec.clip_samples), torch.zeros(0, dtype=torch.int64))
        return TaskData(empty, empty, TensorDataset(torch.from_numpy(np.ascontiguousarray(x_te, np.float32)),
                                                    torch.from_numpy(np.asarray(y_te, np.int64))),
                        labels=list(LABELS), preprocessing=spec.to_dict(),
                        description=f"test: {len(y_te)} phrases rendered with held-out {', '.join(fonts['test'])}; "
                                    f"{spec.clip_seconds:g} s at {spec.sample_rate} Hz (test split only)",
                        test_inputs=test_recordings)
    # train_programs: the programs the training fonts play instead of the instruments' own (list
    # those too to keep them); the held-out font always plays the instruments' own
    x_tr, y_tr = rendered(fonts["train"], 0, train_programs or None)
    x_te, y_te = rendered(fonts["test"], 1000, recordings=test_recordings)
    # data.shared_register: {instruments: [...], phrases: N}: N more phrases of each of those
    # instruments per training font, all in the register they share (timbre, not pitch, tells them apart)
    reg = d.get("shared_register") or {}
    n_variants, variants_text = 0, ""
    if reg:
        if not isinstance(reg, dict) or not isinstance(reg.get("phrases"), int) or reg["phrases"] < 1:
            raise ValueError("data.shared_register needs {instruments: [two or more], phrases: N >= 1}")
        lo, hi = shared_register(list(reg.get("instruments") or []))
        for j, name in enumerate(fonts["train"]):
            w, y = variant_set(name, list(reg["instruments"]), reg["phrases"], seconds, seed + j,
                               train_programs or None, register=True)
            x_tr, y_tr = np.concatenate([x_tr, as_clips(w)]), np.concatenate([y_tr, y])
            n_variants += len(y)
        variants_text = (f"{n_variants} {' and '.join(l for l in LABELS if l in reg['instruments'])} phrases in "
                         f"their shared register (MIDI {lo}-{hi}) + ")
    # data.stretched: {phrases: N, semitones: [lo, hi], instruments: [...] (default all)}: N more
    # phrases of each instrument per training font, each stretch()ed by lo..hi semitones: played
    # from the sample a sparsely sampled soundfont would stretch over those keys
    st = d.get("stretched") or {}
    if st:
        top = STRETCH_BEND_RANGE - 2
        names, span = (st.get("instruments") or list(LABELS), st.get("semitones")) if isinstance(st, dict) else ([], None)
        if not (isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span)
                and 0 <= span[0] <= span[1] <= top and isinstance(st.get("phrases"), int) and st["phrases"] >= 1
                and set(names) <= set(LABELS)):
            raise ValueError(f"data.stretched needs {{phrases: N >= 1, semitones: [lo, hi] with 0 <= lo <= hi <= {top}}}, "
                             f"and instruments among {LABELS}")
        for j, name in enumerate(fonts["train"]):
            w, y = variant_set(name, names, st["phrases"], seconds, seed + j, train_programs or None,
                               stretch_range=tuple(span))
            x_tr, y_tr = np.concatenate([x_tr, as_clips(w)]), np.concatenate([y_tr, y])
            n_variants += len(y)
        variants_text += (f"{st['phrases'] * len(names) * len(fonts['train'])} phrases stretched by "
                          f"{span[0]}-{span[1]} semitones + ")
    real = d.get("real") or {}
    n_sampled = 0
    if real.get("folder") and d.get("sampled_phrases"):
        w, y = sampled_set(Path(root) / real["folder"], real, int(d["sampled_phrases"]), seconds, seed)
        x_tr, y_tr, n_sampled = np.concatenate([x_tr, as_clips(w)]), np.concatenate([y_tr, y]), len(y)
    # physically modelled instruments: data.plucked_phrases guitar phrases, data.bowed_phrases
    # cello and as many violin phrases
    n_modelled = {"guitar": int(d.get("plucked_phrases") or 0), "cello": int(d.get("bowed_phrases") or 0)}
    n_modelled["violin"] = n_modelled["cello"]
    for instrument, count in n_modelled.items():
        if count:
            w, y = modelled_set(instrument, count, seconds, seed)
            x_tr, y_tr = np.concatenate([x_tr, as_clips(w)]), np.concatenate([y_tr, y])
    x_val, y_val = np.zeros((0, spec.clip_samples), np.float32), np.zeros(0, np.int64)
    n_real = {"train": 0, "val": 0}
    if real.get("folder"):
        parts = recording_windows(Path(root) / real["folder"], real, spec, float(d.get("hop_seconds", 1.0)), seed)
        (xr, yr, gr), (x_val, y_val, _) = parts["train"], parts["val"]
        keep = _cap_per_class(yr, gr, int(real.get("cap_per_class", 300)), seed)
        x_tr, y_tr = np.concatenate([x_tr, xr[keep]]), np.concatenate([y_tr, yr[keep]])
        n_real = {"train": int(len(keep)), "val": int(len(y_val))}
    share = float(d.get("phone_share", 0.0))  # training clips heard through a random phone-like chain
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"data.phone_share must be between 0 and 1, not {share}")
    n_phone = int(round(share * len(y_tr)))
    if n_phone:
        rng = np.random.default_rng(seed + 17)
        x_tr = np.array(x_tr, np.float32)
        for i in rng.choice(len(y_tr), n_phone, replace=False):
            x_tr[i] = fix_length(prepare(phone(x_tr[i], rng, spec.sample_rate), spec), spec.clip_samples)
    as_set = lambda x, y: TensorDataset(torch.from_numpy(np.ascontiguousarray(x, np.float32)),  # noqa: E731
                                        torch.from_numpy(np.asarray(y, np.int64)))
    desc = (f"train: {len(y_tr) - n_real['train'] - n_sampled - sum(n_modelled.values()) - n_variants} phrases "
            f"rendered with {', '.join(fonts['train'])} + " + variants_text
            + (f"{n_sampled} phrases played with the training recordings' notes + " if n_sampled else "")
            + (f"{n_modelled['guitar']} guitar phrases on modelled guitars + " if n_modelled["guitar"] else "")
            + (f"{n_modelled['cello']} cello and {n_modelled['violin']} violin phrases on modelled bowed strings + "
               if n_modelled["cello"] else "")
            + f"{n_real['train']} windows of training recordings"
            + (f" ({n_phone} of all of them through a random phone-like chain)" if n_phone else "")
            + f"; val: {n_real['val']} windows of held-out recordings "
            f"({', '.join(real.get('val_sources', [])) or 'none'} + {real.get('val_share', 0.2):.0%} of "
            f"single-source classes, by recording); test: {len(y_te)} phrases rendered with held-out "
            f"{', '.join(fonts['test'])}; {spec.clip_seconds:g} s at {spec.sample_rate} Hz")
    return TaskData(as_set(x_tr, y_tr), as_set(x_val, y_val), as_set(x_te, y_te), labels=list(LABELS),
                    preprocessing=spec.to_dict(), description=desc, test_inputs=test_recordings)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render the phrases of every soundfont in the config (cached)")
    r.add_argument("--config", default="training/configs/instruments.yaml")
    r.add_argument("--data-dir")
    args = parser.parse_args(argv)
    from .config import data_dir, load_config
    from .datasets import load_task_data
    cfg = load_config(args.config)
    try:
        data = load_task_data(cfg, Path(args.data_dir) if args.data_dir else data_dir(cfg))
    except (FileNotFoundError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(data.description)
    print(f"cache: {cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
