"""Figures of the training workflow (matplotlib, Agg): loss curves, LR finder, confusion matrix."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def curves(history: list[dict], title: str = ""):
    """Train/val loss and validation metric per epoch."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ep = [h["epoch"] for h in history]
    for key, label in (("train_loss", "train (running)"), ("train_eval_loss", "train (eval)"),
                       ("val_loss", "val"), ("test_loss", "test")):
        if key in history[0]:
            ax1.plot(ep, [h[key] for h in history], marker="o", ms=3, label=label)
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax1.legend()
    for key in ("val_accuracy", "val_f1", "test_accuracy"):
        if key in history[0]:
            ax2.plot(ep, [h[key] for h in history], marker="o", ms=3, label=key.replace("_", " "))
    ax2.set(xlabel="epoch", title="metric")
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def lr_finder(lrs, losses, suggestion: float | None = None, window=None):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(lrs, losses)
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed loss", title="LR finder")
    if window:
        ax.axvspan(window[0], window[1], color="green", alpha=0.15, label="suggested window")
    if suggestion:
        ax.axvline(suggestion, color="red", ls="--", label=f"suggested lr {suggestion:.3g}")
    ax.legend()
    fig.tight_layout()
    return fig


def confusion(cm: np.ndarray, labels: list[str]):
    n = len(labels)
    size = min(12, 2 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        ax.set_xticks(range(n), labels, rotation=90)
        ax.set_yticks(range(n), labels)
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    fig.tight_layout()
    return fig


def loss_synthesis(runs: dict[str, list[dict]], key: str, title: str):
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, hist in runs.items():
        ax.plot([h["epoch"] for h in hist], [h[key] for h in hist], marker="o", ms=3, label=name)
    ax.set(xlabel="epoch", ylabel="cross-entropy", title=title, yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
