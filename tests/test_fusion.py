"""Late fusion on synthetic experts with known behaviour, and the study's degradations."""
import numpy as np
import torch

from models.fusion import (FusionHead, audio_quality, degradation, degradation_scale, fit_temperature, image_quality,
                           nll, product_of_experts, tempered_log_probs)
from training.fusion_study import AUDIO_SNR, bar_score, check_bar, degrade_audio, degrade_images

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


def test_bar_score_counts_conditions_the_way_the_bar_does():
    rows = [{"sweep": "image", "level": 0, "image": 0.9, "audio": 0.8, "f": 0.9},   # equal: met
            {"sweep": "both", "level": 0, "image": 0.9, "audio": 0.8, "f": 0.9},    # clean pair: equal is met
            {"sweep": "both", "level": 2, "image": 0.5, "audio": 0.7, "f": 0.7},    # both degraded: equal is not
            {"sweep": "audio", "level": 3, "image": 0.9, "audio": 0.4, "f": 0.88}]  # below the image: not met
    met, worst, neg_nll, mean = bar_score(rows, "f")
    assert met == 2 and abs(worst + 0.02) < 1e-9 and abs(mean - 0.845) < 1e-9 and neg_nll == 0
    for r, nll in zip(rows, (0.1, 0.2, 0.3, 0.4)):
        r["f nll"] = nll
    assert bar_score(rows, "f")[2] == -0.25


def test_degradation_features_are_zero_on_clean_inputs_and_grow_beyond_them():
    rng = np.random.default_rng(6)
    clean = rng.normal([0.1, 0.9], 0.01, (500, 2))           # measure 0 rises with noise, measure 1 falls
    degraded = clean + rng.uniform(0, 0.5, (500, 1)) * np.array([1.0, -1.0])
    scale = degradation_scale(clean, degraded, knots=3)
    assert len(scale["knots"]) == 2 and all(len(k) == 3 and k == sorted(k) for k in scale["knots"])
    assert (degradation(clean, scale) == 0).all(axis=1).mean() > 0.95
    ramp = np.stack([np.linspace(0.1, 0.7, 50), np.full(50, 0.9)], 1)  # measure 0 worse and worse
    feats = degradation(ramp, scale)
    assert feats.shape == (50, 6) and (np.diff(feats, axis=0) >= 0).all() and feats[-1, :3].sum() > feats[25, :3].sum() > 0
    assert (feats[:, 3:] == 0).all()
    falling = degradation(np.array([[0.1, 0.5]]), scale)  # measure 1 below its clean range counts too
    assert falling[0, 3] > 0.3


def test_quality_measures_rank_degraded_inputs_below_clean_ones():
    rng = np.random.default_rng(4)
    digit = torch.zeros(6, 1, 28, 28)
    digit[:, :, 6:22, 12:16] = 1.0  # a stroke: mostly black, a few white pixels
    q = [image_quality(degrade_images(digit, level, rng).numpy()) for level in (0, 2, 5)]
    assert q[0].shape == (6, 2)
    grey, jumps = [x[:, 0].mean() for x in q], [x[:, 1].mean() for x in q]
    assert jumps[0] < jumps[1] < jumps[2] and grey[0] < min(grey[1:])  # strong noise saturates to 0/1: less grey
    t = np.arange(8000) / 8000
    word = (np.sin(2 * np.pi * 300 * t) * ((t > 0.3) & (t < 0.6))).astype(np.float32)[None]  # a sound, then silence
    snr = [float(audio_quality(degrade_audio(torch.from_numpy(word), level, rng).numpy())[0, 0]) for level in (0, 2, 4)]
    assert snr[0] == 1.0 and snr[0] > snr[1] > snr[2] >= 0.0


