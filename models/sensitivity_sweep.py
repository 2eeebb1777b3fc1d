"""Sensitivity study: sweep one image transformation (imgaug) and watch prediction and CAM.

From the practical "Analyse de la sensibilite des reseaux convolutifs": pick a backbone, a
CAM method and a class; compare the CAM on an image with one, several and no object of
the class (`compare`); then transform one image 10 times with increasing magnitude and
measure how p(class), the top-1 label and the CAM move (`run_sweep`).

    r = run_sweep(load_predictor("imagenet"), "cat.jpg", "brightness")   # x0.2 .. x2.0
    r.summary; r.rows; r.to_csv("sweep.csv"); r.plot()

CAM stability is measured in the original image's geometry: the transformed image's CAM
is mapped back with the inverse transformation (models.sensitivity_transforms.inverse_warp: exact
for shear, scale and perspective, the identity for the photometric ones, only approximate for elastic),
then compared with the original CAM (`cam_correlation`, `centre_of_mass`) over the pixels
that are still inside the frame after the transformation (`valid_mask`).

No Gradio here: demos/sensitivity.py wires this to widgets.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import cam as cam_lib
from .sensitivity_transforms import Transform, apply, get_transform, inverse_warp, magnitudes, valid_mask

SWEEP_MAX_SIDE = 512     # images are shrunk to this longer side first: the model sees 224-260 px anyway
CONFIDENT = 0.5          # "p(class) stays above 0.5"
CORRELATED = 0.8         # "the CAM stays correlated (r >= 0.8)"
_EPS = 1e-9


# -- stability metrics (pure functions)


def cam_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of two heatmaps of the same shape (over `mask` if given); NaN if undefined."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"heatmaps differ in shape: {a.shape} vs {b.shape}")
    if mask is not None:
        a, b = a[mask], b[mask]
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    if a.size < 2 or denom < _EPS:
        return float("nan")
    return float(np.clip((a * b).sum() / denom, -1.0, 1.0))


def centre_of_mass(h: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(y, x) of the heatmap's centre of mass in pixels (over `mask` if given); NaNs if it has no mass."""
    h = np.clip(np.asarray(h, np.float64), 0, None)
    if mask is not None:
        h = np.where(mask, h, 0.0)
    total = h.sum()
    if total < _EPS:
        return float("nan"), float("nan")
    ys, xs = np.arange(h.shape[0]), np.arange(h.shape[1])
    return float(h.sum(1) @ ys / total), float(h.sum(0) @ xs / total)


def com_shift(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Distance in pixels between the centres of mass of two heatmaps."""
    (ya, xa), (yb, xb) = centre_of_mass(a, mask), centre_of_mass(b, mask)
    return float(np.hypot(ya - yb, xa - xb))


# -- the sweep


@dataclass
class SweepResult:
    """A sweep's images, per-magnitude figures and verdict."""

    model_id: str
    method: str
    transform: str
    target: str
    magnitudes: np.ndarray
    images: list[Image.Image]                 # CAM overlays, one per magnitude
    raw_images: list[np.ndarray]              # the transformed images (H, W, 3) uint8
    heatmaps: list[np.ndarray]                # CAMs on the transformed images
    rows: list[dict]                          # per-magnitude figures, see ROW_FIELDS
    original: dict                            # p_target, top1, top1_prob, overlay, heatmap of the input
    flip_magnitude: float | None              # nearest magnitude to the identity where top-1 leaves the target
    flips: dict = field(default_factory=dict)  # {"below": m or None, "above": m or None}
    summary: str = ""

    ROW_FIELDS = ("transform", "magnitude", "label", "target", "p_target", "top1", "top1_prob", "top1_is_target",
                  "cam_r", "com_shift_px", "com_shift_frac", "mapping")

    @property
    def captions(self) -> list[str]:
        return [f"{r['label']}: p={r['p_target']:.2f} ({r['top1']})" for r in self.rows]

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.ROW_FIELDS)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        return path

    def plot(self):
        """p(target) against magnitude (o: top-1 is still the target, x: it is not), CAM r on a second axis."""
        from matplotlib.figure import Figure  # no pyplot: no global state, safe in server threads

        spec = get_transform(self.transform)
        m = np.asarray([r["magnitude"] for r in self.rows])
        p = np.asarray([r["p_target"] for r in self.rows])
        holds = np.asarray([r["top1_is_target"] for r in self.rows], bool)
        r = np.asarray([r["cam_r"] for r in self.rows], float)

        fig = Figure(figsize=(7.5, 3.8), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(m, p, color="tab:blue", lw=1.5, zorder=1)
        ax.scatter(m[holds], p[holds], marker="o", s=45, color="tab:green", zorder=2, label=f"top-1 = {self.target}")
        ax.scatter(m[~holds], p[~holds], marker="X", s=60, color="tab:red", zorder=2, label="top-1 is another class")
        ax.axhline(CONFIDENT, color="grey", lw=0.8, ls=":")
        if m.min() - _EPS <= spec.identity <= m.max() + _EPS:
            ax.axvline(spec.identity, color="grey", lw=0.8, ls="--")
        ax.axhline(self.original["p_target"], color="tab:blue", lw=0.8, ls="--", alpha=0.5,
                   label=f"p on the original ({self.original['p_target']:.2f})")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"{self.transform} ({spec.unit})")
        ax.set_ylabel(f"p({self.target})", color="tab:blue")

        ax2 = ax.twinx()
        ax2.plot(m, r, color="tab:purple", lw=1.2, ls="--", marker=".",
                 label="CAM r vs original" + (" (approx.)" if spec.geometry == "approximate" else ""))
        finite = r[np.isfinite(r)]
        ax2.set_ylim(min(-0.05, float(finite.min()) - 0.05) if finite.size else -0.05, 1.05)
        ax2.set_ylabel("CAM correlation r", color="tab:purple")

        handles = ax.get_legend_handles_labels()
        handles2 = ax2.get_legend_handles_labels()
        ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], fontsize=8, loc="best")
        ax.set_title(f"{self.transform}: p({self.target}) and CAM stability ({self.model_id}, {self.method})",
                     fontsize=10)
        return fig


