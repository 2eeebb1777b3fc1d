"""How far to trust a heatmap (no Gradio here): deletion / insertion curves, ROAD-style removal
and the model-randomisation sanity check, for one input and one class.

The input is a tensor the model takes (an image (C, H, W), a spectrogram (1, mels, frames));
`score(batch) -> (B,)` is the model's probability of the class for a batch of such inputs; the
heatmap is on the input's last two axes. Cells are ranked by the heatmap, most important first.

- deletion: the top cells replaced by a baseline, step by step; the class score should fall
  fast (low area under the curve is good).
- insertion: from the baseline, the top cells revealed step by step; the score should rise fast
  (high area is good).
- ROAD (Rong et al., ICML 2022): the top p% cells removed and filled from their neighbours
  (noisy linear imputation), which keeps the removal from looking like an artefact the model
  reacts to; the drop in score at 10/20/50%.
- randomisation (Adebayo et al., NeurIPS 2018): the rank correlation between the map of the
  trained model and of the same network with its last blocks re-initialised; a map that
  barely changes shows the input, not the model.

All steps of a curve go through the model in batches of `batch_size`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_STEPS = 20
# the methods that need only gradients at the CAM layer: what "compare methods" and the studies rank
GRADIENT_METHODS = ["GradCAM", "GradCAM++", "XGradCAM", "LayerCAM"]
ROAD_PERCENTS = (10, 20, 50)
BATCH_SIZE = 32


@dataclass
class Faithfulness:
    deletion: np.ndarray     # (steps + 1,) class score with 0, 1/steps, ... of the cells removed
    insertion: np.ndarray    # (steps + 1,) class score with 0, 1/steps, ... of the cells revealed
    deletion_auc: float      # lower is better
    insertion_auc: float     # higher is better
    road_drop: dict[int, float]  # percent removed -> score drop (ROAD fill); higher is better
    original: float          # the class score of the input as it is


def ranking(heatmap: np.ndarray, seed: int = 0) -> np.ndarray:
    """Cell indices (flattened), most important first; ties broken at random (a flat map is no order)."""
    h = np.asarray(heatmap, dtype=np.float64).ravel()
    jitter = np.random.default_rng(seed).random(h.size) * 1e-9 * (np.ptp(h) + 1e-12)
    return np.argsort(-(h + jitter), kind="stable")


def _masks(order: np.ndarray, shape: tuple[int, int], fractions) -> torch.Tensor:
    """(len(fractions), H, W) float masks: 1 where a cell is among the top `fraction` of the order."""
    n = order.size
    ranks = np.empty(n, np.int64)
    ranks[order] = np.arange(n)
    counts = np.round(np.asarray(list(fractions)) * n).astype(np.int64)
    return torch.from_numpy((ranks[None, :] < counts[:, None]).reshape(len(counts), *shape).astype(np.float32))


def _scores(score: Callable, batch: torch.Tensor, batch_size: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(batch), batch_size):
            out.append(torch.as_tensor(score(batch[i: i + batch_size])).detach().float().cpu().reshape(-1))
    return torch.cat(out).numpy()


def curve(score: Callable, x: torch.Tensor, heatmap: np.ndarray, baseline: torch.Tensor, mode: str = "deletion",
          steps: int = DEFAULT_STEPS, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The class score as the top cells are removed (deletion) or revealed (insertion), steps + 1 points."""
    if heatmap.shape != tuple(x.shape[-2:]):
        raise ValueError(f"heatmap {heatmap.shape} is not on the input's grid {tuple(x.shape[-2:])}")
    masks = _masks(ranking(heatmap), heatmap.shape, np.linspace(0, 1, steps + 1))[:, None]  # (S, 1, H, W)
    if mode == "insertion":
        masks = 1 - masks  # the top cells are the ones kept from the input
    elif mode != "deletion":
        raise ValueError(f"mode is deletion or insertion, not {mode!r}")
    batch = x[None] * (1 - masks) + baseline[None] * masks
    return _scores(score, batch, batch_size)


def auc(values: np.ndarray) -> float:
    """Area under a curve sampled evenly on [0, 1]."""
    v = np.asarray(values, dtype=np.float64)
    return float(((v[1:] + v[:-1]) / 2).mean()) if len(v) > 1 else float(v[0])


