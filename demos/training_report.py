"""What the Training tab shows, read from checkpoints/<task>/ (no retraining, no data needed):
the checkpoint and its side files, named by the artifact schema (models/artifacts.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from models import artifacts as A
from models import registry
from models.registry import parse_model_id

from .widgets import untrained_card


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def load(model_id: str) -> dict:
    """Checkpoint metadata (weights dropped), LR-finder sweep, grid table, baselines, loss study."""
    task, entry = parse_model_id(model_id)
    folder = registry.CHECKPOINT_DIR / task.id
    out = {"model_id": f"{task.id}:{entry.name}", "train_command": entry.train_command, "checkpoint": None}
    path = task.checkpoint_path(entry.name)
    if path.is_file():
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        ckpt.pop(A.STATE_DICT, None)
        if isinstance(ckpt.get(A.CONFUSION_MATRIX), torch.Tensor):
            ckpt[A.CONFUSION_MATRIX] = ckpt[A.CONFUSION_MATRIX].numpy()
        ckpt["size_mb"] = path.stat().st_size / 1e6
        out["checkpoint"] = ckpt

    def side(kind: str, name: str = entry.name) -> Path:
        return A.side_file(folder, name, kind)

    out["lr_finder"] = _json(side("lr_finder"))
    out["grid_markdown"] = side("grid").read_text() if side("grid").is_file() else None
    out["baselines"] = _json(side("baselines"))
    out["loss_study"] = loss_study(task.id)
    out["cv"] = _json(side("cv"))
    out["comparisons"] = {p.stem[len(A.COMPARISON_PREFIX):]: p.read_text() for p in sorted(folder.glob(A.SIDE_FILES["comparison"].format(name="*")))}
    out["card"] = side("card").read_text() if side("card").is_file() else None
    return out


def loss_study(task_id: str = "mnist") -> dict | None:
    """The task's loss-curve study (training.loss_study), without reading its checkpoints."""
    return _json(A.side_file(registry.CHECKPOINT_DIR / task_id, "", "loss_study"))


def metrics_markdown(art: dict) -> str:
    ckpt = art["checkpoint"]
    if ckpt is None:
        return untrained_card(art["model_id"])
    m = A.metrics(ckpt)
    lines = [f"### {art['model_id']}", ""]
    if not A.is_complete(ckpt):
        lines.append("*Training in progress or interrupted: figures of the best epoch so far.*\n")
    rows = [("test accuracy", m.get("test_accuracy")), ("test macro-F1", m.get("test_macro_f1")),
            ("last epoch (kept)" if (ckpt.get(A.CONFIG) or {}).get("train", {}).get("select") == "last" else "best epoch",
             m.get("best_epoch", m.get("best_val", {}).get("epoch"))),
            ("validation accuracy", m.get("val_accuracy", m.get("best_val", {}).get("val_accuracy"))),
            ("size", f"{ckpt['size_mb']:.2f} MB"), ("parameters", ckpt.get(A.NUM_PARAMETERS)),
            ("training time", A.training_time(ckpt)),
            ("CAM pointing game (test boxes)", m.get("pointing_game")),
            ("pointing game, centre baseline", m.get("pointing_game_centre_baseline"))]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {A.fmt(v)} |" for k, v in rows if v is not None]
    base = ckpt.get(A.BASELINES) or art.get("baselines")
    if base:
        lines += ["", "Baselines (test): " + "; ".join(f"{k}: accuracy {v['accuracy']:.3f}" for k, v in base.items())]
    cv = art.get("cv")
    if cv:
        lines += ["", f"Cross-validation, {len(cv['folds'])} folds: test accuracy {cv['mean_test_accuracy']:.4f} "
                      f"± {cv['std_test_accuracy']:.4f} (min {cv['min_test_accuracy']:.4f}, "
                      f"max {cv['max_test_accuracy']:.4f})"]
    lines += ["", f"Data: {ckpt.get(A.DATA_DESCRIPTION, '?')}", "", f"Reproduce: `{A.reproduce(ckpt)}`"]
    for name, table in (art.get("comparisons") or {}).items():
        lines += ["", f"#### Comparison: {name.replace('_', ' ')}", "", table]
    return "\n".join(lines)


def study_markdown(study: dict | None) -> str:
    if not study:
        return "No loss study yet: `python -m training.loss_study --config training/configs/mnist.yaml`"
    lines = ["| run | data | final train loss | final test loss | verdict |", "|---|---|---|---|---|"]
    for name, r in study["runs"].items():
        verdict = "**overfits**" if r["overfits"] else "no overfitting"
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(f"| {name}{note} | {r.get('data', '')} | {r['final_train_loss']:.4f} | {r['final_test_loss']:.4f} | "
                     f"{verdict}: {r['explanation']} |")
    over = study.get("overfitting_runs") or []
    lines += ["", f"Runs that overfit (test loss rising while the train loss keeps falling): "
                  f"{', '.join(over) if over else 'none'}."]
    return "\n".join(lines)


def confusion(art: dict) -> tuple[np.ndarray, list[str]] | None:
    ckpt = art["checkpoint"]
    if ckpt is None or ckpt.get(A.CONFUSION_MATRIX) is None:
        return None
    return np.asarray(ckpt[A.CONFUSION_MATRIX]), ckpt[A.LABELS]
