"""The app serves every shipped model the numbers its training evaluated it on.

For each checkpoint under checkpoints/, a sample of its test split is loaded as
`python -m training.evaluate` loads it (training.datasets.load_task_data with the checkpoint's
own config), and the public Predictor, handed what a user would hand it, must make the same
input tensor and give the model's probabilities on the trainer's tensor. What a user hands it is
the data set's own item where the split holds one (TaskData.test_inputs): the image file, the
digit's pixels, the sound file, the rendered phrase; else the split's waveform at the model's
rate. A task whose data is not under ../shared/data (or $DATA_DIR) is skipped.

Known exception, by design: a recording longer than one and a half of the model's windows is
analysed window by window in the app (the timeline), where training kept its middle window
(fix_length). In the shipped test splits that is 2 of the 500 FSDD test recordings (spoken
digits over 1.5 s once trimmed), none in the sample.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.config import dataset_name

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = sorted((ROOT / "checkpoints").glob("*/*.pt"))
SAMPLE = 16  # test items per checkpoint, spread over the split
# Loader options that keep a test's load small and leave the preprocessing path as it is: images
# (clips) per class (fold), decoded by the same code as the full split; the test split alone.
SMALL = {"tiny-imagenet": {"limit": 2}, "cub": {"limit": 1}, "esc50": {"limit": 20},
         "instruments": {"test_only": True}}
SMALL_CACHE = {"tiny-imagenet", "cub"}  # their small decoded sets go to a scratch cache, not the user's


def _config(ckpt: dict) -> dict:
    cfg = copy.deepcopy(ckpt["config"])  # what made the checkpoint, whatever its YAML says today
    data = cfg["data"]
    data.update(SMALL.get(dataset_name(cfg), {}))
    return cfg


def _load_data(cfg: dict, tmp_path, monkeypatch):
    from training.config import data_dir
    from training.datasets import load_task_data
    name = dataset_name(cfg)
    if name in SMALL_CACHE:
        monkeypatch.setenv("XAI_LAB_CACHE", str(tmp_path / "cache"))
    try:
        return load_task_data(cfg, data_dir(cfg))
    except FileNotFoundError as exc:
        pytest.skip(f"no data for {cfg['task']}: {exc}")


def _spec(d: dict):
    """A preprocessing dict as its spec (a checkpoint written before a field existed has its default)."""
    from models.audio_spec import AudioSpec
    from models.image_frontend import ImageSpec
    return (AudioSpec if d.get("kind") == "audio" else ImageSpec).from_dict(d)


def _sample(n: int) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, min(SAMPLE, n)).round().astype(int).tolist()))


@pytest.mark.parametrize("path", CHECKPOINTS, ids=[f"{p.parent.name}:{p.stem}" for p in CHECKPOINTS])
def test_predictor_serves_the_trainers_inputs_and_outputs(path, tmp_path, monkeypatch):
    from models import load_predictor
    from models.checkpoint import load_checkpoint, model_from_checkpoint
    from models.registry import TASKS
    task = TASKS.get(path.parent.name)
    if task is None or path.stem not in {e.name for e in task.models if e.from_checkpoint}:
        pytest.skip(f"{path} is not a model the app serves")
    ckpt = load_checkpoint(path)
    cfg = _config(ckpt)
    data = _load_data(cfg, tmp_path, monkeypatch)
    assert _spec(data.preprocessing) == _spec(ckpt["preprocessing"]), "the loader no longer makes what the model saw"
    idx = _sample(len(data.test))
    x = torch.stack([data.test[i][0] for i in idx])
    model = model_from_checkpoint(ckpt).eval()  # as training.evaluate builds it
    with torch.inference_mode():
        logits = model(x).float()

    p = load_predictor(f"{path.parent.name}:{path.stem}", device="cpu")
    if p.modality == "image":
        assert data.test_inputs is not None, "an image loader must say which file each test item is"
        inputs = [data.test_inputs[i] for i in idx]
        inputs = [Image.fromarray(np.asarray(a)) if isinstance(a, np.ndarray) else a for a in inputs]
        seen = p._batch([p.load(a) for a in inputs]).cpu()
        assert torch.equal(seen, x), f"max difference {float((seen - x).abs().max()):.3g}"
        expected = logits.softmax(-1)
    else:
        # the recording (a file, or the rendered phrase as (rate, samples)) where the split holds a
        # transform of it (decoded, resampled, trimmed, peak-normalised, cut), else the split's waveform
        inputs = ([data.test_inputs[i] for i in idx] if data.test_inputs is not None
                  else [(p.spec.sample_rate, data.test.tensors[0][i].numpy()) for i in idx])
        for a, xi in zip(inputs, x):
            wins = p._windows(p.load(a))[0]
            assert wins.shape == (1, len(xi)) and np.array_equal(wins[0], xi.numpy())
        expected = (logits / p.temperature).softmax(-1)
    probs = p.predict_probs(inputs)
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-4)
    assert probs.argmax(1).tolist() == expected.argmax(1).tolist()


def test_mnist_style_keeps_a_digit_already_in_mnist_form():
    """A digit already white on black, in the 20 px box and centred by mass (every MNIST image)
    comes back pixel for pixel: faint anti-aliased edges, a peak of 254. The same digit dark on
    white comes back as MNIST holds it; a drawing is made MNIST-style once and then kept."""
    from models.image_frontend import is_mnist_style, mnist_style
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 254          # a "1": bar of ink
    digit[6:22, 11] = digit[6:22, 16] = 20   # faint anti-aliased edges (below mnist_style's crop threshold)
    assert is_mnist_style(digit)
    assert np.array_equal(np.asarray(mnist_style(Image.fromarray(digit).convert("RGB"))), digit)
    assert np.array_equal(np.asarray(mnist_style(Image.fromarray(255 - digit))), digit)
    drawing = np.full((200, 150), 255, np.uint8)
    drawing[20:180, 30:60] = 0        # dark stroke on white, off centre, too large
    made = np.asarray(mnist_style(Image.fromarray(drawing)))
    assert made.shape == (28, 28) and made.max() == 255 and is_mnist_style(made)
    assert np.array_equal(np.asarray(mnist_style(Image.fromarray(made))), made)
    assert not is_mnist_style(np.roll(digit, 8, axis=1))  # off centre: re-made


def test_mnist_predictor_scores_the_model_cards_accuracy_on_all_test_images():
    from models import load_predictor
    from models.checkpoint import load_checkpoint
    from training.config import data_dir
    from training.datasets import load_task_data
    ckpt = load_checkpoint(ROOT / "checkpoints" / "mnist" / "cnn.pt")
    try:
        data = load_task_data(ckpt["config"], data_dir(ckpt["config"]))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    p = load_predictor("mnist", device="cpu")
    labels = data.test.tensors[1].numpy()
    preds = np.concatenate([p.predict_probs([Image.fromarray(a) for a in data.test_inputs[i: i + 500]]).argmax(1)
                            for i in range(0, len(labels), 500)])
    accuracy = float((preds == labels).mean())
    print(f"MNIST test images: {len(labels)}; Predictor accuracy {accuracy:.4f}; "
          f"model card {ckpt['metrics']['test_accuracy']:.4f}")
    assert accuracy == ckpt["metrics"]["test_accuracy"]
