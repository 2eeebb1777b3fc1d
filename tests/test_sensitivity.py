"""Sensitivity study: transformations, inverse mapping, stability metrics, a real sweep, the /sweep endpoint."""
import csv

import numpy as np
import pytest
from PIL import Image

from models.sensitivity_sweep import SweepResult, cam_correlation, centre_of_mass, com_shift, compare, run_sweep
from models.sensitivity_transforms import TRANSFORMS, apply, inverse_warp, magnitudes, valid_mask


@pytest.fixture(scope="module")
def photo():
    from skimage import data
    return data.chelsea()


def blob(shape=(200, 300), centre=(70.0, 200.0), sigma=12.0) -> np.ndarray:
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((ys - centre[0]) ** 2 + (xs - centre[1]) ** 2) / (2 * sigma ** 2)).astype(np.float32)


# -- transformations


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_identity_magnitude_returns_the_original(photo, name):
    out = apply(photo, name, TRANSFORMS[name].identity)
    assert out.dtype == photo.dtype and out.shape == photo.shape
    assert np.array_equal(out, photo)
    assert out is not photo


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_other_magnitudes_change_the_image_deterministically(photo, name):
    spec = TRANSFORMS[name]
    m = spec.hi if not spec.is_identity(spec.hi) else spec.lo
    a, b = apply(photo, name, m), apply(photo, name, m)
    assert a.shape == photo.shape and a.dtype == np.uint8
    assert np.array_equal(a, b), "same magnitude must give the same image"
    assert np.abs(a.astype(int) - photo).mean() > 1


def test_magnitudes_default_and_custom():
    assert np.allclose(magnitudes("brightness"), np.linspace(0.2, 2.0, 10))
    assert np.allclose(magnitudes("shear", -10, 10, n=5), [-10, -5, 0, 5, 10])
    with pytest.raises(ValueError, match="unknown transformation"):
        magnitudes("blur")
    with pytest.raises(ValueError, match="must lie in"):
        magnitudes("scale", 0.0, 1.0)
    with pytest.raises(ValueError, match="must lie in"):
        magnitudes("brightness", float("nan"), 1.0)


# -- inverse mapping


@pytest.mark.parametrize("name,magnitude", [("shear", 30.0), ("shear", -40.0), ("scale", 1.4), ("scale", 0.6),
                                            ("perspective", 0.2)])
def test_inverse_warp_puts_a_blob_back_in_place(name, magnitude):
    heat = blob()
    forward = apply(heat, name, magnitude)  # same code path as the images
    assert forward.shape == heat.shape
    moved = com_shift(heat, forward)
    assert moved > 5, f"the transformation should move the blob ({moved:.1f} px)"
    back = inverse_warp(forward, name, magnitude)
    assert back.shape == heat.shape
    assert com_shift(heat, back) < 2.0
    assert cam_correlation(heat, back) > 0.95


def test_photometric_inverse_is_the_identity_and_mask_is_full():
    heat = blob()
    assert np.array_equal(inverse_warp(heat, "brightness", 1.7), heat)
    assert valid_mask(heat.shape, "contrast", 0.3).all()


def test_valid_mask_drops_pixels_that_leave_the_frame():
    mask = valid_mask((200, 300), "shear", 40.0)
    assert mask[100, 150] and not mask.all()
    assert not mask[0, 0] or not mask[0, -1]  # a corner is pushed out


# -- stability metrics with known answers


def test_identical_maps_correlate_perfectly_and_do_not_move():
    heat = blob()
    assert cam_correlation(heat, heat) == pytest.approx(1.0)
    assert com_shift(heat, heat) == pytest.approx(0.0)
    assert cam_correlation(heat, 1 - heat) == pytest.approx(-1.0)


def test_centre_of_mass_and_known_shift():
    heat = blob(centre=(70.0, 200.0), sigma=8.0)
    cy, cx = centre_of_mass(heat)
    assert cy == pytest.approx(70.0, abs=1e-3) and cx == pytest.approx(200.0, abs=1e-3)
    shifted = np.roll(heat, (9, -12), axis=(0, 1))
    assert com_shift(heat, shifted) == pytest.approx(15.0, abs=1e-3)
    assert 0 < cam_correlation(heat, shifted) < 0.9


def test_degenerate_maps_give_nan_not_errors():
    flat = np.zeros((20, 30), np.float32)
    assert np.isnan(cam_correlation(flat, blob((20, 30), (10, 15), 3)))
    assert all(np.isnan(centre_of_mass(flat)))
    with pytest.raises(ValueError, match="shape"):
        cam_correlation(flat, np.zeros((30, 20)))


def test_mask_restricts_the_metrics():
    a, b = blob(), blob()
    b[:, :100] = np.random.default_rng(0).random((200, 100))  # noise only outside the mask
    mask = np.zeros(a.shape, bool)
    mask[:, 100:] = True
    assert cam_correlation(a, b, mask) == pytest.approx(1.0)
    assert cam_correlation(a, b) < 0.99


# -- real model


@pytest.fixture(scope="module")
def brightness_sweep(predictor, photo):
    return run_sweep(predictor, photo, "brightness", lo=0.2, hi=2.0, n=10)


