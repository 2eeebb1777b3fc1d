"""Image explainer tab: upload an image, pick a model, a CAM method and a target class;
see the top-5, the raw CAM, the overlay (downloadable PNG) and the time it took."""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from models import artifacts as A
from models.device import on_gpu
from models import load_predictor, model_ids, parse_model_id
from models.cam import DEFAULT_METHOD, METHODS, colorize, describe_layers, overlay
from models.errors import ModelUnavailable

from . import faithfulness_panel
from .common import PREDICTED, image_examples, output_folder, save_png, user_errors
from .widgets import SafeImage, available, target_choices, untrained_card


def model_choices() -> list[str]:
    return model_ids("image")


def describe_model(model_id: str) -> str:
    task, entry = parse_model_id(model_id)
    if not available(model_id):
        return untrained_card(model_id)
    lines = [f"**{model_id}** ({task.title}): {entry.description or entry.arch}",
             f"{describe_layers(entry.cam_layer)}"]
    if entry.from_checkpoint:
        try:
            lines += card_lines(A.metrics(load_predictor(model_id).card))
        except ModelUnavailable as exc:
            lines.append(str(exc))
        lines.append(f"Model card: `checkpoints/{task.id}/{entry.name}.md`")
    return "  \n".join(lines)


def card_lines(metrics: dict) -> list[str]:
    """The model card's headline figures: test accuracy and, for CUB, the pointing game."""
    score, pointing = A.test_score(metrics, bold=True), A.pointing_game(metrics, bold=True)
    lines = [f"{score[0].upper()}{score[1:]} ({metrics.get('split', 'test split')})"] if score else []
    return lines + ([pointing] if pointing else [])


@user_errors
def class_choices(model_id: str):
    """Target-class dropdown for a model: its labels, searchable by name."""
    return gr.Dropdown(choices=target_choices(model_id), value=PREDICTED), describe_model(model_id)


@user_errors
@on_gpu  # ZeroGPU Spaces: a GPU for this call; a no-op elsewhere
def explain(image_path, model_id: str, method: str, target: str, alpha: float = 0.5):
    """The tab's main action; also the API endpoint /explain."""
    if image_path is None:
        raise gr.Error("Upload an image (or pick an example) first.", print_exception=False)
    predictor = load_predictor(model_id)
    start = time.perf_counter()
    result = predictor.analyze(image_path, method=method, target=None if target in (None, "", PREDICTED) else target)
    blended = overlay(result.image, result.heatmap, alpha)
    elapsed = time.perf_counter() - start
    folder, stem = output_folder("cam-"), f"{Path(str(image_path)).stem[:60]}-{method.split()[0]}"
    over = save_png(blended, folder, f"{stem}-overlay.png")  # shown, and the download
    raw = save_png(colorize(result.heatmap), folder, f"{stem}-cam.png")
    info = (f"**{method}** for class **{result.target}** (p = {result.target_prob:.3f}) on `{predictor.model_id}` "
            f"- {elapsed * 1000:.0f} ms on {predictor.device.type}")
    return result.probs, over, raw, info, over


def auto_explain(image_path, model_id, method, target, alpha):
    """On upload / example click; clearing the image changes nothing else."""
    if image_path is None:
        return (gr.skip(),) * 5
    return explain(image_path, model_id, method, target, alpha)


def build() -> None:
    with gr.Tab("Image explainer", id="image"):
        gr.Markdown("Upload an image, choose a model and a CAM method, and see where the network looks.")
        with gr.Row():
            with gr.Column(scale=1):
                image = SafeImage(type="filepath", label="Image", sources=["upload", "clipboard"], height=320)
                model = gr.Dropdown(model_choices(), value=model_choices()[0], label="Model")
                method = gr.Dropdown(list(METHODS), value=DEFAULT_METHOD, label="CAM method",
                                     info="ScoreCAM-family methods score only the most active channels "
                                          "(about 1.5-3 s on CPU); the gradient methods take a few ms.")
                target = gr.Dropdown(target_choices(model_choices()[0]), value=PREDICTED, label="Target class",
                                     filterable=True, allow_custom_value=True,
                                     info="Type to search the class names.")
                alpha = gr.Slider(0.1, 0.9, value=0.5, step=0.05, label="Overlay opacity")
                run = gr.Button("Explain", variant="primary")
                gr.Examples(image_examples(), inputs=image, label="Examples (scikit-image photos)")
            with gr.Column(scale=2):
                info = gr.Markdown()
                with gr.Row():
                    over = gr.Image(label="CAM overlay", format="png", interactive=False, height=320)
                    raw = gr.Image(label="Raw CAM", format="png", interactive=False, height=320)
                with gr.Row():
                    labels = gr.Label(num_top_classes=5, label="Top-5 predictions")
                    download = gr.DownloadButton("Download overlay (PNG)")
                card = gr.Markdown(describe_model(model_choices()[0]))
                faithfulness_panel.build(image, model, method, target)

        outputs = [labels, over, raw, info, download]
        run.click(explain, [image, model, method, target, alpha], outputs, api_name="explain")
        image.change(auto_explain, [image, model, method, target, alpha], outputs, api_name=False)
        model.change(class_choices, model, [target, card], api_name=False)
