"""Training tab: a model's curves, LR finder, grid search, confusion matrix and test
metrics; the MNIST loss-curve study; and an MNIST classifier you can draw for."""
from __future__ import annotations

import threading

import gradio as gr
import numpy as np
from matplotlib.ticker import LogFormatter
from PIL import Image

from models.device import on_gpu
from models import load_predictor
from models.cam import overlay
from models.registry import TASKS
from models import training_plots as plots

from . import training_report as report

from .common import output_folder, save_png, user_errors
from .widgets import SafeImage, sketch_image


# matplotlib's mathtext parser is not thread-safe, and log axes label their ticks in mathtext
# ($\mathdefault{4\times10^{-2}}$). The tab's two load events (model, study) draw figures in two
# server threads at once, and every first page load failed with "ParseFatalException: Unknown
# symbol: \mathdefault". So the figures are made one at a time, and leave with plain-text log
# ticks: Gradio's own drawing of them (savefig, in its threads, outside this lock) parses none.
_DRAWING = threading.Lock()


def plain_log_ticks(fig) -> None:
    """Log axes labelled in plain text ("1e-02") instead of mathtext; the layout redone for them."""
    log_axes = [axis for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) if axis.get_scale() == "log"]
    for axis in log_axes:
        base = getattr(axis.get_transform(), "base", 10)
        axis.set_major_formatter(LogFormatter(base))
        axis.set_minor_formatter(LogFormatter(base, labelOnlyBase=False))
    if log_axes:
        fig.tight_layout()


def figure(make, *args):
    """make(*args) (a models.training_plots figure), drawn while no other thread draws one, with plain log ticks."""
    with _DRAWING:
        fig = make(*args)
        plain_log_ticks(fig)
    return fig


def trained_model_ids() -> list[str]:
    return [f"{t.id}:{m.name}" for t in TASKS.values() for m in t.models if m.from_checkpoint]


@user_errors
def show_model(model_id: str):
    art = report.load(model_id)
    ckpt = art["checkpoint"]
    curves = figure(plots.curves, ckpt["history"], model_id) if ckpt and ckpt.get("history") else None
    lr = art["lr_finder"]
    lr_fig = figure(plots.lr_finder, lr["lrs"], lr["losses"], lr["suggested_lr"], lr["window"]) if lr else None
    cm = report.confusion(art)
    cm_fig = figure(plots.confusion, *cm) if cm else None
    grid = art["grid_markdown"] or "No grid search yet."
    return report.metrics_markdown(art), curves, lr_fig, grid, cm_fig


@user_errors
def show_study():
    study = report.loss_study("mnist")
    if not study:
        return report.study_markdown(None), None, None
    runs = {name: r["history"] for name, r in study["runs"].items()}

    def losses(key: str, title: str):
        return figure(plots.loss_synthesis, {n: [{"epoch": h["epoch"], "loss": h[key]} for h in hs]
                                             for n, hs in runs.items()}, "loss", title)
    return (report.study_markdown(study), losses("train_eval_loss", "Train loss (whole train set), 4 runs"),
            losses("test_loss", "Test loss (whole test set), 4 runs"))


@user_errors
@on_gpu  # ZeroGPU Spaces: a GPU for this call; a no-op elsewhere
def classify_digit(sketch, upload):
    image = upload if upload is not None else sketch_image(sketch)
    if image is None:
        raise gr.Error("Draw a digit (or upload a photo of one) first.", print_exception=False)
    predictor = load_predictor("mnist")
    res = predictor.analyze(image, top_k=3)
    big = res.image.resize((224, 224), Image.Resampling.NEAREST)
    heat = np.asarray(Image.fromarray((res.heatmap * 255).astype(np.uint8)).resize((224, 224), Image.Resampling.BILINEAR),
                      dtype=np.float32) / 255
    return res.probs, save_png(overlay(big, heat, 0.45), output_folder("digit-"), "digit-gradcam.png")


def build() -> None:
    with gr.Tab("Training", id="training"):
        gr.Markdown("Every checkpoint the app serves, with the course workflow that produced it.")
        ids = trained_model_ids()
        with gr.Row():
            model = gr.Dropdown(ids, value=ids[0] if ids else None, label="Trained model", scale=2)
            refresh = gr.Button("Reload", scale=0)
        metrics = gr.Markdown()
        with gr.Row():
            curves = gr.Plot(label="Loss and metric per epoch")
            cm = gr.Plot(label="Confusion matrix (test)")
        with gr.Row():
            lr = gr.Plot(label="LR finder")
            grid = gr.Markdown(label="Grid search")
        outputs = [metrics, curves, lr, grid, cm]
        model.change(show_model, model, outputs, api_name="training_model")
        refresh.click(show_model, model, outputs, api_name=False)

        with gr.Accordion("MNIST: the loss-curve study (as is / swapped / swapped without dropout / no dropout)",
                          open=True):
            study = gr.Markdown()
            with gr.Row():
                train_plot = gr.Plot(label="train losses")
                test_plot = gr.Plot(label="test losses")

        with gr.Accordion("MNIST classifier: draw a digit", open=True):
            with gr.Row():
                sketch = gr.Sketchpad(label="Draw a digit (pick the brush first)", type="numpy", height=300,
                                      canvas_size=(280, 280),
                                      brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"))
                upload = SafeImage(type="filepath", label="...or upload a photo of one", height=280)
                with gr.Column():
                    digit = gr.Label(num_top_classes=3, label="Prediction")
                    digit_cam = gr.Image(label="What the model saw (28x28) and its GradCAM", height=224)
            classify = gr.Button("Classify", variant="primary")
        classify.click(classify_digit, [sketch, upload], [digit, digit_cam], api_name="classify_digit")

        demo = gr.context.Context.root_block
        if demo is not None:
            demo.load(show_model, model, outputs, api_name=False)
            demo.load(show_study, None, [study, train_plot, test_plot], api_name=False)
