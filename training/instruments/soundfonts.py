"""Where the fonts are: a soundfont (.sf2/.sf3) by name, or a TiMidity++ patch set by its config,
and what files a font's sounds come from."""
from __future__ import annotations

from pathlib import Path

SOUNDFONT_DIRS = [Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"), Path("/usr/share/soundfonts")]
# the Debian packages: fluid-soundfont-gm, musescore-general-soundfont, timgm6mb-soundfont; a
# "soundfont" may also be a TiMidity++ patch set (freepats: apt-get install timidity freepats),
# played by TiMidity++ through its config
TIMIDITY_DIRS = [Path("/etc/timidity")]
DEFAULT_SOUNDFONTS = {"train": ["FluidR3_GM", "MuseScore_General"], "test": ["TimGM6mb"]}


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

