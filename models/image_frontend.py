"""Image front end: safe loading of whatever a user uploads, and the tensor a model eats.

Every odd file a user may hand us (greyscale, RGBA, 16-bit PNG, CMYK JPEG, animated GIF,
a decompression bomb, a text file called .png) ends as an RGB PIL image or an InputError
with a one-line message.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError, check_upload
from .limits import LIMITS

# Larger images are refused before decoding (a 20000x20000 PNG is 1.2 GB of RGB).
MAX_PIXELS = int(LIMITS.image_megapixels * 1_000_000)
# Images are shrunk to this longer side once loaded: the model sees 224-260 px anyway,
# and overlays at camera resolution would only cost time.
WORK_MAX_SIDE = 1024
MAX_FILE_BYTES = LIMITS.bytes(LIMITS.image_upload_mb)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageSpec:
    """How a model wants its images: square size and per-channel normalisation."""

    size: int
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    grayscale: bool = False
    # MNIST-style digits: white ink on black, centred by mass in a 20x20 box of a 28x28 image.
    # A drawing (dark ink on white) or a photo of a digit is brought to that form first.
    invert_light_background: bool = False

    def to_dict(self) -> dict:
        return {"kind": "image", "size": self.size, "mean": list(self.mean), "std": list(self.std),
                "grayscale": self.grayscale, "invert_light_background": self.invert_light_background}

    @classmethod
    def from_dict(cls, d: dict) -> "ImageSpec":
        return cls(size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]),
                   grayscale=bool(d.get("grayscale", False)),
                   invert_light_background=bool(d.get("invert_light_background", False)))


def is_mnist_style(arr: np.ndarray, size: int = 28, box: int = 20) -> bool:
    """Is this grey (H, W) image already a digit in MNIST's form: `size` square, white ink on an
    exactly black background, the ink within a `box` square and centred by its mass (every MNIST
    image is)? Such an image is the digit model's input as it stands."""
    if arr.shape != (size, size) or np.median(arr) != 0 or arr.max() <= 0:
        return False
    ys, xs = np.nonzero(arr)
    if ys.max() - ys.min() >= box or xs.max() - xs.min() >= box:
        return False
    mass = arr.astype(np.float64)
    total = mass.sum()
    cy, cx = (np.arange(size) @ mass.sum(1)) / total, (np.arange(size) @ mass.sum(0)) / total
    # mnist_style and MNIST place the centre of mass by a whole-pixel shift: within a pixel of the middle
    return abs(cy - size / 2) <= 1 and abs(cx - size / 2) <= 1