def blurred(x: torch.Tensor, sigma: float = 10.0) -> torch.Tensor:
    """The image baseline: a strong Gaussian blur (keeps the colours, removes the shapes)."""
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[0]
    y = F.pad(x[None], (radius,) * 4, mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    y = F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return y[0]


def noise_floor(x: torch.Tensor, quantile: float = 0.1) -> torch.Tensor:
    """The spectrogram baseline: every cell at the clip's noise floor (a low quantile of its values)."""
    return torch.full_like(x, float(torch.quantile(x.float().flatten(), quantile)))


def road_fill(x: torch.Tensor, mask: torch.Tensor, iterations: int = 30, noise: float = 0.05,
              seed: int = 0) -> torch.Tensor:
    """ROAD's noisy linear imputation, approximated: removed cells (mask 1) take the mean of their
    4 neighbours, repeated until the values from the border have spread in, plus a little noise
    (a fraction of the input's spread)."""
    keep = 1 - mask
    y = x * keep + (x * keep).sum((-2, -1), keepdim=True) / keep.sum().clamp(min=1) * mask
    kernel = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=x.dtype) / 4
    kernel = kernel.view(1, 1, 3, 3).repeat(x.shape[0], 1, 1, 1)
    for _ in range(iterations):
        spread = F.conv2d(F.pad(y[None], (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[0])[0]
        y = x * keep + spread * mask
    g = torch.Generator().manual_seed(seed)
    return y + torch.randn(y.shape, generator=g) * float(x.std()) * noise * mask


def road(score: Callable, x: torch.Tensor, heatmap: np.ndarray, percents=ROAD_PERCENTS,
         batch_size: int = BATCH_SIZE) -> dict[int, float]:
    """Score drop (original - after) with the top p% cells removed by road_fill, per p."""
    masks = _masks(ranking(heatmap), heatmap.shape, [p / 100 for p in percents])
    batch = torch.stack([x] + [road_fill(x, m[None].expand_as(x)) for m in masks])
    s = _scores(score, batch, batch_size)
    return {int(p): float(s[0] - s[i + 1]) for i, p in enumerate(percents)}


def evaluate(score: Callable, x: torch.Tensor, heatmap: np.ndarray, baseline: torch.Tensor,
             steps: int = DEFAULT_STEPS, batch_size: int = BATCH_SIZE) -> Faithfulness:
    deletion = curve(score, x, heatmap, baseline, "deletion", steps, batch_size)
    insertion = curve(score, x, heatmap, baseline, "insertion", steps, batch_size)
    return Faithfulness(deletion=deletion, insertion=insertion, deletion_auc=auc(deletion),
                        insertion_auc=auc(insertion), road_drop=road(score, x, heatmap, batch_size=batch_size),
                        original=float(deletion[0]))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two maps (cells as observations, ties at their mean rank); 1.0 when both
    are constant, 0.0 when only one is."""
    from scipy.stats import spearmanr
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float(np.ptp(a) == np.ptp(b))
    return float(spearmanr(a, b).statistic)


def randomised(model: torch.nn.Module, modules: list[str], seed: int = 0) -> torch.nn.Module:
    """A copy of the model with the named submodules' parameters re-initialised (cascading
    randomisation: pass the last block, then the last two, ...). BatchNorm statistics are kept."""
    import copy
    torch.manual_seed(seed)
    copy_ = copy.deepcopy(model)
    named = dict(copy_.named_modules())
    missing = [m for m in modules if m not in named]
    if missing:
        raise ValueError(f"the model has no modules {missing}")
    for name in modules:
        for sub in named[name].modules():
            if hasattr(sub, "reset_parameters") and not isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
                sub.reset_parameters()
    return copy_


def sanity(explain: Callable[[torch.nn.Module], np.ndarray], model: torch.nn.Module, blocks: list[str],
           threshold: float = 0.5) -> dict:
    """explain(model) -> heatmap, for the trained model and for copies with the last 1, 2, ...
    of `blocks` (given first to last) re-initialised: the rank correlation with the trained map at
    each depth, and whether the map passes (some depth brings it below `threshold`)."""
    reference = explain(model)
    correlations = []
    for k in range(1, len(blocks) + 1):
        correlations.append(rank_correlation(reference, explain(randomised(model, blocks[-k:]))))
    return {"correlations": correlations, "passes": bool(min(correlations) < threshold), "threshold": threshold}


def curves_figure(results: dict, title: str = ""):
    """Deletion and insertion curves of one or more methods ({method: Faithfulness}), side by side,
    each with its area in the legend (matplotlib's object API: safe in the server's threads)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9.0, 3.4))
    axes = fig.subplots(1, 2, sharey=True)
    for method, r in results.items():
        share = np.linspace(0, 100, len(r.deletion))
        axes[0].plot(share, r.deletion, label=f"{method} ({r.deletion_auc:.3f})")
        axes[1].plot(share, r.insertion, label=f"{method} ({r.insertion_auc:.3f})")
    for ax, name, better in ((axes[0], "Deletion", "lower area is better"),
                             (axes[1], "Insertion", "higher area is better")):
        ax.set_title(f"{name}: {better}", fontsize=10, loc="left")
        ax.set_xlabel(f"% of the cells {'removed' if name == 'Deletion' else 'revealed'}, most highlighted first")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel("p(class)")
    axes[0].set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.17, top=0.82 if title else 0.9, wspace=0.06)
    return fig
