import pytest

from models.registry import TASKS, model_ids, parse_model_id


def test_imagenet_task_and_ids():
    task = TASKS["imagenet"]
    assert task.modality == "image"
    assert len(task.labels) == 1000
    assert "espresso" in task.labels and "tabby" in task.labels
    ids = model_ids("image")
    assert ids[0] == "imagenet:effnet-lite0"  # the default comes first
    assert {"imagenet:effnet-lite1", "imagenet:effnet-lite2"} <= set(ids)


def test_parse_model_id_default_and_explicit():
    task, entry = parse_model_id("imagenet")
    assert (task.id, entry.name) == ("imagenet", "effnet-lite0")
    _, entry = parse_model_id("imagenet:effnet-lite2")
    assert entry.input_spec.size == 260
    assert entry.cam_layer == "_bn1"  # EfficientNet-Lite's last activation, as its architecture declares


@pytest.mark.parametrize("bad", ["nope", "imagenet:resnet9000", ""])
def test_unknown_ids_raise_keyerror(bad):
    from models.errors import UserError
    with pytest.raises(KeyError) as info:
        parse_model_id(bad)
    assert isinstance(info.value, UserError) and not str(info.value).startswith(("'", '"'))  # one line, as written


def test_missing_checkpoint_shows_the_train_command(monkeypatch, tmp_path):
    import torch

    from demos.image_explainer import describe_model
    from models import registry
    from models.errors import ModelUnavailable
    from models.factory import _build

    monkeypatch.setattr(registry, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(ModelUnavailable, match="python -m training.train --config training/configs/mnist.yaml"):
        _build("mnist", torch.device("cpu"))
    assert "python -m training.train --config training/configs/mnist.yaml" in describe_model("mnist:cnn")


def test_the_model_panel_names_one_cam_layer_or_the_fused_pair():
    from models.cam import describe_layers
    from models.registry import parse_model_id
    assert describe_layers(parse_model_id("cub:effnet-lite0")[1].cam_layer) == "CAM layer: `_bn1`"
    fused = describe_layers(parse_model_id("esc50:mn04")[1].cam_layer)
    assert fused.startswith("CAM layers: `features.12` x `features.16` (fused:"), fused
