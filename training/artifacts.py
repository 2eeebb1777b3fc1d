"""What the Training tab shows, read from checkpoints/<task>/ (no retraining, no data needed)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from models import registry
from models.registry import parse_model_id


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def load(model_id: str) -> dict:
    """Checkpoint metadata (weights dropped), LR-finder sweep, grid table, baselines, loss study."""
    task, entry = parse_model_id(model_id)
    folder = registry.CHECKPOINT_DIR / task.id
    out = {"model_id": f"{task.id}:{entry.name}", "train_command": entry.train_command, "checkpoint": None}
    path = folder / f"{entry.name}.pt"
    if path.is_file():
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        ckpt.pop("state_dict", None)
        if isinstance(ckpt.get("confusion_matrix"), torch.Tensor):
            ckpt["confusion_matrix"] = ckpt["confusion_matrix"].numpy()
        ckpt["size_mb"] = path.stat().st_size / 1e6
        out["checkpoint"] = ckpt
    out["lr_finder"] = _json(folder / f"{entry.name}_lr_finder.json")
    grid = folder / f"{entry.name}_grid.md"
    out["grid_markdown"] = grid.read_text() if grid.is_file() else None
    out["baselines"] = _json(folder / f"{entry.name}_baselines.json")
    out["loss_study"] = _json(folder / "loss_study.json")
    out["cv"] = _json(folder / f"{entry.name}_cv.json")
    out["comparisons"] = {p.stem[len("comparison_"):]: p.read_text() for p in sorted(folder.glob("comparison_*.md"))}
    card = folder / f"{entry.name}.md"
    out["card"] = card.read_text() if card.is_file() else None
    return out


def metrics_markdown(art: dict) -> str:
    ckpt = art["checkpoint"]
    if ckpt is None:
        return f"**{art['model_id']}** has no checkpoint yet. Train it with:\n\n```\n{art['train_command']}\n```"
    m = ckpt.get("metrics", {})
    lines = [f"### {art['model_id']}", ""]
    if not m.get("complete", True):
        lines.append("*Training in progress or interrupted: figures of the best epoch so far.*\n")
    rows = [("test accuracy", m.get("test_accuracy")), ("test macro-F1", m.get("test_macro_f1")),
            ("last epoch (kept)" if (ckpt.get("config") or {}).get("train", {}).get("select") == "last" else "best epoch",
             m.get("best_epoch", m.get("best_val", {}).get("epoch"))),
            ("validation accuracy", m.get("val_accuracy", m.get("best_val", {}).get("val_accuracy"))),
            ("size", f"{ckpt['size_mb']:.2f} MB"), ("parameters", ckpt.get("num_parameters")),
            ("training time", f"{ckpt.get('train_seconds', 0) / 60:.1f} min on {ckpt.get('train_device', '?')}"),
            ("CAM pointing game (test boxes)", m.get("pointing_game")),
            ("pointing game, centre baseline", m.get("pointing_game_centre_baseline"))]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
                                       for k, v in rows if v is not None]
    base = ckpt.get("baselines") or art.get("baselines")
    if base:
        lines += ["", "Baselines (test): " + "; ".join(f"{k}: accuracy {v['accuracy']:.3f}" for k, v in base.items())]
    cv = art.get("cv")
    if cv:
        lines += ["", f"Cross-validation, {len(cv['folds'])} folds: test accuracy {cv['mean_test_accuracy']:.4f} "
                      f"± {cv['std_test_accuracy']:.4f} (min {cv['min_test_accuracy']:.4f}, "
                      f"max {cv['max_test_accuracy']:.4f})"]
    lines += ["", f"Data: {ckpt.get('data_description', '?')}", "", f"Reproduce: `{ckpt.get('reproduce', '?')}`"]
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
    if ckpt is None or ckpt.get("confusion_matrix") is None:
        return None
    return np.asarray(ckpt["confusion_matrix"]), ckpt["labels"]