def _prepare(predictor, image, max_side: int = SWEEP_MAX_SIDE) -> np.ndarray:
    """The input as a (H, W, 3) uint8 array, longer side at most `max_side`."""
    pil = predictor.load(image)
    if max(pil.size) > max_side:
        pil = pil.copy()
        pil.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return np.asarray(pil.convert("RGB"), dtype=np.uint8)


def _resolve_target(predictor, base: np.ndarray, target) -> int:
    idx = predictor.target_index(target)
    if idx is None:  # predicted class of the original image: a forward pass without CAM
        idx = int(np.argmax(predictor.predict_probs([base])[0]))
    return idx


def _flips(spec: Transform, mags: np.ndarray, holds: list[bool]) -> dict:
    """First magnitude on each side of the identity, moving away from it, where top-1 is no longer the target."""
    out = {"below": None, "above": None}
    below = sorted((i for i, m in enumerate(mags) if m < spec.identity - 1e-6), key=lambda i: -mags[i])
    above = sorted((i for i, m in enumerate(mags) if m > spec.identity + 1e-6), key=lambda i: mags[i])
    for side, order in (("below", below), ("above", above)):
        for i in order:
            if not holds[i]:
                out[side] = float(mags[i])
                break
    return out


def _summarise(spec: Transform, target: str, rows: list[dict], original: dict, flip: float | None,
               flips: dict) -> str:
    fmt, n = spec.fmt, len(rows)
    mags = np.asarray([r["magnitude"] for r in rows])
    p = np.asarray([r["p_target"] for r in rows])
    parts = []
    i0 = int(np.argmin(np.abs(mags - spec.identity)))
    if p[i0] >= CONFIDENT:
        a = b = i0
        while a > 0 and p[a - 1] >= CONFIDENT:
            a -= 1
        while b < n - 1 and p[b + 1] >= CONFIDENT:
            b += 1
        if (a, b) == (0, n - 1):
            parts.append(f"p({target}) stays above {CONFIDENT:g} over the whole sweep "
                         f"({fmt(mags[0])} to {fmt(mags[-1])})")
        else:
            parts.append(f"p({target}) stays above {CONFIDENT:g} from {fmt(mags[a])} to {fmt(mags[b])}")
    else:
        parts.append(f"p({target}) is {original['p_target']:.2f} on the original and "
                     f"{p.min():.2f}-{p.max():.2f} over the sweep")
    if original["top1"] != target:
        parts.append(f"{target} is not the top-1 class on the original ({original['top1']}), "
                     f"it is top-1 at {sum(r['top1_is_target'] for r in rows)}/{n} magnitudes")
    elif flip is None:
        parts.append(f"the prediction stays {target} at every magnitude")
    else:
        to = next(r["top1"] for r in rows if abs(r["magnitude"] - flip) < 1e-9)
        other = [v for v in flips.values() if v is not None and abs(v - flip) > 1e-9]
        parts.append(f"the prediction flips at {fmt(flip)} (to {to})"
                     + (f" and, on the other side, at {fmt(other[0])}" if other else ""))
    r = np.asarray([row["cam_r"] for row in rows], float)
    kept = int(np.sum(np.nan_to_num(r, nan=-1.0) >= CORRELATED))
    approx = " (approximate: elastic is mapped back with the identity)" if spec.geometry == "approximate" else ""
    parts.append(f"the CAM stays correlated (r >= {CORRELATED:g}) for {kept}/{n} magnitudes{approx}")
    return "; ".join(parts) + "."