def mnist_style(img: Image.Image, size: int = 28, box: int = 20) -> Image.Image:
    """Grey image -> white-on-black digit, cropped to its ink, fitted in `box` and centred
    by its centre of mass in a `size` square (how MNIST digits were made).

    An image already in that form (an MNIST digit, dark-on-light too, or a drawing this
    function has already made so) is kept pixel for pixel: re-making it would change it (the
    crop's threshold cuts faint anti-aliased edges, the stretch brightens a digit whose brightest
    pixel is 254), and the model would no longer see what it was trained and evaluated on."""
    grey = np.asarray(img.convert("L"))
    if grey.mean() > 127:  # light background: dark ink
        grey = 255 - grey
    if is_mnist_style(grey, size, box):
        return Image.fromarray(np.ascontiguousarray(grey))
    arr = grey.astype(np.float32)
    arr = np.clip(arr - np.median(arr), 0, None)  # remove the background level
    if arr.max() <= 0:
        return Image.new("L", (size, size))
    arr = arr * (255.0 / arr.max())
    ys, xs = np.nonzero(arr > 40)
    if len(ys) == 0:
        return Image.new("L", (size, size))
    crop = Image.fromarray(arr[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.uint8))
    scale = box / max(crop.size)
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                       Image.Resampling.LANCZOS)
    c = np.asarray(crop, dtype=np.float32)
    total = c.sum() or 1.0
    cy, cx = (np.arange(c.shape[0]) @ c.sum(1)) / total, (np.arange(c.shape[1]) @ c.sum(0)) / total
    canvas = Image.new("L", (size, size))
    canvas.paste(crop, (int(round(size / 2 - cx)), int(round(size / 2 - cy))))
    return canvas


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, compositing transparency on white."""
    if getattr(img, "is_animated", False):
        img.seek(0)  # first frame of an animated GIF/PNG/WebP
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def _shrink(img: Image.Image, max_side: int = WORK_MAX_SIDE) -> Image.Image:
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return img


def load_image(x, max_side: int = WORK_MAX_SIDE) -> Image.Image:
    """Load a path, PIL image or numpy array as an RGB PIL image (longer side <= max_side)."""
    if x is None:
        raise InputError("No image given: upload an image or pick an example.")
    if isinstance(x, np.ndarray):
        arr = x
        if arr.size == 0:
            raise InputError("The image is empty.")
        if arr.dtype != np.uint8:
            arr = np.nan_to_num(arr.astype(np.float64))
            arr = arr * 255.0 if arr.max() <= 1.0 else arr
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        return _shrink(_to_rgb(Image.fromarray(arr)), max_side)
    if isinstance(x, Image.Image):
        return _shrink(_to_rgb(x), max_side)
    path = Path(x)
    check_upload(path, MAX_FILE_BYTES)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise InputError(f"{path.name} is {img.width}x{img.height} pixels; the limit is "
                                     f"{MAX_PIXELS / 1e6:.0f} megapixels.")
                img.draft("RGB", (max_side, max_side))  # JPEG: decode at reduced scale, much faster
                img = ImageOps.exif_transpose(img) if img.format == "JPEG" else img
                rgb = _to_rgb(img)
                rgb.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise InputError(f"{path.name} is not an image file this app can read (PNG, JPEG, GIF, WebP, BMP, TIFF).") from None
        raise InputError(f"{path.name} has too many pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels.") from None
    except (OSError, ValueError, SyntaxError) as exc:  # the decoder's words for us, ours for the user
        log.warning("could not decode %s: %s: %s", path.name, type(exc).__name__, str(exc).strip())
        raise InputError(f"{path.name} is damaged or truncated: the image could not be decoded; try saving it again "
                         f"as PNG or JPEG.") from None
    if min(rgb.size) < 1:
        raise InputError(f"{path.name} has no pixels.")
    return _shrink(rgb, max_side)


def pixels(img: Image.Image, size: int, grayscale: bool = False) -> np.ndarray:
    """(C, size, size) uint8: the image resized whole (bilinear, no crop, so a heatmap maps back
    onto all of it); C = 1 for grey models, else 3. The training sets are made with it too."""
    img = img.convert("L") if grayscale else img.convert("RGB")
    resized = img.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(resized, dtype=np.uint8)
    return arr[None] if grayscale else arr.transpose(2, 0, 1)


def normalise(batch: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 pixels (..., C, H, W) -> the float tensor a model eats: / 255, minus the mean, over the
    std, per channel (the first C of `mean`, `std`). The one definition, used by the app
    (to_tensor) and by every image training set, so a model is served exactly the numbers it
    was trained and evaluated on."""
    x = batch.to(torch.float32, copy=True).div_(255.0)
    channels = x.shape[-3]
    mean = torch.as_tensor(mean, dtype=torch.float32).flatten()[:channels].view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32).flatten()[:channels].view(-1, 1, 1)
    return x.sub_(mean).div_(std)


def to_tensor(images: list[Image.Image], spec: ImageSpec) -> torch.Tensor:
    """(N, C, size, size): each image through `pixels` and `normalise`, as training made its inputs."""
    batch = torch.from_numpy(np.stack([pixels(img, spec.size, spec.grayscale) for img in images]))
    return normalise(batch, spec.mean, spec.std)
