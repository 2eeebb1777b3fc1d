"""Digits tab: draw (or upload) a handwritten digit AND say (or upload) a spoken one; each
modality's prediction and the fused one, with the study of how fusion holds up when
either input is degraded (python -m training.fusion_study)."""
from __future__ import annotations

import json

import gradio as gr
import numpy as np

from models import load_predictor
from models.device import on_gpu
from models.fusion import FusionHead, audio_quality, image_quality, product_of_experts
from models.registry import CHECKPOINT_DIR

from .common import example_recordings, user_errors
from .widgets import SafeAudio, SafeImage, sketch_image

STUDY = CHECKPOINT_DIR / "spoken-digits" / "fusion_study.json"
LABELS = [str(d) for d in range(10)]


def fusion_settings() -> dict:
    """The study's temperatures and chosen fusion; untempered product of experts without it."""
    try:
        return json.loads(STUDY.read_text())
    except (OSError, ValueError):
        return {"method": "product", "temperatures": {"image": 1.0, "audio": 1.0}, "missing": True}


def input_quality(image, audio) -> list[np.ndarray]:
    """The fusion head's quality measures of the inputs as the fusion study computed them: the
    28x28 white-on-black digit in [0, 1]; the trimmed, normalised word padded (or cut) to the
    sound model's window, like the study's clips."""
    from models.audio_windows import fix_length
    seen = np.asarray(load_predictor("mnist").load(image).convert("L"), np.float64)[None] / 255.0
    sound = load_predictor("spoken-digits")
    wave = fix_length(sound.load(audio), sound.spec.clip_samples)
    return [image_quality(seen)[0], audio_quality(wave[None])[0]]


def fuse(p_image: np.ndarray, p_audio: np.ndarray, settings: dict, quality=None) -> np.ndarray:
    """`quality`: the inputs' quality measures, or a function computing them (called only when
    the fusion head needs them)."""
    temps = [settings["temperatures"]["image"], settings["temperatures"]["audio"]]
    if settings.get("method") == "head" and "head" in settings:
        head = FusionHead.from_dict(settings["head"])
        if not head.quality_dims:
            return head([p_image, p_audio])
        return head([p_image, p_audio], quality() if callable(quality) else quality)
    return product_of_experts([p_image, p_audio], temps)


def _as_label(p: np.ndarray | None) -> dict | None:
    return None if p is None else {label: float(v) for label, v in zip(LABELS, p)}


@user_errors
@on_gpu  # ZeroGPU Spaces: a GPU for this call; a no-op elsewhere
def recognise(sketch, upload, audio):
    """Returns (image prediction, sound prediction, fused prediction, a one-line note)."""
    image = upload if upload is not None else sketch_image(sketch)
    if image is None and audio is None:
        raise gr.Error("Draw or upload a digit, and/or record or upload a spoken one.", print_exception=False)
    p_image = load_predictor("mnist").predict_probs([image])[0] if image is not None else None
    p_audio = load_predictor("spoken-digits").predict_probs([audio])[0] if audio is not None else None
    settings = fusion_settings()
    if p_image is not None and p_audio is not None:
        fused = fuse(p_image, p_audio, settings, lambda: input_quality(image, audio))
        how = "learned fusion head" if settings.get("method") == "head" else "product of the calibrated experts"
        top_i, top_a = LABELS[int(p_image.argmax())], LABELS[int(p_audio.argmax())]
        note = f"Fused by the {how}." + (f" The two disagree ({top_i} drawn, {top_a} said): the more confident "
                                         "one wins." if top_i != top_a else "")
        if settings.get("missing"):
            note += " (No fusion study found: temperatures 1; run `python -m training.fusion_study`.)"
    else:
        fused = p_image if p_image is not None else p_audio
        note = "Only one modality given: the fused prediction is that one's."
    return _as_label(p_image), _as_label(p_audio), _as_label(fused), note


def study_summary() -> str:
    s = fusion_settings()
    if s.get("missing"):
        return "The fusion study has not been run yet: `python -m training.fusion_study`."
    both = s["sweeps"]["both"]
    worst = both[-1]
    return (f"{s['pairs']} test pairs (MNIST test images with the spoken digits of a speaker no model trained on). "
            f"Temperatures fitted on held-out pairs: image {s['temperatures']['image']:.2f}, sound "
            f"{s['temperatures']['audio']:.2f}; fusion used: **{s['method']}**. With both inputs at the worst level: "
            f"image {worst['image']:.1%}, sound {worst['audio']:.1%}, fused {worst[s['method']]:.1%}.")


def build() -> None:
    with gr.Tab("Digits", id="digits", elem_id="digits-tab"):
        gr.Markdown("Draw a digit **and** say one: each model's guess, and the two fused. Try a messy drawing "
                    "with a clear voice, or the other way round.")
        with gr.Row():
            sketch = gr.Sketchpad(label="Draw a digit", type="numpy", height=300, canvas_size=(280, 280),
                                  brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"))
            upload = SafeImage(type="filepath", label="...or upload a photo of one", height=280)
            audio = SafeAudio(sources=["upload", "microphone"], type="filepath", label="Say a digit (or upload)")
        paths, labels = example_recordings("digits")
        if paths:
            gr.Examples(paths, inputs=audio, example_labels=labels,
                        label="Spoken digits (FSDD, a speaker the model never heard: see assets/examples/ATTRIBUTION.md)")
        go = gr.Button("Recognise", variant="primary")
        with gr.Row():
            image_out = gr.Label(num_top_classes=3, label="Handwriting model (MNIST)")
            audio_out = gr.Label(num_top_classes=3, label="Speech model (spoken digits)")
            fused_out = gr.Label(num_top_classes=3, label="Fused")
        note = gr.Markdown()
        go.click(recognise, [sketch, upload, audio], [image_out, audio_out, fused_out, note], api_name="recognise")
        with gr.Accordion("How fusion holds up when an input is degraded", open=False):
            gr.Markdown(study_summary())
            png = STUDY.with_suffix(".png")
            if png.exists():
                gr.Image(str(png), show_label=False, interactive=False)
