"""python -m training.fusion_study [--pairs-per-clip K]

Multimodal digits: a handwritten digit (MNIST model) and a spoken one (spoken-digits model)
of the same class, fused late. Neither model trained on these inputs: MNIST test images and
the clips of the held-out speaker. Calibration (temperatures, the learned head) uses MNIST
test images 0-4999 and half of that speaker's clips; the study uses images 5000-9999 and the
other half, so nothing is fitted on what is measured.

Three sweeps of six levels: the image degraded (noise + occlusion), the sound degraded
(white noise at decreasing SNR), and both together. For each: image-only, audio-only,
product-of-experts and learned-head accuracy. The fusion the app uses is chosen on the
calibration pairs. Writes checkpoints/spoken-digits/fusion_study.json and .png.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from models.checkpoint import load_checkpoint, model_from_checkpoint
from models.fusion import FusionHead, audio_quality, fit_temperature, image_quality, product_of_experts

from .common import ROOT
from .config import data_dir, load_config
from .datasets import MNIST_MEAN, MNIST_STD, load_task_data

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


def paired_sets(per_clip: int, seed: int = 0):
    """{"calib": ..., "study": ...}: each (images in [0,1], waveforms, labels)."""
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
        out[name] = (x01[lo:hi][ii], waves[half][ci], labels[half][ci].numpy())
    return out


def qualities(x01: torch.Tensor, waves: torch.Tensor) -> list[np.ndarray]:
    """The fusion head's input-quality measures of each modality (what the app computes too)."""
    return [image_quality(x01.numpy()), audio_quality(waves.numpy())]


def accuracies(pimg, paud, labels, temps, head, quality) -> dict:
    def acc(p):
        return float((p.argmax(1) == labels).mean())
    return {"image": acc(pimg), "audio": acc(paud), "product": acc(product_of_experts([pimg, paud], temps)),
            "head": acc(head([pimg, paud], quality))}


def run(per_clip: int = 4, seed: int = 0, log=print, **models) -> dict:
    image_model, audio_model = load_models(**models)
    sets = paired_sets(per_clip, seed)
    norm = lambda x01: (x01 - MNIST_MEAN) / MNIST_STD  # noqa: E731
    rng = np.random.default_rng(seed + 1)
    # calibration: every degradation level of each modality, drawn independently per pair, so the
    # temperatures and the head see the conditions they will fuse
    cx, cw, cy = sets["calib"]
    lv_img, lv_aud = rng.integers(0, len(IMAGE_NOISE), len(cy)), rng.integers(0, len(AUDIO_SNR), len(cy))
    xi, wa = cx.clone(), cw.clone()
    for level in range(len(IMAGE_NOISE)):
        xi[lv_img == level] = degrade_images(cx[lv_img == level], level, rng)
        wa[lv_aud == level] = degrade_audio(cw[lv_aud == level], level, rng)
    pimg = probs_of(image_model, norm(torch.cat([cx, xi])))
    paud = probs_of(audio_model, torch.cat([cw, wa]))
    qimg, qaud = qualities(torch.cat([cx, xi]), torch.cat([cw, wa]))
    cy2 = np.concatenate([cy, cy])
    temps = [fit_temperature(pimg, cy2), fit_temperature(paud, cy2)]
    order = rng.permutation(len(cy2))
    fit_i, hold_i = order[: len(cy2) * 3 // 4], order[len(cy2) * 3 // 4:]
    head = FusionHead.fit([pimg[fit_i], paud[fit_i]], cy2[fit_i], temps, quality=[qimg[fit_i], qaud[fit_i]])
    holdout = accuracies(pimg[hold_i], paud[hold_i], cy2[hold_i], temps, head, [qimg[hold_i], qaud[hold_i]])
    method = "head" if holdout["head"] > holdout["product"] else "product"
    log(f"temperatures image {temps[0]:.2f}, audio {temps[1]:.2f}; calibration hold-out: {holdout} -> {method}")
    sx, sw, sy = sets["study"]
    result = {"temperatures": {"image": temps[0], "audio": temps[1]}, "method": method, "head": head.to_dict(),
              "calibration_holdout": holdout, "pairs": int(len(sy)),
              "levels": {"image_noise_std": IMAGE_NOISE, "occlusion_px": OCCLUSION, "audio_snr_db": AUDIO_SNR},
              "sweeps": {}}
    for sweep in SWEEPS:
        rows = []
        for level in range(len(IMAGE_NOISE)):
            r = np.random.default_rng(seed + 100 + level)
            xi = degrade_images(sx, level, r) if sweep in ("image", "both") else sx
            wa = degrade_audio(sw, level, r) if sweep in ("audio", "both") else sw
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
    fig.suptitle(f"Drawn + spoken digits, {result['pairs']} test pairs; the app fuses with: {result['method']}")
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-per-clip", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-checkpoint", default=str(ROOT / "checkpoints/mnist/cnn.pt"))
    args = parser.parse_args(argv)
    try:
        result = run(args.pairs_per_clip, args.seed, image_checkpoint=args.image_checkpoint)
    except (RuntimeError, FileNotFoundError) as exc:  # ModelUnavailable: a checkpoint to train first
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    figure(result).savefig(OUT.with_suffix(".png"), dpi=80)
    print(f"bar: {result['bar']}; wrote {OUT} and {OUT.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
