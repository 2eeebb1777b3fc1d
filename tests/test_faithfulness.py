"""models.faithfulness on a synthetic model whose decision depends only on a known region."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models import faithfulness as fa
from test_sound import served  # noqa: F401 (fixture: the tiny synthetic sound model as esc50:cnn)

H = W = 32
REGION = (slice(8, 16), slice(20, 28))  # the only cells the model looks at


class RegionModel(nn.Module):
    """p(class) = sigmoid(4 * (mean brightness inside REGION - 0.5)), through a 3x3 conv that is
    the identity when trained: re-initialising it changes which cells the decision depends on."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.zeros_(self.conv.weight)
        with torch.no_grad():
            self.conv.weight[0, 0, 1, 1] = 1.0

    def features(self, x):
        return self.conv(x)

    def forward(self, x):
        f = self.features(x)
        return torch.sigmoid(4 * (f[:, 0, REGION[0], REGION[1]].mean((1, 2)) - 0.5))


def image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, H, W, generator=g) * 0.3
    x[0, REGION[0], REGION[1]] = 0.9  # the evidence for the class
    return x


def exact_map() -> np.ndarray:
    m = np.zeros((H, W), np.float32)
    m[REGION] = 1.0
    return m


def shuffled_map() -> np.ndarray:
    return np.random.default_rng(1).permutation(exact_map().ravel()).reshape(H, W)


@pytest.fixture
def model():
    return RegionModel().eval()


def test_the_exact_map_beats_a_shuffled_one_in_deletion_insertion_and_road(model):
    x, baseline = image(), torch.zeros(1, H, W)
    exact = fa.evaluate(model, x, exact_map(), baseline)
    shuffled = fa.evaluate(model, x, shuffled_map(), baseline)
    assert exact.deletion.shape == (fa.DEFAULT_STEPS + 1,)
    assert exact.original == pytest.approx(float(model(x[None]).detach()))
    # removing the region first kills the score at once; a shuffled order only slowly
    assert exact.deletion_auc < shuffled.deletion_auc - 0.2
    assert exact.insertion_auc > shuffled.insertion_auc + 0.2
    assert exact.deletion[2] < 0.2 < shuffled.deletion[2]  # 10% of the cells: the whole 8x8 region is 6%
    assert exact.road_drop[10] > shuffled.road_drop[10] + 0.2
    # the curves end where they must: everything removed / revealed
    assert exact.deletion[-1] == pytest.approx(float(model(baseline[None]).detach()))
    assert exact.insertion[-1] == pytest.approx(exact.original)


def test_the_curves_go_through_the_model_in_batches(model):
    calls = []

    def score(batch):
        calls.append(len(batch))
        return model(batch)

    fa.curve(score, image(), exact_map(), torch.zeros(1, H, W), steps=20, batch_size=8)
    assert calls == [8, 8, 5]


def test_road_fill_keeps_the_kept_cells_and_fills_from_the_neighbours():
    x = torch.linspace(0, 1, W).repeat(H, 1)[None]  # a left-to-right ramp
    mask = torch.zeros(1, H, W)
    mask[0, 10:20, 10:20] = 1
    y = fa.road_fill(x, mask, noise=0.0, iterations=200)
    assert torch.equal(y[mask == 0], x[mask == 0])
    assert torch.allclose(y[0, 10:20, 10:20], x[0, 10:20, 10:20], atol=0.02)  # a ramp is harmonic


def test_a_map_of_the_wrong_grid_is_refused(model):
    with pytest.raises(ValueError, match="grid"):
        fa.curve(model, image(), np.zeros((8, 8)), torch.zeros(1, H, W))


def test_the_randomisation_check_flags_a_map_that_ignores_the_weights(model):
    """A gradient map changes when the conv is re-initialised (its sign and scale are random);
    the input's own edge map does not depend on the model at all."""
    x = image()

    def gradient_map(m):
        xx = x[None].clone().requires_grad_(True)
        m(xx).sum().backward()
        return (xx.grad[0, 0] * xx[0, 0].detach()).numpy()

    def edge_map(m):
        img = x[0].numpy()
        return np.abs(np.diff(img, axis=0, append=img[-1:])) + np.abs(np.diff(img, axis=1, append=img[:, -1:]))

    flagged = fa.sanity(edge_map, model, ["conv"])
    assert flagged["correlations"] == [1.0] and not flagged["passes"]
    checked = fa.sanity(gradient_map, model, ["conv"])
    assert checked["correlations"][0] < 0.5 and checked["passes"], checked
    assert fa.rank_correlation(gradient_map(model), gradient_map(model)) == pytest.approx(1.0)


