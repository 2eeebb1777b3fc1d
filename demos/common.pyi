"""Glue shared by the tabs: safe upload components, user-facing errors, examples."""
from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path

import gradio as gr

from models.errors import InputError, ModelUnavailable

log = logging.getLogger("demo")
EXAMPLES_DIR = Path(tempfile.gettempdir()) / "xai-lab-examples"

from gradio.events import Dependency

class SafeImage(gr.Image):
    """gr.Image that hands the raw uploaded file to our loader.

    Gradio's own preprocessing decodes the upload with PIL and fails with a generic error
    on a corrupt file or a decompression bomb; our loader checks the size first and answers
    with a one-line message instead.
    """

    is_template = True  # rendered by the frontend's own Image component

    def preprocess(self, payload):
        if payload is None:
            return None
        if self.type == "filepath":
            return payload.path
        return super().preprocess(payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


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