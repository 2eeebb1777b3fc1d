"""Sensitivity tab: how prediction and CAM react to the image content and to imgaug transformations.

Setup (model, CAM method, class) -> Compare the CAM on an image with one, several and no
object of the class -> Sweep one transformation over 10 magnitudes: gallery of overlays,
p(class) / CAM-correlation plot, a one-sentence verdict, ZIP + CSV downloads.
The work is done by models.sensitivity_sweep; this module only wires it to widgets.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import gradio as gr

from models.device import on_gpu
from models import load_predictor, model_ids
from models.cam import DEFAULT_METHOD, METHODS
from models.sensitivity_sweep import compare, run_sweep
from models.sensitivity_transforms import TRANSFORMS, get_transform

from .common import EXAMPLES_DIR, PREDICTED, image_examples, output_folder, save_png, user_errors
from .widgets import SafeImage, target_choices

DEFAULT_TRANSFORM = "brightness"


def cats_collage() -> str:
    """Several cats in one picture, made from scikit-image's chelsea (written once)."""
    from PIL import Image, ImageOps
    from skimage import data

    path = EXAMPLES_DIR / "chelsea-trio.png"
    if not path.exists():
        EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
        cat = Image.fromarray(data.chelsea())
        w, h = cat.size
        small = cat.resize((w // 2, h // 2), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (w + w // 2, h), (128, 128, 128))
        canvas.paste(cat, (0, 0))
        canvas.paste(ImageOps.mirror(small), (w, 0))
        canvas.paste(small, (w, h // 2))
        canvas.save(path)
    return str(path)


def sensitivity_examples() -> dict[str, str]:
    """{"one": chelsea, "several": three cats, "none": coffee}; nothing downloaded."""
    photos = {Path(p).stem: p for p in image_examples()}
    return {"one": photos["chelsea"], "several": cats_collage(), "none": photos["coffee"]}


def _target(target):
    return None if target in (None, "", PREDICTED) else target


def _step(spec) -> float:
    lo, hi = spec.limits
    return 10 ** math.floor(math.log10((hi - lo) / 100))


def _range_sliders(name: str):
    spec = get_transform(name)
    step = _step(spec)
    return (gr.Slider(minimum=spec.limits[0], maximum=spec.limits[1], value=spec.lo, step=step),
            gr.Slider(minimum=spec.limits[0], maximum=spec.limits[1], value=spec.hi, step=step),
            _describe(spec))


def _describe(spec) -> str:
    return f"*{spec.name}*: {spec.description}. Identity at {spec.fmt(spec.identity)}."


@user_errors
def transform_changed(name: str):
    return _range_sliders(name)


@user_errors
def model_changed(model_id: str):
    return gr.Dropdown(choices=target_choices(model_id), value=PREDICTED)


@user_errors
@on_gpu  # ZeroGPU Spaces: a GPU for this call; a no-op elsewhere
def compare_images(one, several, none, model_id: str, method: str, target: str):
    """CAM for one class on up to three images; also the API endpoint /compare."""
    images = [one, several, none]
    if all(x is None for x in images):
        raise gr.Error("Upload at least one image to compare (or pick the example row).", print_exception=False)
    predictor = load_predictor(model_id)
    t = predictor.target_index(_target(target))
    if t is None:  # the class predicted on the first given image, named here for the table
        t = int(predictor.predict_probs([next(x for x in images if x is not None)])[0].argmax())
    name = predictor.labels[t]
    gallery, lines = [], []
    folder = output_folder("compare-")
    for kind, res in zip(("one object", "several objects", "no object"), compare(predictor, images, method, t)):
        if res is None:
            continue
        over, p, top1 = res
        gallery.append((save_png(over, folder, f"{kind.replace(' ', '-')}.png"), f"{kind}: p={p:.2f} (top-1 {top1})"))
        lines.append(f"| {kind} | {p:.3f} | {top1} |")
    info = (f"{method} for **{name}** on `{predictor.model_id}`\n\n"
            f"| image | p({name}) | top-1 |\n|---|---|---|\n" + "\n".join(lines))
    return gallery, info


def _save(result, progress) -> tuple[list[tuple[str, str]], list[str]]:
    """Overlays as PNGs (gallery + ZIP) and the CSV, in the request's own folder."""
    folder = output_folder("sweep-")
    paths = []
    progress(0.9, desc="saving images and CSV")
    for i, (img, row) in enumerate(zip(result.images, result.rows)):
        path = folder / f"{i + 1:02d}_{result.transform}_{row['magnitude']:+.4g}.png"
        img.save(path, compress_level=1)  # speed over size: these are temporary
        paths.append(path)
    csv_path = result.to_csv(folder / f"sweep_{result.transform}.csv")
    zip_path = folder / f"sweep_{result.transform}_overlays.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for path in paths:
            zf.write(path, path.name)
        zf.write(csv_path, csv_path.name)
    return [(str(p), c) for p, c in zip(paths, result.captions)], [str(zip_path), str(csv_path)]


@user_errors
@on_gpu  # ZeroGPU Spaces: a GPU for this call; a no-op elsewhere
def sweep(image, model_id: str, method: str, target: str, transform: str, lo: float, hi: float, n: int = 10,
          progress=gr.Progress()):
    """Sweep one transformation; also the API endpoint /sweep."""
    if image is None:
        raise gr.Error("Upload an image (or pick an example) for the sweep.", print_exception=False)
    n = int(n)
    if not 2 <= n <= 32:
        raise gr.Error("Choose between 2 and 32 images.", print_exception=False)
    if lo is not None and hi is not None and float(lo) == float(hi):
        raise gr.Error("The range is empty: move one of the sliders.", print_exception=False)
    progress(0, desc="loading model")
    predictor = load_predictor(model_id)
    result = run_sweep(predictor, image, transform, lo, hi, n, method=method, target=_target(target),
                       progress=lambda f, desc=None: progress(0.05 + 0.8 * f, desc=desc))
    gallery, files = _save(result, progress)
    spec = get_transform(transform)
    flip = "no flip" if result.flip_magnitude is None else f"flips at **{spec.fmt(result.flip_magnitude)}**"
    summary = (f"**{result.transform}**, {method}, class **{result.target}** on `{result.model_id}` "
               f"(original: p = {result.original['p_target']:.3f}, top-1 {result.original['top1']}; "
               f"prediction {flip})\n\n{result.summary}")
    return gallery, result.plot(), summary, files


def build() -> None:
    examples = sensitivity_examples()
    first_model = model_ids("image")[0]
    spec = get_transform(DEFAULT_TRANSFORM)
    with gr.Tab("Sensitivity", id="sensitivity"):
        gr.Markdown("How sensitive is the network, and its CAM, to what is in the image and to simple "
                    "transformations? Choose a setup, compare images with one, several and no object of the "
                    "class, then sweep a transformation over 10 magnitudes.")
        with gr.Row():
            model = gr.Dropdown(model_ids("image"), value=first_model, label="Model")
            method = gr.Dropdown(list(METHODS), value=DEFAULT_METHOD, label="CAM method")
            target = gr.Dropdown(target_choices(first_model), value=PREDICTED, label="Target class",
                                 filterable=True, allow_custom_value=True,
                                 info="Type to search; default: the class predicted on the (first) image.")

        gr.Markdown("### 1. Compare: one, several, no object of the class")
        with gr.Row():
            one = SafeImage(type="filepath", label="One object", sources=["upload", "clipboard"], height=220)
            several = SafeImage(type="filepath", label="Several objects", sources=["upload", "clipboard"],
                                height=220)
            none = SafeImage(type="filepath", label="No object", sources=["upload", "clipboard"], height=220)
        gr.Examples([[examples["one"], examples["several"], examples["none"]]], inputs=[one, several, none],
                    label="Example row: a cat, three cats, a coffee cup")
        compare_btn = gr.Button("Compare", variant="primary")
        compare_gallery = gr.Gallery(label="CAM for the target class", columns=3, height=300, format="png")
        compare_info = gr.Markdown()

        gr.Markdown("### 2. Sweep: one transformation, 10 magnitudes")
        with gr.Row():
            with gr.Column(scale=1):
                image = SafeImage(type="filepath", label="Image", sources=["upload", "clipboard"], height=260)
                transform = gr.Dropdown(list(TRANSFORMS), value=DEFAULT_TRANSFORM, label="Transformation")
                transform_info = gr.Markdown(_describe(spec))
                step = _step(spec)
                lo = gr.Slider(*spec.limits, value=spec.lo, step=step, label="From")
                hi = gr.Slider(*spec.limits, value=spec.hi, step=step, label="To")
                n = gr.Slider(2, 32, value=10, step=1, label="Images")
                sweep_btn = gr.Button("Sweep", variant="primary")
                gr.Examples([[examples["one"]], [examples["several"]], [examples["none"]]], inputs=image,
                            label="Examples")
            with gr.Column(scale=2):
                summary = gr.Markdown()
                gallery = gr.Gallery(label="CAM overlays", columns=5, height=360, format="png")
                plot = gr.Plot(label="p(class) and CAM correlation against magnitude")
                files = gr.File(label="Downloads: overlays (ZIP) and figures (CSV)", file_count="multiple")

        compare_btn.click(compare_images, [one, several, none, model, method, target],
                          [compare_gallery, compare_info], api_name="compare")
        sweep_btn.click(sweep, [image, model, method, target, transform, lo, hi, n],
                        [gallery, plot, summary, files], api_name="sweep")
        transform.change(transform_changed, transform, [lo, hi, transform_info], api_name=False)
        model.change(model_changed, model, target, api_name=False)
