import pickle

import pytest
import torch

from models.architectures import build_model
from models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from models.errors import ModelUnavailable
from models.image_frontend import ImageSpec


def _small_model():
    torch.manual_seed(0)
    return build_model("effnet", variant="lite0", num_classes=7).eval()


@pytest.mark.parametrize("half", [False, True])
def test_round_trip_same_outputs(tmp_path, half):
    model = _small_model()
    spec = ImageSpec(64)
    path = save_checkpoint(tmp_path / "task" / "effnet.pt", model, arch="effnet",
                           arch_kwargs={"variant": "lite0", "num_classes": 7}, labels=list("abcdefg"),
                           preprocessing=spec.to_dict(), metrics={"test_accuracy": 0.5},
                           history=[{"epoch": 1, "train_loss": 1.0}], config={"lr": 0.1}, seed=3, half=half)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # plain data only
    assert ckpt["labels"] == list("abcdefg") and ckpt["seed"] == 3 and ckpt["metrics"]["test_accuracy"] == 0.5
    assert ImageSpec.from_dict(ckpt["preprocessing"]) == spec
    restored = model_from_checkpoint(load_checkpoint(path))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), restored(x)
    tol = 5e-2 if half else 1e-6
    assert torch.allclose(a, b, atol=tol), (a - b).abs().max()
    if half:
        assert path.stat().st_size < 0.6 * (4 * sum(p.numel() for p in model.parameters()))


def test_missing_checkpoint_names_the_train_command(tmp_path):
    with pytest.raises(ModelUnavailable, match="python -m training.train"):
        load_checkpoint(tmp_path / "none.pt", "python -m training.train --config training/configs/x.yaml")


class NotPlainData:
    pass


def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": NotPlainData()}, path)
    with pytest.raises(ModelUnavailable, match="cannot be loaded safely"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps("junk")[:5])
    with pytest.raises(ModelUnavailable):
        load_checkpoint(path)
