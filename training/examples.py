"""python -m training.examples [--data-dir DIR]: (re)make the app's example recordings.

A few real recordings from sets whose licence allows redistribution with attribution (ESC-50
CC BY-NC 3.0, FSDD CC BY-SA 4.0, the Headroom piano CC BY 4.0, VSCO 2 / Bach Violin Dataset /
Iowa acoustic guitar CC BY 3.0; nothing from Philharmonia), plus one cello phrase we render with
FluidSynth and FluidR3_GM (MIT). Of each kind the candidate that the task's default model gets
right with the highest probability is kept, so the first thing a visitor sees is not the model
failing on our own example; tests/test_examples.py checks that still holds. Writes the files,
`assets/examples/examples.json` (what the app lists) and `assets/examples/ATTRIBUTION.md`.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from models.errors import cli_main

from .common import ROOT
from .config import DEFAULT_DATA_DIR

OUT = ROOT / "assets" / "examples"
MAX_TOTAL_BYTES = 1_500_000
ESC50_CLASSES = ["dog", "rain", "siren", "church_bells", "crying_baby"]
ESC50_SCENE = ["dog", "siren", "church_bells"]
ESC50_CREDIT = ("ESC-50 (K. J. Piczak, 2015), clip from freesound.org sound {src}", "CC BY-NC 3.0")
FSDD_CREDIT = ("Free Spoken Digit Dataset (Z. Jackson et al.), speaker {speaker}", "CC BY-SA 4.0")
INSTRUMENTS = {  # label -> (folder, candidate files (glob patterns), source, licence, excerpt (start, seconds) or None)
    "piano": ("piano/headroom", [f"HEADROOM_PIANO_LEVEL3_CLOSE_{d}?.ogg" for d in (5, 6, 7)],  # MIDI 50-79
              "Headroom Piano (sfzinstruments), Yamaha C3 note", "CC BY 4.0", None),
    "violin": ("violin/bach-john-garner", ["john-garner_bwv1002_mov6.ogg", "john-garner_bwv1002_mov8.ogg"],
               "Bach Violin Dataset, John Garner's performance (excerpt)", "CC BY 3.0", (20.0, 8.0)),
    "guitar": ("guitar/iowa-acoustic", ["E3.ogg", "A3.ogg", "D3.ogg", "G3.ogg", "B3.ogg"],
               "University of Iowa MIS acoustic guitar note (via tonejs-instruments)", "CC BY 3.0", None),
}
FSDD_DIGITS = ["3", "7", "9"]
FSDD_SPEAKER = "theo"  # the spoken-digit model's unseen test speaker


def _best(model_id: str, expected: str, candidates: list) -> tuple[object, float] | None:
    """The candidate (a path or an array) the model puts on `expected` with the highest probability, if any is right."""
    from models import load_predictor
    p = load_predictor(model_id)
    best = None
    for c in candidates:
        probs = p.predict(c)
        top = next(iter(probs))
        if top == expected and (best is None or probs[top] > best[1]):
            best = (c, probs[top])
    return best


def _write_ogg(path: Path, y: np.ndarray, rate: int) -> None:
    """Peak at 0.8: Vorbis decodes loud material a little beyond the peak it was given, and the app
    reports samples beyond full scale."""
    y = 0.8 * y / max(float(np.abs(y).max()), 1e-9)
    sf.write(path, y.astype(np.float32), rate, format="OGG", subtype="VORBIS")


def make(data: Path, log=print) -> list[dict]:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob("*.ogg"), *OUT.glob("*.wav")]:
        old.unlink()
    items = _esc50_items(data, log) + _instrument_items(data, log) + _cello(log) + _digit_items(data, log)
    (OUT / "examples.json").write_text(json.dumps(items, indent=1) + "\n")
    write_attribution(items)
    total = sum((OUT / i["file"]).stat().st_size for i in items)
    log(f"{len(items)} examples, {total / 1e6:.2f} MB in {OUT}")
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"examples take {total / 1e6:.2f} MB, over {MAX_TOTAL_BYTES / 1e6:g} MB")
    return items




def _esc50_items(data: Path, log) -> list[dict]:
    """A fold-5 clip per class the ESC-50 model gets right, and a 15 s scene of three of them."""
    from models.audio_loading import load_audio
    items = []
    rows = list(csv.DictReader(open(data / "esc50" / "meta" / "esc50.csv", newline="")))
    chosen = {}
    for label in ESC50_CLASSES + [c for c in ESC50_SCENE if c not in ESC50_CLASSES]:
        cands = [data / "esc50" / "audio" / r["filename"] for r in rows if r["category"] == label and r["fold"] == "5"]
        best = _best("esc50", label, cands)
        if best is None:
            log(f"no fold-5 {label} clip is classified right; left out")
            continue
        path = Path(best[0])
        chosen[label] = path
        src = next(r["src_file"] for r in rows if r["filename"] == path.name)
        if label in ESC50_CLASSES:
            name = f"esc50-{label.replace('_', '-')}.ogg"
            (OUT / name).write_bytes(path.read_bytes())
            items.append({"file": name, "tab": "sound", "label": f"{label.replace('_', ' ')} (ESC-50)",
                          "model": "esc50", "expected": label, "source": ESC50_CREDIT[0].format(src=src) +
                          f" ({path.name})", "licence": ESC50_CREDIT[1]})
    if all(c in chosen for c in ESC50_SCENE):
        rate = 22050
        y = np.concatenate([load_audio(chosen[c], rate)[: 5 * rate] for c in ESC50_SCENE])
        _write_ogg(OUT / "esc50-scene-15s.ogg", y, rate)
        srcs = ", ".join(chosen[c].name for c in ESC50_SCENE)
        items.append({"file": "esc50-scene-15s.ogg", "tab": "sound", "label": "15 s: dog, siren, church bells (timeline)",
                      "model": "esc50", "expected": None, "source": f"ESC-50 (K. J. Piczak, 2015) clips {srcs} "
                      "(freesound.org), one after the other", "licence": ESC50_CREDIT[1]})
    return items


def _instrument_items(data: Path, log) -> list[dict]:
    """A real recording (or an excerpt) per instrument that the instruments model gets right."""
    from models.audio_loading import load_audio
    items = []
    for label, (folder, files, source, licence, excerpt) in INSTRUMENTS.items():
        paths = [p for pattern in files for p in sorted((data / "instruments" / folder).glob(pattern))]
        if excerpt:
            start, seconds = excerpt
            cands = [load_audio(p, 22050)[int(start * 22050): int((start + seconds) * 22050)] for p in paths]
            cands = [(22050, c) for c in cands]
        else:
            cands = paths
        best = _best("instruments", label, cands)
        if best is None:
            log(f"no {label} candidate is classified right; left out")
            continue
        name = f"instrument-{label}.ogg"
        if excerpt:
            _write_ogg(OUT / name, best[0][1], 22050)
            what = f"{paths[cands.index(best[0])].name}, {excerpt[1]:g} s from {excerpt[0]:g} s"
        else:
            (OUT / name).write_bytes(Path(best[0]).read_bytes())
            what = Path(best[0]).name
        items.append({"file": name, "tab": "sound", "label": f"{label} (real recording)", "model": "instruments",
                      "expected": label, "source": f"{source}: {what}", "licence": licence})
    return items


def _digit_items(data: Path, log) -> list[dict]:
    """A spoken digit per FSDD_DIGITS by one speaker, recognised right."""
    items = []
    for digit in FSDD_DIGITS:
        cands = sorted((data / "fsdd" / "recordings").glob(f"{digit}_{FSDD_SPEAKER}_*.wav"))[:10]
        best = _best("spoken-digits", digit, cands)
        if best is None:
            log(f"no spoken {digit} is classified right; left out")
            continue
        name = f"digit-{digit}.wav"
        (OUT / name).write_bytes(Path(best[0]).read_bytes())
        items.append({"file": name, "tab": "digits", "label": f"spoken {digit} (FSDD)", "model": "spoken-digits",
                      "expected": digit, "source": FSDD_CREDIT[0].format(speaker=FSDD_SPEAKER) + f": {Path(best[0]).name}",
                      "licence": FSDD_CREDIT[1]})
    return items


def _cello(log) -> list[dict]:
    """A cello phrase rendered with FluidSynth and FluidR3_GM (no cello recording may be redistributed)."""
    import subprocess
    from .instruments.render import RENDER_RATE, render_phrases
    from .instruments.soundfonts import find_soundfont
    try:
        font = find_soundfont("FluidR3_GM")
        clips = [render_phrases(font, ["cello"], 4.0, seed=s, timeout=60)[0] for s in range(200, 206)]
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log(f"cello example skipped: {str(exc).splitlines()[0]}")
        return []
    best = _best("instruments", "cello", [(RENDER_RATE, c) for c in clips])
    if best is None:
        log("no rendered cello phrase is classified right; left out")
        return []
    y = best[0][1]
    _write_ogg(OUT / "instrument-cello.ogg", y, RENDER_RATE)
    return [{"file": "instrument-cello.ogg", "tab": "sound", "label": "cello (rendered phrase)", "model": "instruments",
             "expected": "cello", "source": "rendered for this project with FluidSynth and the FluidR3_GM soundfont "
             "(F. Wen, MIT licence)", "licence": "MIT (soundfont); the rendering is ours"}]


def write_attribution(items: list[dict]) -> Path:
    lines = ["# Example recordings: sources and licences", "",
             "Made by `python -m training.examples` from the sets named below; each file keeps its licence.",
             "`examples.json` (written by the same command, ours) lists them for the app: file, tab, label, "
             "the model that must get it right and that model's expected answer.", "",
             "| file | what | source | licence |", "|---|---|---|---|"]
    lines += [f"| `{i['file']}` | {i['label']} | {i['source']} | {i['licence']} |" for i in items]
    path = OUT / "ATTRIBUTION.md"
    path.write_text("\n".join(lines) + "\n")
    return path


@cli_main()
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    import os
    data = Path(args.data_dir or os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR)
    make(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
