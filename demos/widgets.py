"""What the tabs share on screen: safe upload widgets that hand the raw file to our loaders, the
sketchpad's drawing, a model's target-class choices and the card of a model not trained yet."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import gradio as gr
import numpy as np

from models import load_predictor, parse_model_id
from models.errors import ModelUnavailable

from .common import PREDICTED

# Browsers record WebM (or MP4) and may upload it as "audio.wav"; our loader picks the
# decoder by suffix, so such a file gets the suffix its content says (signature -> suffix).
CONTAINER_SIGNATURES = {b"\x1aE\xdf\xa3": ".webm"}
FTYP_SUFFIX = ".m4a"  # ISO media ("....ftyp"): M4A, MP4
CONTAINER_FAMILIES = {".webm": {".webm", ".mka", ".mkv"}, ".m4a": {".m4a", ".mp4", ".aac", ".m4v"}}


def content_suffix(path: str | Path) -> str:
    """".webm" / ".m4a" when the file's first bytes say it is such a container, else ""."""
    with open(path, "rb") as f:
        head = f.read(12)
    for signature, suffix in CONTAINER_SIGNATURES.items():
        if head.startswith(signature):
            return suffix
    return FTYP_SUFFIX if head[4:8] == b"ftyp" else ""


def with_content_suffix(path: str) -> str:
    """The path itself, or a copy named for what the file holds (a WebM recording called .wav)."""
    try:
        suffix = content_suffix(path)
    except OSError:
        return path  # the loader says what is wrong with it
    if not suffix or Path(path).suffix.lower() in CONTAINER_FAMILIES[suffix]:
        return path
    fixed = Path(path).with_suffix(suffix)
    if not fixed.exists():
        try:
            os.link(path, fixed)
        except OSError:
            shutil.copyfile(path, fixed)
    return str(fixed)


class SafeAudio(gr.Audio):
    """gr.Audio that hands the raw uploaded or recorded file to our loader.

    With type="filepath" and no `format`, Gradio passes the path through today; this pins
    that (a `format` would make Gradio decode and re-encode with pydub/ffmpeg and fail with
    a generic error), and renames a recording whose container its name hides.
    """

    is_template = True  # rendered by the frontend's own Audio component

    def preprocess(self, payload):
        if payload is None:
            return None
        if self.type == "filepath":
            return with_content_suffix(payload.path)
        return super().preprocess(payload)


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


def sketch_image(sketch):
    """gr.Sketchpad value -> RGBA array of the drawing (None if nothing drawn)."""
    if sketch is None:
        return None
    comp = sketch.get("composite") if isinstance(sketch, dict) else sketch
    if comp is None or (isinstance(comp, np.ndarray) and comp.size and comp[..., :3].std() == 0
                        and (comp.shape[-1] < 4 or comp[..., 3].max() == 0)):
        return None
    return comp


def target_choices(model_id: str) -> list[str]:
    task, _ = parse_model_id(model_id)
    try:  # labels live in the task (a pretrained base's list, possibly not fetched yet) or the checkpoint
        labels = task.labels
        if labels is None:
            labels = load_predictor(model_id).labels
    except ModelUnavailable:
        labels = []
    return [PREDICTED] + sorted(labels, key=str.lower)


def available(model_id: str) -> bool:
    """The model can be served: a pretrained one, or its checkpoint is here (or on the Hub)."""
    task, entry = parse_model_id(model_id)
    return not entry.from_checkpoint or task.checkpoint_available(entry.name)


def untrained_card(model_id: str) -> str:
    """What a model panel says when the model's checkpoint is not trained yet: how to train it."""
    _, entry = parse_model_id(model_id)
    return f"**{model_id}**: checkpoint not trained yet. Train it with:\n\n```\n{entry.train_command}\n```"
