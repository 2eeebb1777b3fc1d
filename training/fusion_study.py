"""python -m training.fusion_study [--pairs-per-clip K]

Multimodal digits: a handwritten digit (MNIST model) and a spoken one (spoken-digits model)
of the same class, fused late. Neither model trained on these inputs: MNIST test images and
the clips of the held-out speaker. Calibration (temperatures, the learned heads, the choice
among them) uses MNIST test images 0-4999 and half of that speaker's clips; the study uses
images 5000-9999 and the other half, so nothing is fitted or chosen on what is measured.

Three sweeps of six levels: the image degraded (noise + occlusion), the sound degraded
(white noise at decreasing SNR), and both together. For each: image-only, audio-only,
product-of-experts and learned-head accuracy. The fusion the app uses (the product or one of
several learned heads, CANDIDATES) is chosen on calibration clips by the bar itself: fused at
least as good as the better single modality in each condition, better where both are
degraded. Writes checkpoints/spoken-digits/fusion_study.json and .png.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from models.checkpoint import load_checkpoint, model_from_checkpoint
from models.fusion import (FusionHead, audio_quality, degradation_scale, fit_temperature, image_quality,
                           product_of_experts)

from models.errors import cli_main

from .common import ROOT
from .config import data_dir, load_config
from .datasets import load_task_data
from .mnist import MNIST_MEAN, MNIST_STD

IMAGE_NOISE = [0.0, 0.4, 0.7, 1.0, 1.3, 1.6]   # std of Gaussian noise on [0, 1] pixels
OCCLUSION = [0, 8, 10, 12, 14, 16]             # side of a blanked square, pixels of 28
AUDIO_SNR = [None, 20.0, 10.0, 5.0, 0.0, -5.0]  # dB; None: clean
SWEEPS = ("image", "audio", "both")
OUT = ROOT / "checkpoints" / "spoken-digits" / "fusion_study.json"


def degrade_images(x01: torch.Tensor, level: int, rng: np.random.Generator) -> torch.Tensor:
    """(N, 1, 28, 28) in [0, 1] -> noisy, partly occluded, clipped to [0, 1]."""
    x = x01.clone()
    side = OCCLUSION[level]
    if side:
        for img, (r, c) in zip(x, rng.integers(0, 28 - side + 1, (len(x), 2))):
            img[:, r:r + side, c:c + side] = 0.0
    if IMAGE_NOISE[level]:
        x += torch.from_numpy(rng.normal(0, IMAGE_NOISE[level], x.shape).astype(np.float32))
    return x.clamp(0, 1)


def degrade_audio(w: torch.Tensor, level: int, rng: np.random.Generator) -> torch.Tensor:
    snr = AUDIO_SNR[level]
    if snr is None:
        return w
    power = w.pow(2).mean(1, keepdim=True).clamp_min(1e-10)
    noise = torch.from_numpy(rng.standard_normal(w.shape).astype(np.float32))
    return w + noise * (power / 10 ** (snr / 10)).sqrt()


@torch.inference_mode()
def probs_of(model, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    return torch.cat([model(x[i:i + batch]).float().softmax(-1) for i in range(0, len(x), batch)]).numpy()


def pairs(audio_labels: np.ndarray, image_labels: np.ndarray, per_clip: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """For each clip, `per_clip` images of the same digit: (clip indices, image indices)."""
    clip_idx, img_idx = [], []
    for i, d in enumerate(audio_labels):
        same = np.flatnonzero(image_labels == d)
        clip_idx += [i] * per_clip
        img_idx += list(rng.choice(same, per_clip, replace=False))
    return np.asarray(clip_idx), np.asarray(img_idx)


def load_models(image_checkpoint=ROOT / "checkpoints/mnist/cnn.pt"):
    image = model_from_checkpoint(load_checkpoint(image_checkpoint,
                                                  "python -m training.train --config training/configs/mnist.yaml"))
    audio = model_from_checkpoint(load_checkpoint(ROOT / "checkpoints/spoken-digits/cnn.pt",
                                                  "python -m training.train --config training/configs/spoken-digits.yaml"))
    return image, audio


def paired_sets(per_clip: int, seed: int = 0, calib_extra: int = 0):
    """{"calib": ..., "study": ...}: each (images in [0,1], waveforms, labels, clip index and image
    index of each pair). Calibration clips get `calib_extra` more images each (drawn apart, so the
    study's pairs do not depend on it)."""
    rng = np.random.default_rng(seed)
    mcfg = load_config(ROOT / "training/configs/mnist.yaml")
    scfg = load_config(ROOT / "training/configs/spoken-digits.yaml")
    mnist = load_task_data(mcfg, data_dir(mcfg))
    fsdd = load_task_data(scfg, data_dir(scfg))
    x, y = mnist.test.tensors
    x01 = x * MNIST_STD + MNIST_MEAN
    waves, labels = fsdd.test.tensors
    out = {}
    for name, (lo, hi), half in (("calib", (0, 5000), slice(0, None, 2)), ("study", (5000, 10000), slice(1, None, 2))):
        ci, ii = pairs(labels[half].numpy(), y[lo:hi].numpy(), per_clip, rng)
        if name == "calib" and calib_extra:
            more = pairs(labels[half].numpy(), y[lo:hi].numpy(), calib_extra, np.random.default_rng(seed + 3))
            ci, ii = np.r_[ci, more[0]], np.r_[ii, more[1]]
        out[name] = (x01[lo:hi][ii], waves[half][ci], labels[half][ci].numpy(), ci, ii)
    return out


def qualities(x01: torch.Tensor, waves: torch.Tensor) -> list[np.ndarray]:
    """The fusion head's input-quality measures of each modality (what the app computes too)."""
    return [image_quality(x01.numpy()), audio_quality(waves.numpy())]


def _acc(p: np.ndarray, labels: np.ndarray) -> float:
    return float((p.argmax(1) == labels).mean())


def accuracies(pimg, paud, labels, temps, head, quality) -> dict:
    return {"image": _acc(pimg, labels), "audio": _acc(paud, labels),
            "product": _acc(product_of_experts([pimg, paud], temps), labels),
            "head": _acc(head([pimg, paud], quality), labels)}


# The fusions tried, each chosen or not on calibration clips (never on the study's): the product,
# the head gated on confidence and raw quality (with a class prior), and heads gated only on how
# degraded each input looks (hinge features; a clean-looking input keeps its learned weight).
CANDIDATES = [("product", None),
              ("head: confidence + quality, class prior", {"confidence": True, "knots": 0, "class_bias": True,
                                                          "weight_decay": 1e-3})] + [
    (f"head: degradation gates, {k} knot{'s' if k > 1 else ''}{', class prior' if prior else ''}, decay {wd:g}",
     {"confidence": False, "knots": k, "class_bias": prior, "weight_decay": wd})
    for k in (1, 3, 5) for prior in (False, True) for wd in (0.0, 1e-3)] + [
    (f"head: joint degradation gates, {k} knot{'s' if k > 1 else ''}, decay {wd:g}",
     {"confidence": False, "knots": k, "class_bias": False, "weight_decay": wd, "joint": True})
    for k in (1, 3, 5) for wd in (0.0, 1e-3)] + [
    (f"head: degradation gates{', joint' if joint else ''}, {k} knots, smoothed, decay 0",
     {"confidence": False, "knots": k, "class_bias": False, "weight_decay": 0.0, "joint": joint, "smoothing": True})
    for k in (3, 5) for joint in (False, True)] + [
    (f"product of experts recalibrated by degradation, {k} knots, decay {wd:g}",
     {"confidence": False, "knots": k, "class_bias": False, "weight_decay": wd, "separate": True})
    for k in (3, 5) for wd in (0.0, 1e-3)]
SELECTION_SHARE = 0.3  # of the calibration clips: where the candidates are compared
FIT_DRAWS = 2  # degraded copies of each fitting pair (plus the clean one)
CALIB_EXTRA_PAIRS = 12  # more images per calibration clip (16 in all): MNIST images are plentiful, clips are not


def sweep_inputs(x01, waves, sweep: str, level: int, seed: int):
    r = np.random.default_rng(seed)
    x = degrade_images(x01, level, r) if sweep in ("image", "both") else x01
    w = degrade_audio(waves, level, r) if sweep in ("audio", "both") else waves
    return x, w


def bar_score(rows: list[dict], key: str) -> tuple[int, float, float, float]:
    """How well `key` meets the bar over (sweep, level) rows: conditions met, the worst margin
    over the better single modality, minus the mean log-loss (finer than accuracy: it tells
    apart fusions that all get a small selection set right), the mean accuracy; compared in
    that order. Rows may carry "<key> nll"."""
    met, margins = 0, []
    for r in rows:
        margin = r[key] - max(r["image"], r["audio"])
        met += margin > 0 if (r["sweep"] == "both" and r["level"] > 0) else margin >= 0
        margins.append(margin)
    nll = float(np.mean([r.get(f"{key} nll", 0.0) for r in rows]))
    return met, round(min(margins), 6), -nll, float(np.mean([r[key] for r in rows]))


def _nll(p: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


def fit_candidate(settings: dict, pimg, paud, labels, temps, qimg, qaud, clean: list[np.ndarray]) -> FusionHead:
    """One candidate head; `clean`: per modality, which fitting inputs are undegraded."""
    scales = None
    if settings["knots"]:
        scales = [degradation_scale(q[ok], q[~ok], settings["knots"]) for q, ok in zip((qimg, qaud), clean)]
    if settings.get("separate"):
        # each model recalibrated alone (its weight, an inverse temperature, a function of how
        # degraded its input looks, fitted to its own log-loss), then the plain product
        alone = [FusionHead.fit([p], labels, [t], quality=[q], confidence=False, scales=[sc], class_bias=False,
                                weight_decay=settings["weight_decay"])
                 for p, t, q, sc in zip((pimg, paud), temps, (qimg, qaud), scales)]
        width = max(h.c.shape[1] for h in alone)
        c = np.stack([np.pad(h.c[0], (0, width - h.c.shape[1])) for h in alone])
        return FusionHead([h.a[0] for h in alone], c, np.zeros(pimg.shape[1]), temps, confidence=False, scales=scales)
    return FusionHead.fit([pimg, paud], labels, temps, quality=[qimg, qaud], confidence=settings["confidence"],
                          scales=scales, class_bias=settings["class_bias"], weight_decay=settings["weight_decay"],
                          joint=settings.get("joint", False), smoothing=settings.get("smoothing", False))


def run(per_clip: int = 4, seed: int = 0, log=print, **models) -> dict:
    # long: the study's protocol in one place (split, fit, choose, test), so its leaks can be checked by eye
    image_model, audio_model = load_models(**models)
    sets = paired_sets(per_clip, seed, CALIB_EXTRA_PAIRS)
    norm = lambda x01: (x01 - MNIST_MEAN) / MNIST_STD  # noqa: E731
    rng = np.random.default_rng(seed + 1)
    cx, cw, cy, clip, image = sets["calib"]
    # calibration clips: 70% fit the temperatures and the heads, 30% choose among the candidates
    # (split by clip: a clip's pairs are all on one side; a choosing pair whose image also serves
    # in a fitting pair is dropped, so the choice is made on images and clips the fit never saw)
    fit = np.random.default_rng(seed + 2).random(clip.max() + 1)[clip] >= SELECTION_SHARE
    choose = ~fit & ~np.isin(image, image[fit])
    fx, fw, fy = cx[fit], cw[fit], cy[fit]
    # fitting pairs: each clean, and again FIT_DRAWS times at degradation levels drawn per modality
    # and pair, so the temperatures and the heads see the (image, sound) conditions they will fuse
    reps = FIT_DRAWS + 1
    lv_img = np.r_[np.zeros(len(fy), int), rng.integers(0, len(IMAGE_NOISE), FIT_DRAWS * len(fy))]
    lv_aud = np.r_[np.zeros(len(fy), int), rng.integers(0, len(AUDIO_SNR), FIT_DRAWS * len(fy))]
    x_fit, w_fit = fx.repeat(reps, 1, 1, 1), fw.repeat(reps, 1)
    for level in range(1, len(IMAGE_NOISE)):
        x_fit[lv_img == level] = degrade_images(x_fit[lv_img == level], level, rng)
        w_fit[lv_aud == level] = degrade_audio(w_fit[lv_aud == level], level, rng)
    pimg, paud = probs_of(image_model, norm(x_fit)), probs_of(audio_model, w_fit)
    qimg, qaud = qualities(x_fit, w_fit)
    y_fit = np.tile(fy, reps)
    temps = [fit_temperature(pimg, y_fit), fit_temperature(paud, y_fit)]
    clean = [lv_img == 0, lv_aud == 0]
    heads = {name: fit_candidate(settings, pimg, paud, y_fit, temps, qimg, qaud, clean)
             for name, settings in CANDIDATES if settings}
    # choosing: the study's sweeps on the selection clips, scored by the bar itself
    sx_, sw_, sy_ = cx[choose], cw[choose], cy[choose]
    rows = []
    for sweep in SWEEPS:
        for level in range(len(IMAGE_NOISE)):
            x, w = sweep_inputs(sx_, sw_, sweep, level, seed + 50 + level)
            pi, pa, q = probs_of(image_model, norm(x)), probs_of(audio_model, w), qualities(x, w)
            fused = {"product": product_of_experts([pi, pa], temps), **{n: h([pi, pa], q) for n, h in heads.items()}}
            rows.append({"sweep": sweep, "level": level, "image": _acc(pi, sy_), "audio": _acc(pa, sy_),
                         **{n: _acc(p, sy_) for n, p in fused.items()},
                         **{f"{n} nll": _nll(p, sy_) for n, p in fused.items()}})
    scores = {name: bar_score(rows, name) for name, _ in CANDIDATES}
    chosen = max(scores, key=lambda name: scores[name])
    for name, (met, worst, neg_nll, mean) in scores.items():
        log(f"  {name}: bar met in {met}/{len(rows)} conditions, worst margin {worst:+.3f}, log-loss {-neg_nll:.4f}, "
            f"mean {mean:.4f}"
            + ("  <- chosen" if name == chosen else ""))
    method = "product" if chosen == "product" else "head"
    # the study's "head" column: the chosen head, or the best-scored one when the product wins
    head = heads.get(chosen) or heads[max(heads, key=lambda name: scores[name])]
    log(f"temperatures image {temps[0]:.2f}, audio {temps[1]:.2f}; fusion: {chosen}")
    sx, sw, sy, _, _ = sets["study"]
    result = {"temperatures": {"image": temps[0], "audio": temps[1]}, "method": method, "fusion": chosen,
              "head": head.to_dict(), "pairs": int(len(sy)),
              "selection": {"pairs": int(len(sy_)), "conditions": len(rows),
                            "candidates": [{"name": n, "conditions_met": m, "worst_margin": w, "log_loss": -nl,
                                            "mean_accuracy": a} for n, (m, w, nl, a) in scores.items()]},
              "levels": {"image_noise_std": IMAGE_NOISE, "occlusion_px": OCCLUSION, "audio_snr_db": AUDIO_SNR},
              "sweeps": {}}
    for sweep in SWEEPS:
        rows = []
        for level in range(len(IMAGE_NOISE)):
            xi, wa = sweep_inputs(sx, sw, sweep, level, seed + 100 + level)
            rows.append({"level": level, **accuracies(probs_of(image_model, norm(xi)), probs_of(audio_model, wa),
                                                      sy, temps, head, qualities(xi, wa))})
            log(f"{sweep:5s} level {level}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items() if k != "level"))
        result["sweeps"][sweep] = rows
    result["bar"] = check_bar(result)
    return result


def check_bar(result: dict) -> dict:
    """Fused >= the better single modality at every level; strictly higher where both are degraded."""
    fused = result["method"]
    ok_all = all(r[fused] >= max(r["image"], r["audio"]) for rows in result["sweeps"].values() for r in rows)
    both = [r for r in result["sweeps"]["both"] if r["level"] > 0]
    ok_both = all(r[fused] > max(r["image"], r["audio"]) for r in both)
    return {"fused_at_least_best_single_everywhere": ok_all, "fused_strictly_better_when_both_degraded": ok_both}


def figure(result: dict):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    titles = {"image": "image degraded (noise + occlusion)", "audio": "sound degraded (white noise)",
              "both": "both degraded"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, sweep in zip(axes, SWEEPS):
        rows = result["sweeps"][sweep]
        lv = [r["level"] for r in rows]
        for key, label, style in (("image", "image only", "o--"), ("audio", "sound only", "s--"),
                                  ("product", "fused: product of experts", "^-"), ("head", "fused: learned head", "v-")):
            ax.plot(lv, [r[key] for r in rows], style, label=label, ms=4)
        ax.set(title=titles[sweep], xlabel="degradation level", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"Drawn + spoken digits, {result['pairs']} test pairs; the app fuses with: "
                 f"{result.get('fusion', result['method'])}", fontsize=10)
    fig.tight_layout()
    return fig


@cli_main(RuntimeError)
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-per-clip", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-checkpoint", default=str(ROOT / "checkpoints/mnist/cnn.pt"))
    args = parser.parse_args(argv)
    result = run(args.pairs_per_clip, args.seed, image_checkpoint=args.image_checkpoint)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    figure(result).savefig(OUT.with_suffix(".png"), dpi=80)
    print(f"bar: {result['bar']}; wrote {OUT} and {OUT.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
