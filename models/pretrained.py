"""The AudioSet-pretrained base (EfficientAT mn04, MIT): where its files are, and fetching them.

The base is never part of this repository: a checkpoint built on it stores what training
changed plus the base's name and sha256 (models.checkpoint joins the two). Looked up, in order:
$XAI_LAB_PRETRAINED/<name>/ (when set, instead of the next two), $DATA_DIR/pretrained/<name>/, ../shared/data/pretrained/<name>/
beside the checkout, then the download cache ($HF_HOME/xai-lab/<name>/, normally
~/.cache/huggingface/xai-lab/<name>/). Nothing is downloaded unless asked:
`python -m models.pretrained --download` (what `make demo` runs), or the app's start-up on a
Hugging Face Space (SPACE_ID set).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ModelUnavailable, cli_main

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED_ENV = "XAI_LAB_PRETRAINED"
FETCH_COMMAND = "python -m models.pretrained --download"
DOWNLOAD_CHUNK = 1 << 20
DOWNLOAD_TIMEOUT = 60.0


@dataclass(frozen=True)
class BaseFile:
    name: str
    url: str
    sha256: str


@dataclass(frozen=True)
class Base:
    name: str
    weights: BaseFile
    labels: BaseFile
    credit: str

    def files(self) -> tuple[BaseFile, ...]:
        return (self.weights, self.labels)


MN04 = Base(
    name="efficientat-mn04",
    weights=BaseFile("mn04_as_mAP_432.pt",
                     "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt",
                     "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"),
    labels=BaseFile("class_labels_indices.csv",
                    "https://raw.githubusercontent.com/fschmid56/EfficientAT/main/metadata/class_labels_indices.csv",
                    "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429"),
    credit=("EfficientAT mn04 (F. Schmid, K. Koutini, G. Widmer, \"Efficient Large-Scale Audio Tagging via "
            "Transformer-to-CNN Knowledge Distillation\", ICASSP 2023), AudioSet mAP 0.432; weights and code "
            "MIT licence, Copyright (c) 2022 Florian Schmid; AudioSet class names CC BY 4.0"),
)
BASES = {MN04.name: MN04}


def download_dir(name: str) -> Path:
    hf_home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return hf_home / "xai-lab" / name


def candidate_dirs(name: str) -> list[Path]:
    """Where the base may be; $XAI_LAB_PRETRAINED, when set, replaces the data folders."""
    if os.environ.get(PRETRAINED_ENV):
        return [Path(os.environ[PRETRAINED_ENV]) / name, download_dir(name)]
    dirs = []
    if os.environ.get("DATA_DIR"):
        dirs.append(Path(os.environ["DATA_DIR"]) / "pretrained" / name)
    dirs += [ROOT.parent / "shared" / "data" / "pretrained" / name, download_dir(name)]
    return dirs


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(DOWNLOAD_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def find(base: Base = MN04) -> Path | None:
    """The first folder that holds all the base's files, or None."""
    for d in candidate_dirs(base.name):
        if all((d / f.name).is_file() for f in base.files()):
            return d
    return None


def missing_message(base: Base = MN04) -> str:
    return (f"The AudioSet-pretrained base {base.name} is not on this machine; fetch it once with: "
            f"{FETCH_COMMAND} (about 4 MB, from the official EfficientAT release)")


@lru_cache(maxsize=4)
def _verified(path: str, sha256: str) -> bool:
    return sha256_of(Path(path)) == sha256


def path_of(f: BaseFile, base: Base = MN04) -> Path:
    """The base file, checked against its sha256 (once per process); ModelUnavailable if absent or altered."""
    folder = find(base)
    if folder is None:
        raise ModelUnavailable(missing_message(base))
    path = folder / f.name
    if not _verified(str(path), f.sha256):
        raise ModelUnavailable(f"{path} is not the expected {base.name} file (sha256 differs); delete it and run "
                               f"{FETCH_COMMAND}")
    return path


def load_state(base: Base = MN04) -> dict:
    import torch
    return torch.load(path_of(base.weights, base), map_location="cpu", weights_only=True)


@lru_cache(maxsize=4)
def labels(name: str = MN04.name) -> list[str]:
    """The base's class names in output order (AudioSet's display names)."""
    base = BASES[name]
    with open(path_of(base.labels, base), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["display_name"] for r in sorted(rows, key=lambda r: int(r["index"]))]


def fetch(base: Base = MN04, dest: Path | None = None, timeout: float = DOWNLOAD_TIMEOUT, log=print) -> Path:
    """Download the base's files that are not already present into `dest` (default: the
    download cache), each checked against its sha256 before it is put in place."""
    have = find(base)
    if have is not None and dest is None:
        return have
    dest = Path(dest or download_dir(base.name))
    dest.mkdir(parents=True, exist_ok=True)
    for f in base.files():
        target = dest / f.name
        if target.is_file() and sha256_of(target) == f.sha256:
            continue
        log(f"downloading {f.url} -> {target}")
        with tempfile.NamedTemporaryFile(dir=dest, delete=False) as tmp:
            try:
                with urllib.request.urlopen(f.url, timeout=timeout) as response:
                    shutil.copyfileobj(response, tmp, DOWNLOAD_CHUNK)
                tmp.close()
                got = sha256_of(Path(tmp.name))
                if got != f.sha256:
                    raise ModelUnavailable(f"{f.url} gave a file with sha256 {got[:12]}..., not the expected "
                                           f"{f.sha256[:12]}...; nothing was kept")
                Path(tmp.name).replace(target)
            except OSError as exc:
                raise ModelUnavailable(f"cannot download {f.url}: {exc}") from None
            finally:
                Path(tmp.name).unlink(missing_ok=True)
    _verified.cache_clear()
    labels.cache_clear()
    return dest


@cli_main()
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Where the AudioSet-pretrained base is; --download fetches it.")
    parser.add_argument("--download", action="store_true", help="download it if missing (about 4 MB)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    say = (lambda *_: None) if args.quiet else print
    folder = fetch(log=say) if args.download else find()
    if folder is None:
        print(missing_message(), file=sys.stderr)
        return 2
    for f in MN04.files():
        path_of(f)
    say(f"{MN04.name}: {folder} (sha256 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
