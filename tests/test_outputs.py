"""The files the tabs write for a request: each request's in a folder of its own (two requests with
the same result never write, or serve, the same path), in one app-owned folder whose old request
folders are deleted, so that a long-running Space does not fill its disk."""
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from demos import common

PREDICTED = "(predicted class)"


@pytest.fixture
def outputs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(common, "OUTPUTS_DIR", tmp_path / "outputs")
    return tmp_path / "outputs"


def test_many_requests_leave_a_bounded_number_of_folders(outputs, monkeypatch):
    monkeypatch.setattr(common, "OUTPUT_MIN_AGE", 0.0)
    folders = [common.output_folder("x-") for _ in range(3 * common.KEEP_OUTPUTS)]
    left = set(outputs.iterdir())
    assert len(set(folders)) == len(folders)
    assert len(left) <= common.KEEP_OUTPUTS + 1 and folders[-1] in left


def test_a_young_folder_is_kept_a_request_may_still_be_returning_it(outputs):
    folders = [common.output_folder("x-") for _ in range(common.KEEP_OUTPUTS + 5)]
    assert all(f.is_dir() for f in folders)  # over KEEP_OUTPUTS, but all younger than OUTPUT_MIN_AGE
    old = time.time() - 2 * common.OUTPUT_MIN_AGE
    for f in folders[:5]:
        os.utime(f, (old, old))
    common.output_folder("x-")
    assert not any(f.exists() for f in folders[:5]) and all(f.is_dir() for f in folders[5:])


def test_explain_returns_files_of_its_own_and_leaves_a_bounded_number(outputs, monkeypatch, coffee_path):
    from demos.image_explainer import explain
    monkeypatch.setattr(common, "KEEP_OUTPUTS", 2)
    monkeypatch.setattr(common, "OUTPUT_MIN_AGE", 0.0)
    runs = [explain(str(coffee_path), "imagenet:effnet-lite0", "GradCAM", PREDICTED) for _ in range(4)]
    for _probs, over, raw, _info, download in runs:
        # paths, not images: Gradio would write an image itself to a path named by its content,
        # the same for two requests with the same result (one rewriting it while the other's is served)
        assert isinstance(over, str) and isinstance(raw, str) and download == over
        assert Path(over).parent.parent == outputs and Path(raw).parent == Path(over).parent
    assert len({over for _, over, *_ in runs}) == len(runs)
    assert Image.open(runs[-1][1]).size == Image.open(runs[-1][2]).size == Image.open(coffee_path).size
    assert len(list(outputs.iterdir())) <= 3


def test_compare_gallery_is_files_of_its_own(outputs, cat_path, coffee_path):
    from demos.sensitivity import compare_images
    gallery, _info = compare_images(str(cat_path), None, str(coffee_path), "imagenet:effnet-lite0", "GradCAM",
                                    PREDICTED)
    assert len(gallery) == 2
    for path, caption in gallery:
        assert Path(path).parent.parent == outputs and Image.open(path).size[0] > 100, caption
