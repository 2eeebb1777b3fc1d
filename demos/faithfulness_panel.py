"""The Image explainer's "How faithful is this map?" panel: deletion / insertion curves and ROAD
drops for the current image, class and CAM method, or for every gradient method ranked. The
scores are models.faithfulness's; this wires them to widgets."""
from __future__ import annotations

import time

import gradio as gr

from models import load_predictor
from models.device import on_gpu
from models.faithfulness import curves_figure

from .common import PREDICTED, user_errors

GRADIENT_METHODS = ["GradCAM", "GradCAM++", "XGradCAM", "LayerCAM"]
EXPLAINED = ("Deletion: the most highlighted pixels are replaced by a blurred copy first; a faithful map makes "
             "p(class) fall fast (low area). Insertion: from the blurred copy, they are revealed first; p(class) "
             "should rise fast (high area). ROAD: the top 10/20/50% are filled in from their neighbours (no "
             "blur artefacts) and the drop in p(class) is shown; a larger drop means the map found what matters.")


def _scores(image_path, model_id: str, method: str, target: str):
    if image_path is None:
        raise gr.Error("Upload an image (or pick an example) first.", print_exception=False)
    predictor = load_predictor(model_id)
    if predictor.modality != "image":
        raise gr.Error(f"{model_id} is not an image model.", print_exception=False)
    return predictor, predictor.faithfulness(image_path, method, None if target in (None, "", PREDICTED) else target)


def _road(r) -> str:
    return ", ".join(f"{p}%: {drop:+.3f}" for p, drop in r.road_drop.items())


@user_errors
@on_gpu
def score_map(image_path, model_id: str, method: str, target: str):
    start = time.perf_counter()
    predictor, (r, t) = _scores(image_path, model_id, method, target)
    text = (f"**{method}** for **{predictor.labels[t]}** (p = {r.original:.3f}): deletion area **{r.deletion_auc:.3f}**, "
            f"insertion area **{r.insertion_auc:.3f}**; ROAD drop {_road(r)} - {time.perf_counter() - start:.1f} s")
    return text, curves_figure({method: r})


@user_errors
@on_gpu
def compare_methods(image_path, model_id: str, target: str):
    start = time.perf_counter()
    results, label = {}, ""
    for method in GRADIENT_METHODS:
        predictor, (r, t) = _scores(image_path, model_id, method, target)
        results[method], label = r, predictor.labels[t]
    ranked = sorted(results, key=lambda m: results[m].insertion_auc - results[m].deletion_auc, reverse=True)
    rows = [f"| {i} | {m} | {results[m].deletion_auc:.3f} | {results[m].insertion_auc:.3f} | {_road(results[m])} |"
            for i, m in enumerate(ranked, 1)]
    text = "\n".join([f"Gradient methods for **{label}**, best first (insertion minus deletion area) - "
                      f"{time.perf_counter() - start:.1f} s", "",
                      "| rank | method | deletion | insertion | ROAD drop |", "|---|---|---|---|---|", *rows])
    return text, curves_figure(results)


def build(image, model, method, target) -> None:
    """Inside the Image explainer: an accordion wired to the tab's own inputs."""
    with gr.Accordion("How faithful is this map?", open=False, elem_id="faith"):
        gr.Markdown(EXPLAINED)
        with gr.Row():
            one = gr.Button("Score this map", elem_id="faith-score")
            every = gr.Button("Compare the gradient methods", elem_id="faith-compare")
        summary = gr.Markdown(elem_id="faith-summary")
        plot = gr.Plot(show_label=False, format="png", elem_id="faith-plot")
    one.click(score_map, [image, model, method, target], [summary, plot], api_name="faithfulness")
    every.click(compare_methods, [image, model, target], [summary, plot], api_name="compare_methods")
