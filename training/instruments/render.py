"""Synthesis: phrases written as one MIDI file and played by FluidSynth (a .sf2/.sf3 soundfont) or
TiMidity++ (a patch set's .cfg), at RENDER_RATE, cut back into one clip per phrase."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .midi import write_midi
from .phrases import INSTRUMENTS, fold_into, phrase, stretch
from .soundfonts import _timidity_config

RENDER_RATE = 16000


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
