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
command line is __main__. Here: the loader and its data section's schema (training/dataset_registry.py).
"""

from .loader import InstrumentsData, instruments

__all__ = ["InstrumentsData", "instruments"]
