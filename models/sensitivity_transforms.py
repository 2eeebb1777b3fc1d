"""The image transformations of the sensitivity study (models.sensitivity_sweep): each one's
imgaug augmenter for a magnitude, its ranges and how it is shown, and the inverse mapping of a
heatmap back onto the original image's grid (`inverse_warp`: exact for shear, scale and
perspective, the identity for the photometric ones, only approximate for elastic) with the
pixels still inside the frame (`valid_mask`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import imgaug.augmenters as iaa
import imgaug.augmentables.kps as ia_kps
import numpy as np

SEED = 1234              # random transformations (perspective, elastic) are seeded: same magnitude, same image
ELASTIC_SIGMA = 8.0      # smoothness of the elastic displacement field, in pixels


@dataclass(frozen=True)
class Transform:
    """One transformation of the study: its imgaug augmenter for a magnitude, and its ranges."""

    name: str
    make: Callable[[float], iaa.Augmenter]   # magnitude -> deterministic augmenter
    identity: float                          # magnitude that leaves the image unchanged
    lo: float                                # default sweep range
    hi: float
    limits: tuple[float, float]              # what the app's sliders allow
    fmt: Callable[[float], str]              # magnitude as shown to users ("x0.40", "+15.0 deg")
    unit: str                                # what the magnitude measures (plot axis, app)
    geometry: str                            # "none" (photometric), "exact" or "approximate" inverse mapping
    description: str

    def is_identity(self, magnitude: float) -> bool:
        return abs(float(magnitude) - self.identity) < 1e-6


def _times(m: float) -> str:
    return f"x{m:.2f}"


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("brightness", lambda m: iaa.Multiply(float(m)), identity=1.0, lo=0.2, hi=2.0, limits=(0.0, 3.0),
              fmt=_times, unit="factor", geometry="none",
              description="every pixel value multiplied by the magnitude (iaa.Multiply)"),
    Transform("shear", lambda m: iaa.ShearX(float(m)), identity=0.0, lo=-45.0, hi=45.0, limits=(-80.0, 80.0),
              fmt=lambda m: f"{m:+.1f}\u00b0", unit="degrees", geometry="exact",
              description="horizontal shear about the centre, black fill (iaa.ShearX)"),
    Transform("contrast", lambda m: iaa.LinearContrast(float(m)), identity=1.0, lo=0.2, hi=2.0, limits=(0.0, 3.0),
              fmt=_times, unit="factor", geometry="none",
              description="contrast around mid-grey scaled by the magnitude (iaa.LinearContrast)"),
    Transform("scale", lambda m: iaa.Affine(scale=float(m)), identity=1.0, lo=0.5, hi=1.5, limits=(0.1, 3.0),
              fmt=_times, unit="factor", geometry="exact",
              description="zoom about the centre, same frame size, black fill (iaa.Affine(scale=...))"),
    Transform("perspective", lambda m: iaa.PerspectiveTransform(scale=float(m), keep_size=True, seed=SEED),
              identity=0.0, lo=0.0, hi=0.25, limits=(0.0, 0.5),
              fmt=lambda m: f"{m:.3f}", unit="corner jitter, fraction of the size", geometry="exact",
              description="corners pulled inwards by a seeded random amount proportional to the magnitude "
                          "(iaa.PerspectiveTransform); same seed for every magnitude"),
    Transform("elastic", lambda m: iaa.ElasticTransformation(alpha=float(m), sigma=ELASTIC_SIGMA, seed=SEED),
              identity=0.0, lo=0.0, hi=120.0, limits=(0.0, 400.0),
              fmt=lambda m: f"\u03b1={m:.0f}", unit="alpha, displacement strength", geometry="approximate",
              description=f"seeded random displacement field of strength alpha, smoothed with sigma="
                          f"{ELASTIC_SIGMA:g} px (iaa.ElasticTransformation); the CAM is compared without "
                          "undoing the displacement, so its figures are approximate"),
)}


def get_transform(transform: str | Transform) -> Transform:
    if isinstance(transform, Transform):
        return transform
    try:
        return TRANSFORMS[str(transform).lower()]
    except KeyError:
        raise ValueError(f"unknown transformation {transform!r}; choose one of {list(TRANSFORMS)}") from None


def magnitudes(name: str, lo: float | None = None, hi: float | None = None, n: int = 10) -> np.ndarray:
    """`n` evenly spaced magnitudes from lo to hi (the transformation's defaults when None)."""
    spec = get_transform(name)
    lo = spec.lo if lo is None else float(lo)
    hi = spec.hi if hi is None else float(hi)
    if n < 1:
        raise ValueError("the sweep needs at least one magnitude")
    low, high = spec.limits
    if not (low <= lo <= high and low <= hi <= high):  # also keeps imgaug away from absurd values
        raise ValueError(f"{spec.name} magnitudes must lie in {spec.fmt(low)}..{spec.fmt(high)}; "
                         f"got {spec.fmt(lo)}..{spec.fmt(hi)}")
    return np.linspace(lo, hi, int(n))


# -- applying transformations


def apply(image: np.ndarray, transform: str | Transform, magnitude: float) -> np.ndarray:
    """Transform one image (H, W, 3) uint8, or a heatmap (H, W) float32, deterministically.

    The identity magnitude returns an exact copy (imgaug is exact there too, but we do not
    rely on it).
    """
    spec = get_transform(transform)
    if spec.is_identity(magnitude):
        return np.array(image, copy=True)
    return spec.make(magnitude)(image=np.ascontiguousarray(image))


def _perspective_matrix(shape: tuple[int, int], magnitude: float) -> np.ndarray:
    """3x3 homography from original to transformed pixel coordinates (cv2 convention).

    Found by pushing four keypoints through the very same seeded augmenter as the image.
    """
    h, w = shape[:2]
    src = np.float32([[0.25 * w, 0.25 * h], [0.75 * w, 0.25 * h], [0.75 * w, 0.75 * h], [0.25 * w, 0.75 * h]])
    kps = ia_kps.KeypointsOnImage([ia_kps.Keypoint(x=float(x), y=float(y)) for x, y in src], shape=(h, w, 3))
    out = TRANSFORMS["perspective"].make(magnitude)(keypoints=kps)
    dst = np.float32([[k.x, k.y] for k in out.keypoints])
    return cv2.getPerspectiveTransform(src, dst)


def inverse_warp(heatmap: np.ndarray, transform: str | Transform, magnitude: float) -> np.ndarray:
    """Map a heatmap computed on the transformed image back onto the original image's grid.

    Shear and scale: imgaug's own affine with the negated shear / inverse scale (same centre,
    same resampling as the forward transform). Perspective: the homography of the seeded
    forward transform, inverted. Photometric transforms: nothing to undo. Elastic: the
    random displacement field is not invertible in closed form; returned unchanged
    (approximate: figures for elastic are marked so).
    """
    spec = get_transform(transform)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if spec.geometry != "exact" or spec.is_identity(magnitude):
        return heatmap.copy()
    if spec.name == "shear":
        return iaa.ShearX(-float(magnitude))(image=heatmap)
    if spec.name == "scale":
        if magnitude <= 0:
            raise ValueError("scale must be positive")
        return iaa.Affine(scale=1.0 / float(magnitude))(image=heatmap)
    if spec.name == "perspective":
        h, w = heatmap.shape[:2]
        forward = _perspective_matrix((h, w), magnitude)
        # dst(p) = src(forward @ p): reads the transformed heatmap where each original pixel went
        return cv2.warpPerspective(heatmap, forward, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    raise NotImplementedError(spec.name)


def valid_mask(shape: tuple[int, int], transform: str | Transform, magnitude: float) -> np.ndarray:
    """Pixels of the original image that stay inside the frame after the transformation."""
    return inverse_warp(np.ones(shape[:2], np.float32), transform, magnitude) > 0.5
