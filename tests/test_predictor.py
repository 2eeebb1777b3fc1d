import numpy as np
import pytest
import torch
from PIL import Image

from models.cam import METHODS, compute_cams, overlay
from models.errors import InputError

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat", "lynx"}


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def test_cat_in_top3(predictor, cat_path):
    top3 = list(predictor.predict(cat_path, top_k=3))
    assert CAT_CLASSES & set(top3), top3


def test_espresso_first(predictor, coffee_path):
    probs = predictor.predict(coffee_path)
    assert next(iter(probs)) == "espresso"
    assert len(probs) == 1000 and abs(sum(probs.values()) - 1) < 1e-3


def test_predict_accepts_pil_and_array(predictor, cat_path):
    img = Image.open(cat_path)
    a = predictor.predict(img, top_k=1)
    b = predictor.predict(np.asarray(img), top_k=1)
    assert list(a) == list(b)


@pytest.mark.parametrize("method", list(METHODS))
def test_cam_shape_range_and_no_hooks_left(predictor, cat_path, method):
    before = _hook_count(predictor.model)
    heat = predictor.explain(cat_path, method=method)
    w, h = Image.open(cat_path).size
    assert heat.shape == (h, w) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1 and heat.max() > 0.9
    assert _hook_count(predictor.model) == before == 0


def test_cam_focuses_on_the_cat_not_the_border(predictor, cat_path):
    heat = predictor.explain(cat_path, method="GradCAM")
    h, w = heat.shape
    centre = heat[h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean()
    border = np.concatenate([heat[: h // 8].ravel(), heat[-h // 8:].ravel()]).mean()
    assert centre > border + 0.2


def test_target_class_changes_the_map(predictor, cat_path):
    own = predictor.explain(cat_path, target=None)
    other = predictor.explain(cat_path, target="espresso")
    assert np.abs(own - other).mean() > 0.05
    with pytest.raises(ValueError, match="unknown class"):
        predictor.explain(cat_path, target="not a class")


def test_batch_explain_matches_singles(predictor, cat_path, coffee_path):
    probs, heats, idx = predictor.explain_batch([cat_path, coffee_path], method="GradCAM")
    assert probs.shape == (2, 1000) and len(heats) == 2
    assert predictor.labels[idx[1]] == "espresso"
    single = predictor.explain(coffee_path, method="GradCAM")
    assert np.allclose(heats[1], single, atol=1e-3)


def test_hooks_removed_even_when_the_cam_fails(predictor):
    x = torch.zeros(1, 3, 224, 224)
    with pytest.raises(Exception):
        compute_cams(predictor.model, x, "no_such_layer", "GradCAM")
    with pytest.raises(Exception):
        compute_cams(predictor.model, x, predictor.cam_layer, "GradCAM", targets=[5000])
    assert _hook_count(predictor.model) == 0


def test_analyze_single_pass(predictor, coffee_path):
    res = predictor.analyze(coffee_path, top_k=5)
    assert list(res.probs)[0] == res.target == "espresso" and len(res.probs) == 5
    assert res.heatmap.shape == (res.image.height, res.image.width)
    blended = overlay(res.image, res.heatmap)
    assert blended.size == res.image.size


def test_bad_images(predictor, bad_images):
    from conftest import REFUSED
    for name, path in bad_images.items():
        if name in REFUSED:
            with pytest.raises(InputError) as err:
                predictor.predict(path)
            assert name in str(err.value) and "\n" not in str(err.value)
        else:
            probs = predictor.predict(path, top_k=3)
            assert len(probs) == 3, name
            heat = predictor.explain(path)
            w, h = Image.open(path).size
            assert heat.shape == (h, w), name


def test_damaged_images_are_described_in_our_words(tmp_path, caplog):
    """PIL's words for a damaged file ("image file is truncated (26 bytes not processed)",
    "Truncated File Read"...) go to the server log; the user reads ours."""
    import io
    import logging

    from conftest import LIBRARY_PHRASES
    from models.image_frontend import load_image
    photo = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    for fmt, suffix in (("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("TIFF", "tiff")):
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, format=fmt)
        path = tmp_path / f"cut.{suffix}"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        with caplog.at_level(logging.WARNING, logger="models.image_frontend"), pytest.raises(InputError) as err:
            load_image(path)
        message = str(err.value)
        assert message.startswith(f"cut.{suffix} is damaged or truncated"), message
        assert not [phrase for phrase in LIBRARY_PHRASES if phrase in message], message
        assert f"could not decode cut.{suffix}" in caplog.text


def test_fused_layers_keep_the_deep_time_profile_and_the_fine_rows():
    """models.cam.fuse_layers: the fused map lies on the finest grid, each column sums to the deep
    map's (upsampled) column, its rows follow the product of the maps, and a column where the finer
    map is zero keeps the deep map's own rows."""
    import torch.nn.functional as F
    from models.cam import fuse_layers
    g = torch.Generator().manual_seed(0)
    fine = torch.rand(2, 8, 32, generator=g)
    fine[:, :, 5] = 0  # the finer layer sees nothing in one column
    deep = torch.rand(2, 4, 16, generator=g)
    fused = fuse_layers([fine, deep])
    up = F.interpolate(deep[:, None], size=(8, 32), mode="bilinear", align_corners=False)[:, 0]
    assert fused.shape == (2, 8, 32)
    torch.testing.assert_close(fused.sum(1), up.sum(1))
    torch.testing.assert_close(fused[:, :, 5], up[:, :, 5])
    product = (fine * up)[:, :, 7]
    torch.testing.assert_close(fused[:, :, 7] / fused[:, :, 7].sum(1, keepdim=True), product / product.sum(1, keepdim=True))
    torch.testing.assert_close(fuse_layers([deep]), deep)  # one layer: its own map


def test_compute_cams_fuses_a_tuple_of_layers_into_one_normalised_map():
    """compute_cams with two layers: one map per input on the finer layer's grid, max 1."""
    from torch import nn
    from models.cam import compute_cams
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
    logits, cams, idx = compute_cams(net, torch.rand(2, 1, 16, 32), ("1", "3"), "GradCAM")
    assert cams.shape == (2, 16, 32) and logits.shape == (2, 3) and len(idx) == 2
    maxima = cams.flatten(1).amax(1)
    assert torch.all(cams >= 0) and torch.allclose(maxima, torch.ones(2))
    _, single, _ = compute_cams(net, torch.rand(2, 1, 16, 32), "3", "GradCAM")
    assert single.shape == (2, 8, 16)
