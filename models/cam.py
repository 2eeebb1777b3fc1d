"""Class activation maps: a thin, safe wrapper around torchcam.

- one extractor per model at a time, used as a context manager, so hooks are always removed;
- gradients are enabled only inside (the rest of the app runs under inference mode);
- batches: N inputs, N target classes, one forward pass;
- the ScoreCAM family is made usable on CPU by scoring only the top-k channels (see
  TopKScoreMixin): torchcam's ScoreCAM scores all 1280 channels of EfficientNet-Lite0,
  i.e. 1280 forward passes (52 s per image here).
"""
from __future__ import annotations

from contextlib import contextmanager

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchcam import methods as tc

SCORE_TOP_K = 24  # channels scored by the ScoreCAM family (by mean activation)


class TopKScoreMixin:
    """Score only the `top_k` most active channels of the target layer; others get weight 0.

    Channels with little activation contribute little to the CAM anyway, and the cost of
    ScoreCAM is one forward pass per scored channel. The weights of the scored channels
    are computed exactly as torchcam does (softmax of the score increase).
    """

    def __init__(self, *args, top_k: int = SCORE_TOP_K, **kwargs):
        super().__init__(*args, **kwargs)
        self.top_k = top_k

    @torch.no_grad()
    def _get_weights(self, class_idx, *_, targets=None):
        subsets, indices = [], []
        for act in self.hook_a:
            k = min(self.top_k, act.shape[1])
            idx = act.flatten(2).mean(-1).topk(k, dim=1).indices            # (N, k)
            sub = act.gather(1, idx[(...,) + (None,) * (act.ndim - 2)].expand(-1, -1, *act.shape[2:]))
            subsets.append(self._normalize(sub.clone(), act.ndim - 2))
            indices.append(idx)
        with self._hooks_off(), self._eval_mode():
            sub_weights = self._get_score_weights(subsets, class_idx, targets)
        return [act.new_zeros(act.shape[:2]).scatter_(1, idx, w)
                for act, idx, w in zip(self.hook_a, indices, sub_weights)]


class FastScoreCAM(TopKScoreMixin, tc.ScoreCAM):
    pass


class FastSSCAM(TopKScoreMixin, tc.SSCAM):
    pass


class FastISCAM(TopKScoreMixin, tc.ISCAM):
    pass


# name shown to users -> (extractor class, constructor kwargs)
METHODS: dict[str, tuple[type, dict]] = {
    "GradCAM": (tc.GradCAM, {}),
    "GradCAM++": (tc.GradCAMpp, {}),
    "SmoothGradCAM++": (tc.SmoothGradCAMpp, {"num_samples": 4}),
    "XGradCAM": (tc.XGradCAM, {}),
    "LayerCAM": (tc.LayerCAM, {}),
    f"ScoreCAM (top-{SCORE_TOP_K} channels)": (FastScoreCAM, {"batch_size": SCORE_TOP_K}),
    "SSCAM (top-16 channels, 2 samples)": (FastSSCAM, {"top_k": 16, "batch_size": 16, "num_samples": 2}),
    "ISCAM (top-16 channels, 2 steps)": (FastISCAM, {"top_k": 16, "batch_size": 16, "num_samples": 2}),
}
DEFAULT_METHOD = "GradCAM"


def _resolve(method: str) -> tuple[type, dict]:
    if method in METHODS:
        return METHODS[method]
    for name, spec in METHODS.items():  # accept "ScoreCAM" for "ScoreCAM (top-24 channels)"
        if name.split(" ")[0].lower() == method.lower():
            return spec
    raise ValueError(f"unknown CAM method {method!r}; choose one of {list(METHODS)}")


@contextmanager
def cam_extractor(model: nn.Module, layer: str | tuple[str, ...], method: str = DEFAULT_METHOD):
    """torchcam extractor on `model[layer]` (on several layers for a tuple: it then returns one map per
    layer); its hooks are removed on exit, even on error."""
    cls, kwargs = _resolve(method)
    names = layer_names(layer)
    extractor = cls(model, target_layer=names if len(names) > 1 else names[0], **kwargs)
    try:
        yield extractor
    finally:
        extractor.remove_hooks()


