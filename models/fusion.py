"""Late fusion of two classifiers' probability vectors (a drawn and a spoken digit).

Each model's probabilities are first calibrated by a temperature fitted on held-out data
(softmax(log p / T): T > 1 softens an over-confident model). Then either a product of
experts, p ∝ Π p_i^(1/T_i), which lets the confident modality win when the other is
unsure, or a small learned head that weighs each modality by how sure it is on the input.
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
    """A learned, confidence-gated product: log p ∝ Σ_i w_i · log p_i + b, where each weight
    w_i = softplus(a_i + c_i · [H_i, p_i]) depends on that modality's entropy H_i and output
    p_i on this input. K + 2 parameters per modality and a bias per class: it learns how far
    to trust each model, to trust it less when it hesitates (a noisy recording), and which
    confident answers are typical of garbage input (noise pushed into one class)."""

    def __init__(self, a: np.ndarray, c: np.ndarray, bias: np.ndarray, temperatures: list[float]):
        self.a, self.c, self.bias = np.asarray(a, np.float64), np.asarray(c, np.float64), np.asarray(bias, np.float64)
        self.temperatures = list(temperatures)

    def _inputs(self, probs: list[np.ndarray]):
        """Per modality: tempered log-probs (N, K) and gate features [entropy, probs] (N, K + 1)."""
        logps = [tempered_log_probs(np.atleast_2d(p), t) for p, t in zip(probs, self.temperatures)]
        gates = [np.concatenate([-(np.exp(lp) * lp).sum(-1, keepdims=True), np.exp(lp)], -1) for lp in logps]
        return logps, gates

    def __call__(self, probs: list[np.ndarray]) -> np.ndarray:
        logps, gates = self._inputs(probs)
        z = sum(np.logaddexp(0, a + g @ c)[:, None] * lp for a, c, g, lp in zip(self.a, self.c, gates, logps))
        z = z + self.bias
        z -= z.max(axis=-1, keepdims=True)
        out = np.exp(z)
        out /= out.sum(axis=-1, keepdims=True)
        return out[0] if np.ndim(probs[0]) == 1 else out

    def weights(self, probs: list[np.ndarray]) -> np.ndarray:
        """(N, M): each modality's weight on each input."""
        _, gates = self._inputs(probs)
        return np.stack([np.logaddexp(0, a + g @ c) for a, c, g in zip(self.a, self.c, gates)], -1)

    @classmethod
    def fit(cls, probs: list[np.ndarray], labels: np.ndarray, temperatures: list[float], steps: int = 300,
            weight_decay: float = 1e-3) -> "FusionHead":
        """Cross-entropy fit (LBFGS); starts from the plain product (weights softplus(0.55) = 1)."""
        logps, gates = cls(np.zeros(1), np.zeros(1), np.zeros(1), temperatures)._inputs(probs)
        lp = [torch.from_numpy(x).double() for x in logps]
        gs = [torch.from_numpy(g).double() for g in gates]
        y = torch.from_numpy(np.asarray(labels)).long()
        m, k = len(probs), probs[0].shape[-1]
        a = torch.full((m,), 0.5413, dtype=torch.float64, requires_grad=True)
        c = torch.zeros(m, k + 1, dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([a, c, bias], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            z = sum(torch.nn.functional.softplus(a[i] + gs[i] @ c[i])[:, None] * lp[i] for i in range(m)) + bias
            loss = torch.nn.functional.cross_entropy(z, y) + weight_decay * (bias.pow(2).sum() + c.pow(2).sum())
            loss.backward()
            return loss
        opt.step(closure)
        return cls(a.detach().numpy(), c.detach().numpy(), bias.detach().numpy(), temperatures)

    def to_dict(self) -> dict:
        return {"a": self.a.tolist(), "c": self.c.tolist(), "bias": self.bias.tolist(),
                "temperatures": self.temperatures}

    @classmethod
    def from_dict(cls, d: dict) -> "FusionHead":
        return cls(d["a"], d["c"], d["bias"], d["temperatures"])