def clean_or_garbage_experts(seed: int, n: int = 6000):
    """Expert a: weak, never degraded. Expert b: strong on clean inputs and, on the degraded
    half, as sure about a random class. Returns (rng, labels, degraded mask, p_a, p_b)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    degraded = rng.random(n) < 0.5
    a = softmax(expert(labels, 1.2, rng))
    zb = expert(labels, 4.0, rng)
    zb[degraded] = expert(rng.integers(0, K, degraded.sum()), 4.0, rng)
    return rng, labels, degraded, a, softmax(zb)


def test_quality_gate_lets_the_head_drop_an_expert_only_when_its_input_is_degraded():
    """Expert b is good on clean inputs and confidently wrong on degraded ones, and its own
    confidence does not tell them apart: only the quality measure does."""
    rng, labels, degraded, a, b = clean_or_garbage_experts(5)
    n = len(labels)
    quality = [np.zeros((n, 1)), degraded[:, None].astype(float) + rng.normal(0, 0.05, (n, 1))]
    fit, test = slice(0, 4500), slice(4500, None)
    plain = FusionHead.fit([a[fit], b[fit]], labels[fit], [1.0, 1.0])
    gated = FusionHead.fit([a[fit], b[fit]], labels[fit], [1.0, 1.0], quality=[q[fit] for q in quality])
    assert gated.quality_dims == 1 and plain.quality_dims == 0
    acc = lambda p, m: (p.argmax(1) == labels[test])[m].mean()  # noqa: E731
    qt = [q[test] for q in quality]
    clean, bad = ~degraded[test], degraded[test]
    fused = gated([a[test], b[test]], qt)
    assert acc(fused, bad) > acc(plain([a[test], b[test]]), bad) + 0.1  # degraded: follows a
    assert acc(fused, bad) >= acc(a[test], bad) - 0.03
    assert acc(fused, clean) >= acc(b[test], clean) - 0.02  # clean: still trusts b
    w = gated.weights([a[test], b[test]], qt)
    assert w[bad, 1].mean() < 0.5 * w[clean, 1].mean()
    again = FusionHead.from_dict(gated.to_dict())
    np.testing.assert_allclose(again([a[:5], b[:5]], [q[:5] for q in quality]), gated([a[:5], b[:5]], [q[:5] for q in quality]))
    try:
        gated([a[:5], b[:5]])
    except ValueError as exc:
        assert "quality" in str(exc)
    else:
        raise AssertionError("a quality-gated head must refuse inputs without their quality")


def test_degradation_gated_head_keeps_clean_inputs_weights_and_drops_degraded_ones():
    """The same experts as above, the head gated only on degradation features (no confidence
    features, no class prior): clean-looking inputs all get one weight per modality."""
    rng, labels, degraded, a, b = clean_or_garbage_experts(7)
    n = len(labels)
    quality = [rng.normal(0.1, 0.01, (n, 1)), np.where(degraded, 0.3, 0.9)[:, None] + rng.normal(0, 0.01, (n, 1))]
    fit, test = slice(0, 4500), slice(4500, None)
    scales = [degradation_scale(q[fit][~degraded[fit]], q[fit][degraded[fit]], knots=2) for q in quality]
    head = FusionHead.fit([a[fit], b[fit]], labels[fit], [1.0, 1.0], quality=[q[fit] for q in quality],
                          confidence=False, scales=scales, class_bias=False)
    assert head.quality_dims == 2 and not np.any(head.bias)
    qt = [q[test] for q in quality]
    w = head.weights([a[test], b[test]], qt)
    clean, bad = ~degraded[test], degraded[test]
    inside = (degradation(qt[1], scales[1]) == 0).all(1) & (degradation(qt[0], scales[0]) == 0).all(1)
    assert np.ptp(w[clean & inside], axis=0).max() < 1e-9  # no confidence features: one weight for all clean inputs
    assert w[bad, 1].mean() < 0.3 * w[clean, 1].mean()
    fused = head([a[test], b[test]], qt)
    acc = lambda p, m: (p.argmax(1) == labels[test])[m].mean()  # noqa: E731
    assert acc(fused, bad) >= acc(a[test], bad) - 0.03 and acc(fused, clean) >= acc(b[test], clean) - 0.02
    again = FusionHead.from_dict(head.to_dict())
    np.testing.assert_allclose(again([a[:5], b[:5]], [q[:5] for q in quality]), head([a[:5], b[:5]], [q[:5] for q in quality]))
