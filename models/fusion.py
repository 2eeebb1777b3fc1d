"""Late fusion of two classifiers' probability vectors (a drawn and a spoken digit).

Each model's probabilities are first calibrated by a temperature fitted on held-out data
(softmax(log p / T): T > 1 softens an over-confident model). Then either a product of
experts, p ∝ Π p_i^(1/T_i), which lets the confident modality win when the other is
unsure, or a small learned head (logistic regression on the tempered log-probabilities).
"""
from __future__ import annotations

import numpy as np
import torch

TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(20.0), 121))
EPS = 1e-12


def tempered_log_probs(probs: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(log p / T), row-wise."""
    z = np.log(np.clip(probs, EPS, 1.0)) / temperature
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def nll(probs: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    return float(-tempered_log_probs(probs, temperature)[np.arange(len(labels)), labels].mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood on (probs, labels)."""
    losses = [nll(probs, labels, t) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def product_of_experts(probs: list[np.ndarray], temperatures: list[float]) -> np.ndarray:
    """p ∝ Π_i softmax(log p_i / T_i); works on one vector (K,) or a batch (N, K)."""
    logp = sum(tempered_log_probs(p, t) for p, t in zip(probs, temperatures))
    logp = logp - logp.max(axis=-1, keepdims=True)
    out = np.exp(logp)
    return out / out.sum(axis=-1, keepdims=True)


class FusionHead:
    """Logistic regression on the concatenated tempered log-probabilities of the modalities:
    softmax(W [log p_1; log p_2] + b)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, temperatures: list[float]):
        self.weight, self.bias, self.temperatures = np.asarray(weight), np.asarray(bias), list(temperatures)

    def features(self, probs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([tempered_log_probs(np.atleast_2d(p), t) for p, t in zip(probs, self.temperatures)], -1)

    def __call__(self, probs: list[np.ndarray]) -> np.ndarray:
        z = self.features(probs) @ self.weight.T + self.bias
        z -= z.max(axis=-1, keepdims=True)
        out = np.exp(z)
        out /= out.sum(axis=-1, keepdims=True)
        return out[0] if np.ndim(probs[0]) == 1 else out

    @classmethod
    def fit(cls, probs: list[np.ndarray], labels: np.ndarray, temperatures: list[float], steps: int = 200,
            weight_decay: float = 1e-3) -> "FusionHead":
        """A weight per modality and a bias per class (K + M parameters: robust on a few
        thousand pairs), fitted by cross-entropy; starts from the plain product (weights 1)."""
        head = cls(np.zeros(1), np.zeros(1), temperatures)
        x = torch.from_numpy(head.features(probs)).double()
        y = torch.from_numpy(np.asarray(labels)).long()
        m, k = len(probs), probs[0].shape[-1]
        scale = torch.ones(m, dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        eye = torch.eye(k, dtype=torch.float64)

        def weight():
            return torch.cat([s * eye for s in scale], 1)

        opt = torch.optim.LBFGS([scale, bias], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(x @ weight().T + bias, y) + weight_decay * bias.pow(2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        with torch.no_grad():
            return cls(weight().numpy(), bias.numpy(), temperatures)

    def to_dict(self) -> dict:
        return {"weight": self.weight.tolist(), "bias": self.bias.tolist(), "temperatures": self.temperatures}

    @classmethod
    def from_dict(cls, d: dict) -> "FusionHead":
        return cls(np.asarray(d["weight"], np.float64), np.asarray(d["bias"], np.float64), d["temperatures"])
