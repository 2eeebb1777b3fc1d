"""Late fusion on synthetic experts with known behaviour, and the study's degradations."""
import numpy as np
import torch

from models.fusion import FusionHead, fit_temperature, nll, product_of_experts, tempered_log_probs
from training.fusion_study import AUDIO_SNR, check_bar, degrade_audio, degrade_images

K = 10


def softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def expert(labels, strength, rng, noise=1.0):
    """Logits: `strength` on the true class plus Gaussian noise (independent per expert)."""
    z = rng.normal(0, noise, (len(labels), K))
    z[np.arange(len(labels)), labels] += strength
    return z


def test_fit_temperature_recovers_over_confidence():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2.0, (4000, K))
    calibrated = softmax(z)
    labels = np.array([rng.choice(K, p=p) for p in calibrated])  # drawn from the calibrated model
    over_confident = softmax(3.0 * z)
    t = fit_temperature(over_confident, labels)
    assert 2.4 < t < 3.8
    assert nll(over_confident, labels, t) < nll(over_confident, labels, 1.0)
    np.testing.assert_allclose(np.exp(tempered_log_probs(over_confident, 3.0)), calibrated, atol=1e-3)


def test_product_of_experts_beats_each_independent_expert():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, K, 5000)
    a, b = softmax(expert(labels, 1.6, rng)), softmax(expert(labels, 1.6, rng))
    acc = lambda p: (p.argmax(1) == labels).mean()  # noqa: E731
    fused = product_of_experts([a, b], [1.0, 1.0])
    assert acc(fused) > max(acc(a), acc(b)) + 0.05
    np.testing.assert_allclose(fused.sum(1), 1.0, rtol=1e-6)
    single = product_of_experts([a[0], b[0]], [1.0, 1.0])  # one vector works too
    np.testing.assert_allclose(single, fused[0], rtol=1e-6)


def test_learned_head_learns_to_ignore_a_useless_modality():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, K, 4000)
    good = softmax(expert(labels, 2.0, rng))
    junk = softmax(rng.normal(0, 4.0, (4000, K)))  # confident and wrong: poisons a plain product
    fit, test = slice(0, 3000), slice(3000, None)
    head = FusionHead.fit([good[fit], junk[fit]], labels[fit], [1.0, 1.0])
    acc = lambda p: (p.argmax(1) == labels[test]).mean()  # noqa: E731
    assert acc(head([good[test], junk[test]])) >= acc(good[test]) - 0.01
    assert acc(head([good[test], junk[test]])) > acc(product_of_experts([good[test], junk[test]], [1.0, 1.0])) + 0.05
    again = FusionHead.from_dict(head.to_dict())
    np.testing.assert_allclose(again([good[:5], junk[:5]]), head([good[:5], junk[:5]]), rtol=1e-6)


def test_degradations():
    rng = np.random.default_rng(3)
    x = torch.rand(8, 1, 28, 28)
    assert torch.equal(degrade_images(x, 0, rng), x)
    worst = degrade_images(x, 5, rng)
    assert worst.shape == x.shape and worst.min() >= 0 and worst.max() <= 1 and not torch.equal(worst, x)
    w = torch.from_numpy(np.sin(np.linspace(0, 400, 8000, dtype=np.float32)))[None].repeat(4, 1)
    assert torch.equal(degrade_audio(w, 0, rng), w)
    for level in (1, 3, 5):
        noisy = degrade_audio(w, level, rng)
        snr = 10 * torch.log10(w.pow(2).mean() / (noisy - w).pow(2).mean())
        assert abs(float(snr) - AUDIO_SNR[level]) < 0.5


def test_bar_check():
    rows = lambda fused: [{"level": i, "image": 0.9 - i / 10, "audio": 0.8 - i / 10, "product": fused - i / 10,  # noqa
                           "head": 0} for i in range(3)]
    good = {"method": "product", "sweeps": {"image": rows(0.9), "audio": rows(0.9), "both": rows(0.95)}}
    assert check_bar(good) == {"fused_at_least_best_single_everywhere": True,
                               "fused_strictly_better_when_both_degraded": True}
    bad = {"method": "product", "sweeps": {"image": rows(0.85), "audio": rows(0.9), "both": rows(0.9)}}
    assert not any(check_bar(bad).values())