def test_rank_correlation_and_ranking():
    a = np.arange(16.0).reshape(4, 4)
    assert fa.rank_correlation(a, a * 3 + 1) == pytest.approx(1.0)
    assert fa.rank_correlation(a, -a) == pytest.approx(-1.0)
    assert fa.rank_correlation(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert fa.rank_correlation(np.zeros((2, 2)), a[:2, :2]) == 0.0
    assert list(fa.ranking(np.array([[0.1, 0.9], [0.5, 0.2]]))) == [1, 2, 3, 0]


def test_the_image_predictor_scores_its_gradcam_above_a_random_map():
    """EfficientNet-Lite0 (ImageNet, packaged weights) on scikit-image's cat: its GradCAM removes the
    cat's evidence faster and reveals it faster than a random map at the CAM's own resolution
    (7x7, upsampled as the CAM is: a random map of single pixels would scatter the removed cells
    over the whole image, which no CAM does, and wreck the picture faster than any map)."""
    from demos.common import image_examples
    from models import load_predictor
    p = load_predictor("imagenet:effnet-lite0", device="cpu")
    cat = next(path for path in image_examples() if path.endswith("chelsea.png"))
    result, t = p.faithfulness(cat, "GradCAM", steps=10)
    assert "cat" in p.labels[t].lower() and result.deletion.shape == (11,)
    x = p._batch([p.load(cat)])[0]

    def score(b):
        with torch.no_grad():
            return p.model(b).softmax(-1)[:, t]

    from models.cam import upsample
    random_map = upsample(torch.from_numpy(np.random.default_rng(0).random((7, 7))).float(), tuple(x.shape[-2:]))
    chance = fa.evaluate(score, x, random_map, fa.blurred(x), steps=10)
    assert result.original == pytest.approx(chance.original, rel=1e-4)
    assert result.deletion_auc < chance.deletion_auc and result.insertion_auc > chance.insertion_auc


def test_the_panel_scores_one_map_and_ranks_the_gradient_methods():
    import re
    from demos import faithfulness_panel as panel
    from demos.common import PREDICTED, image_examples
    cat = next(path for path in image_examples() if path.endswith("chelsea.png"))
    text, fig = panel.score_map(cat, "imagenet:effnet-lite0", "GradCAM", PREDICTED)
    assert re.search(r"deletion area \*\*0\.\d{3}\*\*, insertion area \*\*0\.\d{3}\*\*", text), text
    deletion, insertion = fig.axes[:2]
    assert len(deletion.lines) == 1 and len(insertion.lines) == 1 and len(deletion.lines[0].get_xdata()) == 21
    text, fig = panel.compare_methods(cat, "imagenet:effnet-lite0", PREDICTED)
    rows = [line for line in text.splitlines() if re.match(r"\| \d \|", line)]
    assert [r.split("|")[2].strip() for r in rows] and sorted(r.split("|")[2].strip() for r in rows) == \
        sorted(panel.GRADIENT_METHODS)
    gaps = [float(r.split("|")[4]) - float(r.split("|")[3]) for r in rows]  # insertion - deletion, best first
    assert gaps == sorted(gaps, reverse=True)
    assert len(fig.axes[0].lines) == len(panel.GRADIENT_METHODS)


def test_the_study_over_tiny_imagenet_writes_a_row_per_method_and_the_random_baseline(tmp_path):
    import json
    from conftest import ROOT, data_path, run_module
    from training.faithfulness import RANDOM
    data_path("tiny-imagenet-200", "val", "images")  # the command reads the same root ($DATA_DIR or ../shared/data)
    out = tmp_path / "f.json"
    log = run_module("training.faithfulness", "--images", 2, "--sanity", 1, "--steps", 5, "--methods", "GradCAM",
                     "LayerCAM", "--output", out)
    result = json.loads(out.read_text())
    assert result["inputs"] == 2 and set(result["methods"]) == {"GradCAM", "LayerCAM", RANDOM}
    assert len(result["methods"]["GradCAM"]["randomisation"]) == 4 and "randomisation" not in result["methods"][RANDOM]
    for m in ("GradCAM", "LayerCAM", RANDOM):  # the table printed is the one written
        e = result["methods"][m]
        assert f"| {m} | {e['deletion']:.3f} | {e['insertion']:.3f} | {e['road']:+.3f} |" in log
        assert e["deletion"] != e["insertion"]
    # a missing data folder is one line and exit 2
    import subprocess
    import sys
    bad = subprocess.run([sys.executable, "-m", "training.faithfulness", "--data-dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: no Tiny ImageNet")


def test_a_sound_map_is_scored_on_the_model_input_with_the_noise_floor_baseline(served, tmp_path):
    """The Sound tab's panel: the tiny synthetic sound model's map of a tone, scored on its log-mel
    with removed cells at the clip's noise floor: removing every cell loses the tone, and the map's
    order takes p(class) down faster than it brings it back."""
    import re
    import soundfile as sf
    from demos import faithfulness_panel as panel
    from demos.common import PREDICTED
    from models import load_predictor
    from test_sound import SR, tone
    p = load_predictor("esc50:cnn", device="cpu")
    clip = np.concatenate([np.zeros(SR // 4, np.float32), tone(0.5, 440.0), np.zeros(SR // 4, np.float32)])
    result, t = p.faithfulness(clip, "GradCAM")
    assert p.labels[t] == "tone-440" and result.original > 0.5
    assert len(result.deletion) == len(result.insertion) == 21
    assert result.deletion[-1] < result.original - 0.1  # all cells at the noise floor: less of a tone
    assert result.deletion_auc < result.insertion_auc
    path = tmp_path / "tone.wav"
    sf.write(path, clip, SR)
    text, fig = panel.score_map(str(path), "esc50:cnn", "GradCAM", PREDICTED, modality="audio")
    assert re.search(r"for \*\*tone-440\*\*.*deletion area \*\*0\.\d{3}\*\*", text), text
    text, _ = panel.compare_methods(str(path), "esc50:cnn", PREDICTED, modality="audio")
    assert len([line for line in text.splitlines() if re.match(r"\| \d \|", line)]) == 4
    with pytest.raises(Exception, match="not a sound model"):
        panel.score_map(str(path), "imagenet:effnet-lite0", "GradCAM", PREDICTED, modality="audio")
    with pytest.raises(ValueError, match="not available for sound"):
        p.faithfulness(clip, "ScoreCAM")


def test_energy_in_the_box_and_the_centre_baseline_map():
    from training.faithfulness import centre_map, energy_in_box
    heat = np.zeros((10, 20), np.float32)
    heat[2:4, 5:10] = 1.0  # 10 cells in the box x 5-10, y 2-4
    heat[8, 18] = 1.0      # one outside
    assert energy_in_box(heat, (5, 2, 5, 2)) == pytest.approx(10 / 11)
    assert energy_in_box(heat, (0, 0, 20, 10)) == pytest.approx(1.0)
    assert energy_in_box(np.zeros((4, 4), np.float32), (0, 0, 2, 2)) == 0.0
    c = centre_map((10, 20))
    assert np.unravel_index(int(c.argmax()), c.shape) in {(4, 9), (4, 10), (5, 9), (5, 10)}
    assert 0.45 < energy_in_box(c, (5, 2.5, 10, 5)) < 0.65  # one sigma each way of two: ~(0.68 / 0.95) ** 2


@pytest.mark.parametrize("model_id", ["cub:effnet-lite0", "esc50"])
def test_the_study_on_cub_and_esc50_scores_real_inputs(model_id, tmp_path, needs_data):
    """Two real inputs each: a CUB image (with the energy in the bird's box next to the centre
    baseline's) and an ESC-50 fold-5 clip (on the log-mel, noise-floor baseline)."""
    from conftest import data_root
    from models import load_predictor
    from models.errors import ModelUnavailable
    from training.faithfulness import CENTRE, RANDOM, inputs_for, study, table
    needs_data("cub-200-2011-50" if model_id.startswith("cub") else "esc50")
    try:
        predictor = load_predictor(model_id, device="cpu")
    except ModelUnavailable as exc:
        pytest.skip(f"not on this machine: {exc}")
    probes, described = inputs_for(predictor, data_root(), 2)
    result = study(predictor, probes, ["GradCAM"], sanity_images=1, steps=5, log=lambda *a, **k: None)
    methods = result["methods"]
    assert result["inputs"] == 2 and len(methods["GradCAM"]["randomisation"]) == 4
    for m in ("GradCAM", RANDOM):
        assert methods[m]["deletion"] != methods[m]["insertion"]
    result["described"] = described
    if model_id.startswith("cub"):
        import shutil
        from models.registry import parse_model_id
        from training.faithfulness import record
        task, entry = parse_model_id(model_id)
        copy = Path(shutil.copy(task.checkpoint_path(entry.name), tmp_path / "cub.pt"))
        card = record(copy, result).read_text()
        assert "## How faithful the CAM methods are" in card and "| centre (Gaussian) | - |" in card
        assert described.startswith("2 CUB test images") and set(methods) == {"GradCAM", RANDOM, CENTRE}
        assert 0.0 < methods[CENTRE]["energy"] < 1.0 and "energy" in methods["GradCAM"]
        assert "CAM mass inside the box" in table(result)
    else:
        assert described == "2 ESC-50 fold-5 clips" and set(methods) == {"GradCAM", RANDOM}
        assert "energy" not in methods["GradCAM"]