def test_brightness_sweep_on_chelsea(brightness_sweep, predictor, tmp_path):
    r = brightness_sweep
    assert isinstance(r, SweepResult)
    assert len(r.rows) == len(r.images) == len(r.raw_images) == len(r.captions) == 10
    assert all(isinstance(im, Image.Image) for im in r.images)
    assert r.images[0].size == (r.raw_images[0].shape[1], r.raw_images[0].shape[0])
    assert r.target in {"tabby", "tiger cat", "Egyptian cat"}

    i = int(np.argmin(np.abs(r.magnitudes - 1.0)))
    assert abs(r.magnitudes[i] - 1.0) < 1e-9
    assert r.rows[i]["p_target"] == pytest.approx(r.original["p_target"], abs=1e-4)
    assert r.rows[i]["cam_r"] == pytest.approx(1.0, abs=1e-4) and r.rows[i]["com_shift_px"] < 1e-3
    assert r.rows[i]["top1_is_target"]
    diag = float(np.hypot(*r.raw_images[0].shape[:2]))
    for row, raw in zip(r.rows, r.raw_images):  # each row is the model's answer on its own image
        alone = predictor.predict(Image.fromarray(raw))
        assert row["p_target"] == pytest.approx(alone[r.target], abs=1e-4)
        assert row["top1"] == next(iter(alone)) and row["top1_is_target"] == (row["top1"] == r.target)
        assert row["com_shift_frac"] == pytest.approx(row["com_shift_px"] / diag)
        assert row["mapping"] == "identity"  # brightness moves no pixel
    assert r.rows[0]["label"] == "x0.20" and r.captions[0].startswith("x0.20: p=")

    # the flip is the magnitude nearest the identity (x1) where the top-1 class is not the target
    leaves = [row["magnitude"] for row in r.rows if not row["top1_is_target"]]
    assert r.flip_magnitude == (min(leaves, key=lambda m: (abs(m - 1.0), m)) if leaves else None)
    assert ("the prediction stays" in r.summary) == (r.flip_magnitude is None)
    assert f"p({r.target})" in r.summary and "/10 magnitudes" in r.summary

    path = r.to_csv(tmp_path / "sweep.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and float(rows[i]["magnitude"]) == pytest.approx(1.0)
    assert set(SweepResult.ROW_FIELDS) <= set(rows[0])

    fig = r.plot()
    assert fig.axes and len(fig.axes) == 2
    fig.savefig(tmp_path / "plot.png")


def test_shear_sweep_maps_the_cam_back(predictor, photo):
    r = run_sweep(predictor, photo, "shear", lo=-10, hi=10, n=3, target="tabby")
    assert r.target == "tabby" and len(r.rows) == 3
    assert r.rows[1]["cam_r"] == pytest.approx(1.0, abs=1e-4)  # 0 degrees
    assert all(row["cam_r"] > 0.8 for row in r.rows)  # a small shear barely moves the cat's CAM
    assert all(row["com_shift_frac"] < 0.05 for row in r.rows)


def test_target_that_is_not_predicted(predictor, photo):
    r = run_sweep(predictor, photo, "contrast", n=3, target="espresso")
    assert r.target == "espresso" and r.flip_magnitude is None
    assert "not the top-1 class" in r.summary


def test_unknown_target_and_transform(predictor, photo):
    with pytest.raises(ValueError, match="unknown class"):
        run_sweep(predictor, photo, "brightness", n=2, target="no such class")
    with pytest.raises(ValueError, match="unknown transformation"):
        run_sweep(predictor, photo, "blur", n=2)


def test_compare_one_several_none(predictor):
    from demos.sensitivity import sensitivity_examples
    ex = sensitivity_examples()
    out = compare(predictor, [ex["one"], ex["several"], ex["none"]])
    assert len(out) == 3
    (o1, p1, t1), (o2, p2, _), (o3, p3, t3) = out
    assert isinstance(o1, Image.Image) and o2.size == Image.open(ex["several"]).size
    assert t1 in {"tabby", "tiger cat", "Egyptian cat"} and t3 == "espresso"
    assert p3 < 0.05 < p1
    assert compare(predictor, [None, ex["none"]], target="espresso")[0] is None


# -- the app


def test_sweep_endpoint(app_server, cat_path):
    from gradio_client import Client, handle_file
    client = Client(app_server, verbose=False)
    gallery, plot, summary, files = client.predict(
        handle_file(str(cat_path)), "imagenet:effnet-lite0", "GradCAM", "(predicted class)", "brightness",
        0.2, 2.0, 10, api_name="/sweep")
    assert len(gallery) == 10
    assert gallery[0]["caption"].startswith("x0.20: p=")
    assert Image.open(gallery[0]["image"]).size == Image.open(cat_path).size
    assert "/10 magnitudes" in summary and "brightness" in summary
    import base64
    import io
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/")  # the figure, drawn
    drawn = np.asarray(Image.open(io.BytesIO(base64.b64decode(plot["plot"].split(",", 1)[1]))).convert("L"))
    assert drawn.shape[0] > 200 and drawn.shape[1] > 300 and drawn.std() > 10  # curves on it, not a blank
    assert sorted(f.rsplit(".", 1)[-1] for f in files) == ["csv", "zip"]

    comp, info = client.predict(handle_file(str(cat_path)), None, None, "imagenet:effnet-lite0", "GradCAM",
                                "espresso", api_name="/compare")
    assert len(comp) == 1 and "espresso" in info