def compute_cams(model: nn.Module, x: torch.Tensor, layer: str | tuple[str, ...], method: str = DEFAULT_METHOD,
                 targets: int | list[int | None] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Forward `x` (N, C, H, W) once; return (logits (N, K), CAMs (N, h, w) in [0, 1], class ids).

    `targets`: class index for all, one per sample, or None (for all or per sample) for
    that sample's top-1 class.
    The CAMs are at the target layer's resolution (the finest one's, for several); see `upsample` for the input grid.
    """
    names = layer_names(layer)  # several layers: their maps fused (fuse_layers), then normalised
    with torch.inference_mode(False), torch.enable_grad(), cam_extractor(model, layer, method) as extractor:
        x = x.clone().requires_grad_(True)  # graph is recorded even if the weights are frozen
        logits = model(x)
        top1 = logits.argmax(1).tolist()
        if targets is None or isinstance(targets, int):
            targets = [targets] * x.shape[0]
        class_idx = [top1[n] if t is None else int(t) for n, t in enumerate(targets)]
        if len(names) == 1:
            cams = extractor(class_idx=class_idx, scores=logits)[0]
        else:
            cams = torch.nan_to_num(fuse_layers(extractor(class_idx=class_idx, scores=logits, normalized=False)), nan=0.0)
            cams = cams / cams.flatten(1).amax(1).clamp(min=1e-12)[:, None, None]
    cams = torch.nan_to_num(cams.detach().float(), nan=0.0).clamp_(0, 1)
    return logits.detach(), cams, class_idx


def layer_names(layer: str | tuple[str, ...]) -> list[str]:
    """A CAM layer spec as a list of module names: one layer, or several (earliest first) whose maps
    are fused by `fuse_layers`."""
    return [layer] if isinstance(layer, str) else list(layer)


def describe_layers(layer: str | tuple[str, ...]) -> str:
    """A model panel's line: "CAM layer: `x`", or "CAM layers: `a` x `b` (fused: ...)" for fused layers."""
    names = layer_names(layer)
    text = " x ".join(f"`{name}`" for name in names)
    if len(names) == 1:
        return f"CAM layer: {text}"
    return f"CAM layers: {text} (fused: the rows of {names[0]}, the time profile of {names[-1]})"


def fuse_layers(cams: list[torch.Tensor]) -> torch.Tensor:
    """CAMs (N, h_i, w_i) >= 0 of the same inputs at several layers, the finest first, the deepest last ->
    one map on the finest grid (coarser maps upsampled bilinearly) whose time profile (the sum over
    frequency rows, each column) is the deepest layer's, and whose rows share each column as the
    product of all the maps does: the deep layer says when the sound is, the finer ones where in
    frequency. Where the product is zero over a whole column, the deep layer's own column is kept.
    Unnormalised maps stay on one scale across inputs (each layer's scale is)."""
    size = tuple(cams[0].shape[-2:])
    up = [cams[0].clamp(min=0)] + [F.interpolate(c[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
                                  .clamp(min=0) for c in cams[1:]]
    if len(up) == 1:
        return up[0]
    deep = up[-1]
    product = torch.stack(up).prod(0)
    column = product.sum(1, keepdim=True)
    share = torch.where(column > 0, product / column.clamp(min=1e-30), deep / deep.sum(1, keepdim=True).clamp(min=1e-30))
    return share * deep.sum(1, keepdim=True)


def upsample(cam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """One CAM (h, w) -> float32 array of `size` (H, W), values in [0, 1]."""
    up = F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return up.clamp_(0, 1).cpu().numpy().astype(np.float32)


@lru_cache(maxsize=8)
def colormap_lut(name: str) -> np.ndarray:
    """A matplotlib colour map as a (256, 3) float32 table of 0-255 RGB values (computed once)."""
    import matplotlib
    return (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.float32)


def _jet_lut() -> np.ndarray:
    return colormap_lut("jet").astype(np.uint8)


_LUT = _jet_lut()


def colorize(heatmap: np.ndarray) -> Image.Image:
    """Heatmap in [0, 1] -> RGB image with the jet colour map."""
    return Image.fromarray(_LUT[(np.clip(heatmap, 0, 1) * 255).astype(np.uint8)])


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """Blend the coloured heatmap (same H, W as the image) over the image."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    heat = _LUT[(np.clip(heatmap, 0, 1) * 255).astype(np.uint8)].astype(np.float32)
    if heat.shape[:2] != base.shape[:2]:
        raise ValueError(f"heatmap {heat.shape[:2]} does not match image {base.shape[:2]}")
    return Image.fromarray((base * (1 - alpha) + heat * alpha).astype(np.uint8))
