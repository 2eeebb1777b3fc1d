"""Glue shared by the tabs: safe upload components, user-facing errors, examples."""
from __future__ import annotations

import functools
import logging
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from models.errors import InputError, ModelUnavailable

log = logging.getLogger("demo")
EXAMPLES_DIR = Path(tempfile.gettempdir()) / "xai-lab-examples"
PREDICTED = "(predicted class)"  # the target-class choice that means "the model's top class"
# the example recordings shipped with the app (python -m training.examples makes them)
EXAMPLES_MANIFEST = Path(__file__).resolve().parent.parent / "assets" / "examples" / "examples.json"
# The files a request returns (overlays, sounds, sweep downloads) are written here, each request
# in a folder of its own: two requests never write the same path, and no one reads a file before
# its handler returns it whole. Gradio copies a returned file into its own cache as the handler
# returns (written aside and renamed into place) and serves that copy, so ours is needed only until
# then: beyond the newest KEEP_OUTPUTS folders, older ones are deleted, but never one younger than
# OUTPUT_MIN_AGE seconds (a request may still be returning it).
OUTPUTS_DIR = Path(tempfile.gettempdir()) / "xai-lab-outputs"
KEEP_OUTPUTS = 32
OUTPUT_MIN_AGE = 60.0
# Gradio's cache (its copies of returned and uploaded files) is cleaned by Gradio: every hour, the
# files older than a day go (examples and default values are kept); (frequency, age) in seconds.
GRADIO_CACHE_CLEANUP = (3600, 86400)


def user_errors(fn):
    """Turn the errors a user can cause into a one-line gr.Error; the server keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (InputError, ModelUnavailable, ValueError, KeyError) as exc:
            raise gr.Error(str(exc).strip("'\""), print_exception=False) from None
        except MemoryError:
            raise gr.Error("Out of memory on this input: try a smaller file.", print_exception=False) from None
        except Exception as exc:  # keep serving; log the details for us, one line for the user
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Unexpected error ({type(exc).__name__}): {str(exc).splitlines()[0] if str(exc) else ''}",
                           print_exception=False) from None

    return wrapper


def image_examples() -> list[str]:
    """Example photos from scikit-image's bundled data, written once at run time (nothing downloaded)."""
    from PIL import Image
    from skimage import data

    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        path = EXAMPLES_DIR / f"{name}.png"
        if not path.exists():
            loader = getattr(data, name, None)
            if loader is None:
                continue
            try:
                Image.fromarray(loader()).save(path)
            except Exception:  # an image needing an optional data download: skip it
                continue
        paths.append(str(path))
    return paths


def output_folder(prefix: str) -> Path:
    """A new folder for one request's files, in OUTPUTS_DIR (whose old folders go, see there)."""
    OUTPUTS_DIR.mkdir(parents=True, exist_ok=True)
    prune_outputs()
    return Path(tempfile.mkdtemp(prefix=prefix, dir=OUTPUTS_DIR))


def prune_outputs() -> None:
    """Delete the request folders beyond the newest KEEP_OUTPUTS that are older than OUTPUT_MIN_AGE."""
    folders = []
    for folder in OUTPUTS_DIR.iterdir():
        try:
            folders.append((folder.stat().st_mtime, folder))
        except OSError:  # deleted meanwhile by another request's pruning
            continue
    folders.sort(reverse=True)
    now = time.time()
    for mtime, folder in folders[KEEP_OUTPUTS:]:
        if now - mtime > OUTPUT_MIN_AGE:
            shutil.rmtree(folder, ignore_errors=True)


def save_png(image, folder: Path, name: str) -> str:
    """A PIL image as a PNG in a request's folder -> its path, for a gr.Image, a gallery or a download.
    (Handing Gradio the image itself would have it write the PNG to a path named by the image's
    content, which a concurrent request with the same result rewrites while it is being served.)"""
    path = folder / name
    image.save(path)
    return str(path)


def example_items(tab: str) -> list[dict]:
    """A tab's example recordings as assets/examples/examples.json lists them (file, label, the task
    whose model it is for, ...), each with its full path: real recordings (and one rendered cello
    phrase) chosen and credited by `python -m training.examples`."""
    import json
    if not EXAMPLES_MANIFEST.is_file():
        return []
    items = [i for i in json.loads(EXAMPLES_MANIFEST.read_text()) if i["tab"] == tab]
    return [dict(i, path=str(EXAMPLES_MANIFEST.parent / i["file"])) for i in items
            if (EXAMPLES_MANIFEST.parent / i["file"]).is_file()]


def example_recordings(tab: str) -> tuple[list[str], list[str]]:
    """(paths, labels) of a tab's example recordings (example_items)."""
    items = example_items(tab)
    return [i["path"] for i in items], [i["label"] for i in items]
