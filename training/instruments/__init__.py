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

The modules, lowest first: labels, midi, phrases, soundfonts, sample_leaks, render,
recording_chain, recordings, cached_sets, checks (the config's data sections), loader; the
command line is __main__. Below: the names other code uses (the loader, and what tests use).
"""
from .cached_sets import modelled_set, rendered_set, sampled_set
from .labels import LABELS
from .loader import instruments
from .midi import _bend, _note, _vlq, write_midi
from .phrases import INSTRUMENTS, fold_into, phrase, shared_register, stretch
from .recording_chain import phone, room
from .recordings import find_recordings, split_recordings, windows_of
from .render import RENDER_RATE, _synthesize, playable_programs, render_phrases
from .sample_leaks import sample_hashes, sample_ranges, shared_samples
from .soundfonts import SOUNDFONT_DIRS, _timidity_config, find_soundfont, font_files

__all__ = ["INSTRUMENTS", "LABELS", "RENDER_RATE", "SOUNDFONT_DIRS", "_bend", "_note", "_synthesize",
           "_timidity_config", "_vlq", "find_recordings", "find_soundfont", "fold_into", "font_files", "instruments",
           "modelled_set", "phone", "phrase", "playable_programs", "render_phrases", "rendered_set", "room",
           "sample_hashes", "sample_ranges", "sampled_set", "shared_register", "shared_samples", "split_recordings",
           "stretch", "windows_of", "write_midi"]