def _step(progress, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(fraction, desc=desc)


def run_sweep(predictor, image, transform: str, lo: float | None = None, hi: float | None = None, n: int = 10,
              method: str = cam_lib.DEFAULT_METHOD, target=None, progress=None, alpha: float = 0.5) -> SweepResult:
    """Transform `image` at `n` magnitudes from lo to hi and explain every version for one class.

    `target`: label or class index; None means the class predicted on the original image.
    The original and the n transformed images go through the model as one batch.
    `progress`: optional callable(fraction, desc=...) (e.g. gr.Progress()).
    """
    spec = get_transform(transform)
    mags = magnitudes(spec.name, lo, hi, n)
    base = _prepare(predictor, image)
    _step(progress, 0.0, f"{spec.name}: {len(mags)} images")
    images = [apply(base, spec, m) for m in mags]

    _step(progress, 0.2, f"model + {method} on {len(mags) + 1} images")
    t = _resolve_target(predictor, base, target)
    probs, heats, _ = predictor.explain_batch([base] + images, method, targets=[t] * (len(mags) + 1))
    labels = predictor.labels
    target_label = labels[t]

    _step(progress, 0.8, "overlays and CAM stability")
    heat0 = heats[0]
    top0 = int(np.argmax(probs[0]))
    original = {"p_target": float(probs[0, t]), "top1": labels[top0], "top1_prob": float(probs[0, top0]),
                "heatmap": heat0, "overlay": cam_lib.overlay(Image.fromarray(base), heat0, alpha)}
    diag = float(np.hypot(*base.shape[:2]))
    rows, overlays = [], []
    for m, img, pr, heat in zip(mags, images, probs[1:], heats[1:]):
        back = inverse_warp(heat, spec, m)
        mask = valid_mask(heat.shape, spec, m) if spec.geometry == "exact" else None
        shift = com_shift(heat0, back, mask)
        k = int(np.argmax(pr))
        rows.append({"transform": spec.name, "magnitude": float(m), "label": spec.fmt(m), "target": target_label,
                     "p_target": float(pr[t]), "top1": labels[k], "top1_prob": float(pr[k]),
                     "top1_is_target": k == t, "cam_r": cam_correlation(heat0, back, mask),
                     "com_shift_px": shift, "com_shift_frac": shift / diag,
                     "mapping": {"none": "identity", "exact": "inverse", "approximate": "identity (approx.)"}[
                         spec.geometry]})
        overlays.append(cam_lib.overlay(Image.fromarray(img), heat, alpha))

    flips = _flips(spec, mags, [r["top1_is_target"] for r in rows]) if top0 == t else {"below": None, "above": None}
    found = [v for v in flips.values() if v is not None]
    flip = min(found, key=lambda v: (abs(v - spec.identity), v)) if found else None
    summary = _summarise(spec, target_label, rows, original, flip, flips)
    _step(progress, 1.0, "done")
    return SweepResult(model_id=predictor.model_id, method=method, transform=spec.name, target=target_label,
                       magnitudes=mags, images=overlays, raw_images=images, heatmaps=list(heats[1:]), rows=rows,
                       original=original, flip_magnitude=flip, flips=flips, summary=summary)


def compare(predictor, images: list, method: str = cam_lib.DEFAULT_METHOD, target=None, alpha: float = 0.5
            ) -> list[tuple[Image.Image, float, str] | None]:
    """CAM for one class on up to three images (one / several / no object of the class).

    Returns (overlay, p(target), top-1 label) per image, None for a missing image.
    `target` None: the class predicted on the first given image.
    """
    if len(images) > 3:
        raise ValueError("compare takes at most three images")
    given = [i for i, x in enumerate(images) if x is not None]
    if not given:
        raise ValueError("Give at least one image to compare.")
    loaded = [predictor.load(images[i]) for i in given]
    t = predictor.target_index(target)
    if t is None:
        t = int(np.argmax(predictor.predict_probs([loaded[0]])[0]))
    probs, heats, _ = predictor.explain_batch(loaded, method, targets=[t] * len(loaded))
    out: list = [None] * len(images)
    for i, img, pr, heat in zip(given, loaded, probs, heats):
        out[i] = (cam_lib.overlay(img, heat, alpha), float(pr[t]), predictor.labels[int(np.argmax(pr))])
    return out
