"""Predictor: one loaded model with its preprocessing, labels and CAM layer (the image one
here, models.audio_predictor the sound one; models.factory.load_predictor picks and loads).

    p = load_predictor("imagenet")            # task default, or "imagenet:effnet-lite1"
    p.predict("cat.jpg")                      # {label: prob}, most probable first
    p.explain("cat.jpg", method="GradCAM")    # heatmap in [0, 1], same H, W as the image
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from . import cam as cam_lib
from .image_frontend import load_image, mnist_style, to_tensor


@dataclass
class Analysis:
    """Everything the image explainer shows for one input."""

    image: Image.Image            # the RGB image the heatmap is aligned with
    probs: dict[str, float]       # top-k, most probable first
    target: str                   # class the CAM explains
    target_prob: float
    heatmap: np.ndarray           # (H, W) in [0, 1]


class Predictor:
    """What every modality shares: the model on its device, labels, targets, a lock."""

    modality = ""

    def __init__(self, model_id: str, model: torch.nn.Module, labels: list[str], spec,
                 cam_layer: str, device: torch.device, card: dict | None = None, multilabel: bool = False,
                 temperature: float = 1.0):
        self.model_id = model_id
        self.multilabel = bool(multilabel)      # sigmoid per class (AudioSet) instead of a softmax
        self.temperature = float(temperature)   # calibration fitted on validation data (1: none)
        self.labels = list(labels)
        self.spec = spec
        self.cam_layer = cam_layer
        self.device = device
        self.card = card or {}
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._label_index = {label: i for i, label in enumerate(self.labels)}
        # CAM hooks are attached to the shared model: one request at a time per model.
        self._lock = threading.Lock()

    def target_index(self, target) -> int | None:
        """None -> None (predicted class); int -> itself; label -> its index."""
        if target is None or target == "":
            return None
        if isinstance(target, (int, np.integer)):
            if not 0 <= int(target) < len(self.labels):
                raise ValueError(f"class index {target} out of range 0..{len(self.labels) - 1}")
            return int(target)
        if target in self._label_index:
            return self._label_index[target]
        raise ValueError(f"unknown class {target!r} for {self.model_id}")

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> probabilities: softmax(logits / T), or a sigmoid per class for multi-label models."""
        logits = logits.float() / self.temperature
        return logits.sigmoid() if self.multilabel else logits.softmax(-1)

    def _topk(self, probs: np.ndarray, top_k: int | None) -> dict[str, float]:
        order = np.argsort(-probs)[: top_k or len(probs)]
        return {self.labels[i]: float(probs[i]) for i in order}

    def predict_probs(self, inputs: list) -> np.ndarray:
        raise NotImplementedError

    def predict(self, x, top_k: int | None = None) -> dict[str, float]:
        """{label: probability}, most probable first."""
        return self._topk(self.predict_probs([x])[0], top_k)


class ImagePredictor(Predictor):
    modality = "image"

    # -- inputs
    def load(self, x) -> Image.Image:
        """The RGB image the model sees (and the heatmap is aligned with)."""
        img = load_image(x)
        if self.spec.invert_light_background:  # digit models: MNIST-style 28x28, white on black
            img = mnist_style(img, self.spec.size).convert("RGB")
        return img

    def _batch(self, images: list[Image.Image]) -> torch.Tensor:
        return to_tensor(images, self.spec).to(self.device)

    # -- contract
    def predict_probs(self, images: list) -> np.ndarray:
        """(N, K) class probabilities for a list of inputs, one forward pass."""
        batch = self._batch([self.load(x) for x in images])
        with self._lock, torch.inference_mode():
            return self.model(batch).float().softmax(-1).cpu().numpy()

    def explain_batch(self, images: list, method: str = cam_lib.DEFAULT_METHOD, targets=None
                      ) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
        """CAMs for N images in one pass: (probs (N, K), heatmaps on each image's grid, target ids)."""
        pil = [self.load(x) for x in images]
        if isinstance(targets, (list, tuple)):
            idx = [self.target_index(t) for t in targets]
        else:
            idx = [self.target_index(targets)] * len(pil)
        with self._lock:
            logits, cams, idx = cam_lib.compute_cams(self.model, self._batch(pil), self.cam_layer, method, idx)
        probs = logits.float().softmax(-1).cpu().numpy()
        heatmaps = [cam_lib.upsample(c, (img.height, img.width)) for c, img in zip(cams, pil)]
        return probs, heatmaps, idx

    def explain(self, x, method: str = cam_lib.DEFAULT_METHOD, target=None) -> np.ndarray:
        return self.explain_batch([x], method, target)[1][0]

    def faithfulness(self, x, method: str = cam_lib.DEFAULT_METHOD, target=None, steps: int | None = None):
        """How faithful the CAM of one image and class is (models.faithfulness): deletion and
        insertion curves against a blurred copy, ROAD drops; on the model's input grid.
        Returns (Faithfulness, the class id)."""
        from . import faithfulness as fa
        image = self.load(x)
        batch = self._batch([image])
        with self._lock:
            _, cams, (t,) = cam_lib.compute_cams(self.model, batch, self.cam_layer, method, self.target_index(target))
            heat = cam_lib.upsample(cams[0], tuple(batch.shape[-2:]))
            x0 = batch[0]

            def score(b):
                with torch.inference_mode():
                    return self.model(b.to(self.device)).float().softmax(-1)[:, t]

            result = fa.evaluate(score, x0.cpu(), heat, fa.blurred(x0.cpu()), steps or fa.DEFAULT_STEPS)
        return result, t

    def analyze(self, x, method: str = cam_lib.DEFAULT_METHOD, target=None, top_k: int = 5) -> Analysis:
        """Prediction and CAM from a single forward pass (what the app shows)."""
        image = self.load(x)
        t = self.target_index(target)
        with self._lock:
            logits, cams, (t,) = cam_lib.compute_cams(self.model, self._batch([image]), self.cam_layer, method, t)
        probs = logits.float().softmax(-1)[0].cpu().numpy()
        return Analysis(image=image, probs=self._topk(probs, top_k), target=self.labels[t],
                        target_prob=float(probs[t]), heatmap=cam_lib.upsample(cams[0], (image.height, image.width)))

