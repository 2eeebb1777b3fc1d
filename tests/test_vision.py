"""Vision tasks: the Tiny ImageNet and CUB loaders on their official layouts (fakes made here,
and the real records when ../shared/data has them), the frozen-backbone transfer path, the
two from-scratch CNNs, image augmentation and the CAM pointing game."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import ROOT, data_root
from conftest import run_module as run
from test_hub import hub  # noqa: F401  (the fake Hub fixture)
from training.config import load_config

COLOURS = ["red", "green", "blue", "yellow"]


PALETTE = [(230, 40, 40), (40, 220, 40), (60, 60, 240), (230, 210, 40)]


def shape_image(k: int, size: int, rng) -> tuple[Image.Image, tuple]:
    """Noise with a chequered square (the "bird") of colour k, placed at random away from
    the centre; returns the image and the square's box (x, y, w, h)."""
    arr = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
    side, h = size // 4, size // 2
    r, c = rng.integers(0, 2, 2)
    y0, x0 = r * h + rng.integers(1, h - side - 1), c * h + rng.integers(1, h - side - 1)
    yy, xx = np.mgrid[0:side, 0:side]
    arr[y0: y0 + side, x0: x0 + side] = np.where(((yy // 2 + xx // 2) % 2 == 0)[..., None], PALETTE[k], (20, 20, 20))
    return Image.fromarray(arr), (float(x0), float(y0), float(side), float(side))


def fake_cub(root, per_class: int = 12, size: int = 48, seed: int = 0):
    """CUB-200-2011's official layout holding the four colour classes; boxes around the squares."""
    rng = np.random.default_rng(seed)
    folder = root / "CUB_200_2011"
    rows = {"images": [], "labels": [], "split": [], "boxes": []}
    classes = [f"{i + 1:03d}.{name.replace('-', '_')}" for i, name in enumerate(COLOURS)]
    n = 0
    for k, cls in enumerate(classes):
        (folder / "images" / cls).mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            n += 1
            img, box = shape_image(k, size, rng)
            img.save(folder / "images" / cls / f"{cls}_{j}.jpg", quality=95)
            rows["images"].append(f"{n} {cls}/{cls}_{j}.jpg")
            rows["labels"].append(f"{n} {k + 1}")
            rows["split"].append(f"{n} {int(j < per_class * 2 // 3)}")
            rows["boxes"].append(f"{n} " + " ".join(f"{v:.1f}" for v in box))
    (folder / "classes.txt").write_text("\n".join(f"{i + 1} {c}" for i, c in enumerate(classes)) + "\n")
    for name, key in (("images.txt", "images"), ("image_class_labels.txt", "labels"),
                      ("train_test_split.txt", "split"), ("bounding_boxes.txt", "boxes")):
        (folder / name).write_text("\n".join(rows[key]) + "\n")
    return classes


def fake_tiny_imagenet(root, per_class: int = 6, val_per_class: int = 3, size: int = 64):
    rng = np.random.default_rng(1)
    folder = root / "tiny-imagenet-200"
    wnids = ["n00000001", "n00000002", "n00000003", "n00000004"]
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (folder / "words.txt").write_text("\n".join(f"{w}\t{q}, colour {i}" for i, (w, q) in
                                               enumerate(zip(wnids, COLOURS))) + "\n")
    ann = []
    for k, w in enumerate(wnids):
        (folder / "train" / w / "images").mkdir(parents=True)
        for j in range(per_class):
            shape_image(k, size, rng)[0].save(folder / "train" / w / "images" / f"{w}_{j}.JPEG")
        for j in range(val_per_class):
            name = f"val_{k * val_per_class + j}.JPEG"
            img, box = shape_image(k, size, rng)
            img.save(folder / "val" / "images" / name)
            ann.append(f"{name}\t{w}\t" + "\t".join(str(int(v)) for v in box))
    (folder / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    return wnids


def vision_cfg(tmp_path, dataset: str, arch: str, model: dict, **data) -> dict:
    return {"task": f"test-{dataset}", "name": arch, "arch": arch, "model": model,
            "data": {"dataset": dataset, "root": str(tmp_path), **data},
            "optim": {"name": "adamw", "lr": 0.003, "weight_decay": 0.0001}, "scheduler": {"name": "cosine"},
            "train": {"epochs": 2, "batch_size": 16, "seed": 0},
            "output": str(tmp_path / "out" / f"{arch}.pt")}


def write_cfg(tmp_path, cfg: dict, name: str = "cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_LAB_CACHE", str(tmp_path / "cache"))
    return {"XAI_LAB_CACHE": str(tmp_path / "cache")}


def test_tiny_imagenet_loader_on_the_official_layout(tmp_path, cache):
    from training.datasets import load_task_data
    fake_tiny_imagenet(tmp_path)
    data = load_task_data(vision_cfg(tmp_path, "tiny-imagenet", "resnet-dropout", {}, image_size=32, val_size=4),
                          tmp_path)
    assert data.labels == COLOURS  # the first name of each synset, in wnids.txt order
    assert (len(data.train), len(data.val), len(data.test)) == (20, 4, 12)
    x, y = data.test[0]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and int(y) == 0
    # labels from val_annotations.txt (written class by class)
    assert data.test.tensors[1].tolist() == [k for k in range(4) for _ in range(3)]
    from models.image_frontend import ImageSpec, load_image, to_tensor
    first = tmp_path / "tiny-imagenet-200" / "val" / "images" / "val_0.JPEG"
    assert torch.allclose(to_tensor([load_image(first)], ImageSpec.from_dict(data.preprocessing))[0], x, atol=1e-5)
    assert data.preprocessing["size"] == 32 and data.preprocessing["kind"] == "image"


def test_cub_loader_on_the_official_layout(tmp_path, cache):
    from training.datasets import load_task_data
    from training.vision import read_cub
    classes = fake_cub(tmp_path)
    data = load_task_data(vision_cfg(tmp_path, "cub", "grouped-cnn", {}, image_size=40), tmp_path)
    assert data.labels == classes
    assert (len(data.train), len(data.test)) == (4 * 8, 4 * 4)  # train_test_split.txt
    table = read_cub(tmp_path / "CUB_200_2011")
    assert len(table["boxes"][0]) == 4 and table["boxes"][0][2] == 12.0 and table["is_train"].sum() == 32
    # the app's front end and the loader give the same tensor for the same file
    from models.image_frontend import ImageSpec, load_image, to_tensor
    spec = ImageSpec.from_dict(data.preprocessing)
    first_test = table["paths"][int(np.flatnonzero(~table["is_train"])[0])]
    assert torch.allclose(to_tensor([load_image(first_test)], spec)[0], data.test[0][0], atol=1e-5)


def test_missing_data_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "training.baselines", "--config",
                          str(ROOT / "training" / "configs" / "cub.yaml"), "--data-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "CUB-200-2011 not found" in out.stderr and "--download" in out.stderr


def test_image_augmentation_flips_and_shifts():
    from training.augment import batch_augment
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    torch.manual_seed(0)
    flipped = [batch_augment({"train": {"hflip": True}})(x, torch.zeros(2))[0] for _ in range(20)]
    assert all(f.shape == x.shape for f in flipped)
    for i in range(2):  # each image comes out as itself or its mirror, and both happen
        kinds = {("same" if torch.equal(f[i], x[i]) else "mirror" if torch.equal(f[i], x[i].flip(-1)) else "?")
                 for f in flipped}
        assert kinds == {"same", "mirror"}
    shifted = batch_augment({"train": {"crop_pad": 2}})(x, torch.zeros(2))[0]
    assert shifted.shape == x.shape and set(shifted.flatten().tolist()) <= set(x.flatten().tolist())


@pytest.mark.parametrize("arch,kwargs", [("resnet-dropout", {"blocks": [3, 3, 3], "dropout": 0.3}),
                                         ("grouped-cnn", {"groups": 8, "blocks": 1})])
def test_scratch_cnns_give_a_cam_on_the_image_grid(arch, kwargs, cat_path):
    from models.architectures import build_model
    from models.image_frontend import ImageSpec
    from models.predictor import ImagePredictor
    from models.architectures import architecture
    model = build_model(arch, num_classes=7, **kwargs)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    p = ImagePredictor(arch, model, [str(i) for i in range(7)], ImageSpec(64), architecture(arch).cam_layer, torch.device("cpu"))
    result = p.analyze(cat_path, method="GradCAM")
    assert result.heatmap.shape == (result.image.height, result.image.width)
    assert 0 <= result.heatmap.min() and result.heatmap.max() <= 1
    full = p.predict(cat_path)  # all 7 classes: a distribution, whose 5 most probable analyze shows
    assert len(full) == 7 and sum(full.values()) == pytest.approx(1, abs=1e-5)
    assert list(result.probs) == list(full)[:5] and list(result.probs.values()) == pytest.approx(list(full.values())[:5])


def test_frozen_backbone_transfer_trains_the_classifier_and_ships_the_whole_network(tmp_path, cache):
    cfg = vision_cfg(tmp_path, "synthetic-shapes", "effnet",
                     {"variant": "lite0", "pretrained": True, "num_classes": 4, "dropout": 0.1},
                     image_size=64, size=64, normalise="effnet", val_size=16)
    cfg["train"].update(epochs=4, frozen_backbone=True, frozen_flip=True)
    cfg["optim"]["lr"] = 0.01
    path = write_cfg(tmp_path, cfg)
    out = run("training.train", "--config", path, env=cache)
    assert "decoding features-test-synthetic-shapes-train-flip" in out  # mirror images' features computed
    ckpt = torch.load(tmp_path / "out" / "effnet.pt", weights_only=True)
    assert ckpt["trained_parameters"] == 1280 * 4 + 4 and ckpt["num_parameters"] > 3_000_000
    head_accuracy = ckpt["metrics"]["test_accuracy"]
    # the checkpoint is the whole network on images: evaluate gives the head's figure
    out = run("training.evaluate", "--config", path, "--checkpoint", tmp_path / "out" / "effnet.pt", env=cache)
    assert f"test accuracy {head_accuracy:.4f}" in out
    # the features are cached: a second command computes none
    out = run("training.baselines", "--config", path, env=cache)
    assert "decoding features" not in out and "majority" in out


def test_head_uses_a_random_view_in_training_and_the_image_in_evaluation():
    from training.frozen import Head
    head = Head(3, 2)
    z = torch.stack([torch.zeros(5, 3), torch.ones(5, 3)], 1)  # (B=5, V=2, D=3)
    head.eval()
    assert torch.allclose(head(z), head(z[:, 0]))
    head.train()
    torch.manual_seed(0)
    outs = torch.stack([head(z) for _ in range(20)])
    views = {tuple(o[0].tolist()) for o in outs}
    assert len(views) == 2  # both the image and its mirror are used


def test_pointing_game_geometry():
    from training.pointing_game import inside, peak
    heat = np.zeros((10, 20))
    heat[7, 3] = 1
    assert peak(heat) == (3.5, 7.5)
    assert inside((3.5, 7.5), (2, 6, 4, 4)) and not inside((3.5, 7.5), (4, 6, 4, 4))
    assert inside((3.5, 7.5), (4, 6, 4, 4), tolerance=1)


def test_pointing_game_command_finds_the_object(tmp_path, cache):
    """A small CNN trained to tell the squares' colours looks at the square: the CAM peak
    falls in its box (the squares are never at the centre, so the centre baseline is 0)."""
    fake_cub(tmp_path, per_class=30, size=48)
    cfg = vision_cfg(tmp_path, "cub", "resnet-dropout", {"num_classes": 4, "blocks": [1, 1, 1], "dropout": 0.0,
                                                         "channels": [8, 16, 32]}, image_size=48, val_size=8)
    cfg["train"].update(epochs=15)
    cfg["optim"]["lr"] = 0.01
    path = write_cfg(tmp_path, cfg)
    run("training.train", "--config", path, env=cache)
    ckpt_path = tmp_path / "out" / "resnet-dropout.pt"
    assert torch.load(ckpt_path, weights_only=True)["metrics"]["test_accuracy"] > 0.9
    out = run("training.pointing_game", "--config", path, "--checkpoint", ckpt_path, env=cache)
    metrics = torch.load(ckpt_path, weights_only=True)["metrics"]
    assert metrics["pointing_game_images"] == 40 and metrics["pointing_game_centre_baseline"] == 0.0
    assert metrics["pointing_game"] >= 0.8, out
    assert "pointing_game" in (tmp_path / "out" / "resnet-dropout.md").read_text()
    from demos.image_explainer import card_lines  # what the Image explainer shows beside the model
    lines = "\n".join(card_lines(metrics))
    assert f"{metrics['test_accuracy'] * 100:.1f}%" in lines and f"{metrics['pointing_game'] * 100:.1f}%" in lines


def test_cub_tables_on_real_records(needs_data):
    from training.vision import cub_folder, read_cub
    needs_data("cub-200-2011-50")
    table = read_cub(cub_folder(data_root()))
    assert len(table["names"]) == 50 and table["names"][0] == "001.Black_footed_Albatross"
    assert (table["is_train"].sum(), (~table["is_train"]).sum()) == (1500, 1389)
    for i in range(0, len(table["paths"]), 300):  # boxes lie inside their (resized) images
        with Image.open(table["paths"][i]) as img:
            x, y, w, h = table["boxes"][i]
            assert 0 <= x and 0 <= y and x + w <= img.width + 1 and y + h <= img.height + 1


def test_tiny_imagenet_loader_on_real_records(tmp_path, cache, needs_data):
    from training.datasets import load_task_data
    needs_data("tiny-imagenet-200")
    cfg = load_config(ROOT / "training" / "configs" / "tiny-imagenet-resnet.yaml",
                      ["data.limit=2", "data.val_size=0", "data.image_size=64"])
    data = load_task_data(cfg, data_root())
    assert len(data.labels) == 200 and data.labels[:1] == ["Egyptian cat"]  # wnids.txt order: n02124075 first
    assert (len(data.train), len(data.test)) == (400, 200)
    assert sorted(set(data.test.tensors[1].tolist())) == list(range(200))


def _archive(folder, top: str, kind: str) -> bytes:
    import io
    import tarfile
    import zipfile
    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w") as z:
            for p in sorted((folder / top).rglob("*")):
                z.write(p, p.relative_to(folder).as_posix())
    else:
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            t.add(folder / top, arcname=top)
    return buf.getvalue()


def test_download_from_a_hub_dataset_repo(tmp_path, cache, hub):
    """--download: the official archives from a Hugging Face dataset repo (a fake Hub on
    loopback speaking huggingface_hub's protocol), unpacked into the official layouts."""
    from training.datasets import load_task_data
    src = tmp_path / "src"
    fake_tiny_imagenet(src)
    fake_cub(src)
    hub.repos["someone/tiny"] = {"tiny-imagenet-200.zip": _archive(src, "tiny-imagenet-200", "zip")}
    hub.repos["someone/cub"] = {"CUB_200_2011.tgz": _archive(src, "CUB_200_2011", "tgz")}
    root = tmp_path / "data"
    tiny = load_task_data(vision_cfg(root, "tiny-imagenet", "effnet", {}, image_size=32, hf_repo="someone/tiny"),
                          root, download=True)
    assert (len(tiny.train), len(tiny.test)) == (24, 12) and (root / "tiny-imagenet-200" / "wnids.txt").is_file()
    birds = load_task_data(vision_cfg(root, "cub", "effnet", {}, image_size=32, hf_repo="someone/cub"), root,
                           download=True)
    assert (len(birds.train), len(birds.test)) == (32, 16) and (root / "CUB_200_2011" / "images.txt").is_file()
    assert any("/datasets/someone/cub/resolve/" in r[1] for r in hub.requests)


def test_download_without_a_repo_or_from_a_missing_one_is_one_line(tmp_path, cache, hub):
    from training.datasets import load_task_data
    with pytest.raises(FileNotFoundError, match="set data.hf_repo"):
        load_task_data(vision_cfg(tmp_path, "cub", "effnet", {}), tmp_path, download=True)
    with pytest.raises(FileNotFoundError, match="could not download CUB_200_2011.tgz from someone/none"):
        load_task_data(vision_cfg(tmp_path, "cub", "effnet", {}, hf_repo="someone/none"), tmp_path, download=True)
    assert not hub.created  # nothing was written to the Hub


@pytest.mark.parametrize("model_id", ["cub:effnet-lite0", "tiny-imagenet:effnet-lite0"])
def test_image_explainer_serves_the_shipped_vision_models_with_their_card(model_id, cat_path):
    """The shipped transfer checkpoints: offered in the Image explainer, a CAM on the photo's
    grid, and the card's figures (test accuracy; for CUB the pointing game) beside the model."""
    from demos.image_explainer import PREDICTED, describe_model, explain, model_choices, target_choices
    assert model_id in model_choices()
    probs, overlay_path, heat, info, path = explain(str(cat_path), model_id, "GradCAM", PREDICTED)
    assert len(probs) == 5 and abs(sum(probs.values()) - 1) < 1 and "GradCAM" in info
    assert Image.open(overlay_path).size == Image.open(cat_path).size
    card = describe_model(model_id)
    ckpt = torch.load(ROOT / "checkpoints" / model_id.replace(":", "/").__add__(".pt"), weights_only=True)
    assert f"{ckpt['metrics']['test_accuracy'] * 100:.1f}%" in card
    if model_id.startswith("cub"):
        assert "pointing game" in card and ckpt["metrics"]["pointing_game"] >= 0.8
    assert len(target_choices(model_id)) == 1 + len(ckpt["labels"])


def test_frozen_backbone_on_an_architecture_without_one_is_one_line(tmp_path, cache):
    cfg = vision_cfg(tmp_path, "synthetic-shapes", "resnet-dropout", {"num_classes": 4}, image_size=32, size=32)
    cfg["train"]["frozen_backbone"] = True
    out = subprocess.run([sys.executable, "-m", "training.train", "--config", str(write_cfg(tmp_path, cfg))],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **cache})
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "frozen_backbone needs a pretrained backbone" in out.stderr
