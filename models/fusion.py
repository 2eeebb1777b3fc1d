"""Late fusion of two classifiers' probability vectors (a drawn and a spoken digit).

Each model's probabilities are first calibrated by a temperature fitted on held-out data
(softmax(log p / T): T > 1 softens an over-confident model). Then either a product of
experts, p ∝ Π p_i^(1/T_i), which lets the confident modality win when the other is
unsure, or a small learned head that weighs each modality by how sure it is on the input
and by how clean the input looks (a quality measure computed from the input itself: a model
fed noise is often confidently wrong, so its own confidence cannot tell the head to ignore it).
"""
from __future__ import annotations

import numpy as np
import torch

QUALITY_SNR_CAP_DB = 60.0


def image_quality(x01: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, 1, H, W) digits in [0, 1], white on black -> (N, 2): the share of
    mid-grey pixels and the mean jump between neighbouring pixels. A clean digit is mostly
    black with a few strokes; noise raises both."""
    x = np.asarray(x01, np.float64).reshape(len(x01), *np.shape(x01)[-2:])
    mid = ((x > 0.2) & (x < 0.8)).mean((1, 2))
    jumps = np.abs(np.diff(x, axis=1)).mean((1, 2)) + np.abs(np.diff(x, axis=2)).mean((1, 2))
    return np.stack([mid, jumps], 1)


def audio_quality(waves: np.ndarray, frame: int = 400) -> np.ndarray:
    """(N, samples) -> (N, 1): a signal-to-noise estimate, the loud frames' energy over the quiet
    frames' (90th / 10th percentile, dB, capped at 60 and scaled to [0, 1]). A word has pauses;
    a steady noise fills them."""
    rows = []
    for w in np.atleast_2d(np.asarray(waves, np.float64)):
        n = max(len(w) // frame, 1)
        energy = np.square(np.pad(w, (0, max(n * frame - len(w), 0)))[: n * frame]).reshape(n, -1).mean(1)
        loud, quiet = np.percentile(energy, 90), np.percentile(energy, 10)
        snr = 10 * np.log10((loud + 1e-10) / (quiet + 1e-10))
        rows.append([min(max(snr, 0.0), QUALITY_SNR_CAP_DB) / QUALITY_SNR_CAP_DB])
    return np.asarray(rows)


def degradation_scale(clean: np.ndarray, degraded: np.ndarray, knots: int = 3) -> dict:
    """How to read a quality measure as degradation: the range of the measures on clean inputs
    (1st-99th percentile) and `knots` hinge points spread over how far degraded inputs lie
    beyond it (their quantiles). Either direction counts: noise raises the image measures and
    lowers the audio one."""
    clean = np.asarray(clean, np.float64).reshape(len(clean), -1)
    lo, hi = np.percentile(clean, 1, axis=0), np.percentile(clean, 99, axis=0)
    beyond = _beyond(np.asarray(degraded, np.float64).reshape(len(degraded), -1), lo, hi)
    points = []
    for column in beyond.T:
        past = column[column > 0]
        qs = np.percentile(past, np.linspace(0, 100, knots + 1)[1:-1]) if len(past) and knots > 1 else []
        points.append([0.0, *map(float, qs)])
    return {"lo": lo.tolist(), "hi": hi.tolist(), "knots": points}


def _beyond(q: np.ndarray, lo, hi) -> np.ndarray:
    return np.maximum(0.0, q - np.asarray(hi)) + np.maximum(0.0, np.asarray(lo) - q)


def degradation(q: np.ndarray, scale: dict) -> np.ndarray:
    """(N, D) quality measures -> (N, D * knots) hinge features, all 0 for an input that looks
    as clean as the clean calibration inputs: a gate built on them leaves such inputs' weights
    alone and can fall in steps as an input looks worse (a piecewise-linear gate)."""
    q = np.asarray(q, np.float64).reshape(len(q), -1)
    beyond = _beyond(q, scale["lo"], scale["hi"])
    return np.concatenate([np.maximum(0.0, beyond[:, [j]] - np.asarray(k)[None]) for j, k in enumerate(scale["knots"])], 1)


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
    """A learned, gated product: log p ∝ Σ_i w_i · log p_i + b, where each weight
    w_i = softplus(a_i + c_i · g_i) depends on gate features g_i of that modality on this input:
    its entropy H_i and output p_i (confidence=True) and its input's quality measures q_i
    (image_quality, audio_quality; optional), taken as they are or, with `scales`, as
    degradation hinge features (see degradation()), which are 0 on a clean-looking input; with
    joint=True each gate sees every modality's quality features, not only its own. With
    `smoothing` ε_i, each model's calibrated probabilities are first mixed with the uniform,
    (1 - ε_i) p_i + ε_i / K: no single model can then veto a class outright (a model fed
    noise often gives the true class a probability of 1e-9). It
    learns how far to trust each model, to trust it less when its input looks degraded (a model
    fed noise is often confidently wrong) and, with confidence features, when it hesitates."""

    def __init__(self, a: np.ndarray, c: np.ndarray, bias: np.ndarray, temperatures: list[float],
                 confidence: bool = True, scales: list[dict] | None = None, joint: bool = False,
                 smoothing: list[float] | None = None):
        self.a, self.c, self.bias = np.asarray(a, np.float64), np.asarray(c, np.float64), np.asarray(bias, np.float64)
        self.temperatures = list(temperatures)
        self.confidence, self.scales, self.joint = bool(confidence), scales, bool(joint)
        self.smoothing = None if smoothing is None else [float(e) for e in smoothing]

    @property
    def quality_dims(self) -> int:
        """How many quality features the gates take (each modality's zero-padded to this; 0: none)."""
        if self.c.ndim != 2:
            return 0
        return self.c.shape[1] - (len(self.bias) + 1 if self.confidence else 0)

    def _inputs(self, probs: list[np.ndarray], quality: list[np.ndarray] | None = None):
        """Per modality: tempered log-probs (N, K) and gate features [entropy, probs][, quality]."""
        logps = [tempered_log_probs(np.atleast_2d(p), t) for p, t in zip(probs, self.temperatures)]
        gates = [np.concatenate([-(np.exp(lp) * lp).sum(-1, keepdims=True), np.exp(lp)], -1) if self.confidence
                 else np.zeros((len(lp), 0)) for lp in logps]
        if quality is not None:
            qs = [np.asarray(q, np.float64).reshape(len(g), -1) for g, q in zip(gates, quality)]
            if self.scales is not None:
                qs = [degradation(q, scale) for q, scale in zip(qs, self.scales)]
            if self.joint:  # each gate sees every modality's quality: trust the sound less when the image is clean
                qs = [np.concatenate(qs, -1)] * len(qs)
            width = max(q.shape[1] for q in qs)
            gates = [np.concatenate([g, np.pad(q, ((0, 0), (0, width - q.shape[1])))], -1) for g, q in zip(gates, qs)]
        return logps, gates

    def __call__(self, probs: list[np.ndarray], quality: list[np.ndarray] | None = None) -> np.ndarray:
        if self.quality_dims and quality is None:
            raise ValueError("this fusion head gates on input quality: pass each modality's quality measures")
        logps, gates = self._inputs(probs, quality)
        if self.smoothing is not None:
            k = logps[0].shape[-1]
            logps = [np.logaddexp(np.log1p(-e) + lp, np.log(max(e, EPS) / k)) for e, lp in zip(self.smoothing, logps)]
        z = sum(np.logaddexp(0, a + g @ c)[:, None] * lp for a, c, g, lp in zip(self.a, self.c, gates, logps))
        z = z + self.bias
        z -= z.max(axis=-1, keepdims=True)
        out = np.exp(z)
        out /= out.sum(axis=-1, keepdims=True)
        return out[0] if np.ndim(probs[0]) == 1 else out

    def weights(self, probs: list[np.ndarray], quality: list[np.ndarray] | None = None) -> np.ndarray:
        """(N, M): each modality's weight on each input."""
        if self.quality_dims and quality is None:
            raise ValueError("this fusion head gates on input quality: pass each modality's quality measures")
        _, gates = self._inputs(probs, quality)
        return np.stack([np.logaddexp(0, a + g @ c) for a, c, g in zip(self.a, self.c, gates)], -1)

    @classmethod
    def fit(cls, probs: list[np.ndarray], labels: np.ndarray, temperatures: list[float], steps: int = 300,
            weight_decay: float = 1e-3, quality: list[np.ndarray] | None = None, confidence: bool = True,
            scales: list[dict] | None = None, class_bias: bool = True, joint: bool = False,
            smoothing: bool = False) -> "FusionHead":
        """Cross-entropy fit (LBFGS); starts from the plain product (weights softplus(0.55) = 1).
        class_bias=False keeps b at 0 (no learned class prior); smoothing=True also learns each
        model's ε (from 0.0025)."""
        logps, gates = cls(np.zeros(1), np.zeros(1), np.zeros(1), temperatures, confidence, scales,
                           joint)._inputs(probs, quality)
        lp = [torch.from_numpy(x).double() for x in logps]
        gs = [torch.from_numpy(g).double() for g in gates]
        y = torch.from_numpy(np.asarray(labels)).long()
        m, k = len(probs), probs[0].shape[-1]
        a = torch.full((m,), 0.5413, dtype=torch.float64, requires_grad=True)
        c = torch.zeros(m, gates[0].shape[1], dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(k, dtype=torch.float64, requires_grad=class_bias)
        e = torch.full((m,), -6.0, dtype=torch.float64, requires_grad=smoothing)  # ε = sigmoid(e)
        opt = torch.optim.LBFGS([a, c] + ([bias] if class_bias else []) + ([e] if smoothing else []), max_iter=steps,
                                line_search_fn="strong_wolfe")

        def mixed(i):
            if not smoothing:
                return lp[i]
            eps = torch.sigmoid(e[i]).clamp_min(EPS)
            return torch.logaddexp(torch.log1p(-eps) + lp[i], torch.log(eps / k))

        def closure():
            opt.zero_grad()
            z = sum(torch.nn.functional.softplus(a[i] + gs[i] @ c[i])[:, None] * mixed(i) for i in range(m)) + bias
            loss = torch.nn.functional.cross_entropy(z, y) + weight_decay * (bias.pow(2).sum() + c.pow(2).sum())
            loss.backward()
            return loss
        opt.step(closure)
        eps = torch.sigmoid(e).detach().numpy().tolist() if smoothing else None
        return cls(a.detach().numpy(), c.detach().numpy(), bias.detach().numpy(), temperatures, confidence, scales, joint,
                   eps)

    def to_dict(self) -> dict:
        return {"a": self.a.tolist(), "c": self.c.tolist(), "bias": self.bias.tolist(),
                "temperatures": self.temperatures, "confidence": self.confidence, "scales": self.scales,
                "joint": self.joint, "smoothing": self.smoothing}

    @classmethod
    def from_dict(cls, d: dict) -> "FusionHead":
        return cls(d["a"], d["c"], d["bias"], d["temperatures"], d.get("confidence", True), d.get("scales"),
                   d.get("joint", False), d.get("smoothing"))
