"""The "How faithful is this map?" panel of the Image explainer and the Sound tab: deletion /
insertion curves and ROAD drops for the current image or sound, class and CAM method, or for every
gradient method ranked. The scores are models.faithfulness's; this wires them to widgets."""
from __future__ import annotations

import time

import gradio as gr

from models import load_predictor
from models.device import on_gpu
from models.faithfulness import GRADIENT_METHODS, curves_figure

from .common import PREDICTED, user_errors

EXPLAINED = {
    "image": ("Deletion: the most highlighted pixels are replaced by a blurred copy first; a faithful map makes "
              "p(class) fall fast (low area). Insertion: from the blurred copy, they are revealed first; p(class) "
              "should rise fast (high area). ROAD: the top 10/20/50% are filled in from their neighbours (no "
              "blur artefacts) and the drop in p(class) is shown; a larger drop means the map found what matters."),
    "audio": ("On the model's own input, the log-mel of the window where the class is most likely. Deletion: the "
              "most highlighted time-frequency cells are set to the clip's noise floor first; a faithful map makes "
              "p(class) fall fast (low area). Insertion: from the noise floor, they are put back first; p(class) "
              "should rise fast (high area). ROAD: the top 10/20/50% are filled in from their neighbours and the "
              "drop in p(class) is shown; a larger drop means the map found what matters."),
}
ASK = {"image": "Upload an image (or pick an example) first.",
       "audio": "Upload or record a sound (or pick an example) first."}


def _scores(path, model_id: str, method: str, target: str, modality: str):
    if path is None:
        raise gr.Error(ASK[modality], print_exception=False)
    predictor = load_predictor(model_id)
    if predictor.modality != modality:
        raise gr.Error(f"{model_id} is not {'an image' if modality == 'image' else 'a sound'} model.",
                       print_exception=False)
    return predictor, predictor.faithfulness(path, method, None if target in (None, "", PREDICTED) else target)


def _road(r) -> str:
    return ", ".join(f"{p}%: {drop:+.3f}" for p, drop in r.road_drop.items())


def score_map(path, model_id: str, method: str, target: str, modality: str = "image"):
    start = time.perf_counter()
    predictor, (r, t) = _scores(path, model_id, method, target, modality)
    text = (f"**{method}** for **{predictor.labels[t]}** (p = {r.original:.3f}): deletion area **{r.deletion_auc:.3f}**, "
            f"insertion area **{r.insertion_auc:.3f}**; ROAD drop {_road(r)} - {time.perf_counter() - start:.1f} s")
    return text, curves_figure({method: r})


def compare_methods(path, model_id: str, target: str, modality: str = "image"):
    start = time.perf_counter()
    results, label = {}, ""
    for method in GRADIENT_METHODS:
        predictor, (r, t) = _scores(path, model_id, method, target, modality)
        results[method], label = r, predictor.labels[t]
    ranked = sorted(results, key=lambda m: results[m].insertion_auc - results[m].deletion_auc, reverse=True)
    rows = [f"| {i} | {m} | {results[m].deletion_auc:.3f} | {results[m].insertion_auc:.3f} | {_road(results[m])} |"
            for i, m in enumerate(ranked, 1)]
    text = "\n".join([f"Gradient methods for **{label}**, best first (insertion minus deletion area) - "
                      f"{time.perf_counter() - start:.1f} s", "",
                      "| rank | method | deletion | insertion | ROAD drop |", "|---|---|---|---|---|", *rows])
    return text, curves_figure(results)


def build(source, model, method, target, modality: str = "image") -> None:
    """Inside the Image explainer (modality "image") or the Sound tab ("audio"): an accordion wired to
    the tab's own inputs. Element ids: faith-* in the Image explainer, faith-sound-* in the Sound tab."""
    tag = "faith" if modality == "image" else "faith-sound"

    @user_errors
    @on_gpu
    def one_map(path, model_id: str, method: str, target: str):
        return score_map(path, model_id, method, target, modality)

    @user_errors
    @on_gpu
    def every_method(path, model_id: str, target: str):
        return compare_methods(path, model_id, target, modality)

    with gr.Accordion("How faithful is this map?", open=False, elem_id=tag):
        gr.Markdown(EXPLAINED[modality])
        with gr.Row():
            one = gr.Button("Score this map", elem_id=f"{tag}-score")
            every = gr.Button("Compare the gradient methods", elem_id=f"{tag}-compare")
        summary = gr.Markdown(elem_id=f"{tag}-summary")
        plot = gr.Plot(show_label=False, format="png", elem_id=f"{tag}-plot")
    prefix = "" if modality == "image" else "sound_"
    one.click(one_map, [source, model, method, target], [summary, plot], api_name=f"{prefix}faithfulness")
    every.click(every_method, [source, model, target], [summary, plot], api_name=f"{prefix}compare_methods")
