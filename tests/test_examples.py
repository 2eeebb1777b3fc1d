"""The app's example recordings: real (one rendered), credited, small, and each one the task's
default model gets right, so a visitor's first click does not show the model failing."""
import json

import pytest

from conftest import ROOT

EXAMPLES = ROOT / "assets" / "examples"
ITEMS = json.loads((EXAMPLES / "examples.json").read_text())


def test_every_example_is_credited_and_they_are_small():
    attribution = (EXAMPLES / "ATTRIBUTION.md").read_text()
    files = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".ogg", ".wav", ".flac", ".mp3"))
    assert files == sorted(i["file"] for i in ITEMS)
    for item in ITEMS:
        assert f"`{item['file']}`" in attribution and item["licence"] in attribution
        assert "philharmonia" not in item["source"].lower()  # not redistributable
    assert sum((EXAMPLES / f).stat().st_size for f in files) <= 1_500_000
    assert {i["tab"] for i in ITEMS} == {"sound", "digits"}
    assert {i["expected"] for i in ITEMS if i["model"] == "instruments"} >= {"piano", "violin", "guitar"}


@pytest.mark.parametrize("item", [i for i in ITEMS if i["expected"]], ids=lambda i: i["file"])
def test_the_default_model_gets_the_example_right(item):
    from models import load_predictor
    top = load_predictor(item["model"]).predict(EXAMPLES / item["file"], top_k=1)
    assert list(top) == [item["expected"]], top


def test_the_scene_gives_one_window_per_clip_with_its_label():
    scene = next(i for i in ITEMS if i["file"] == "esc50-scene-15s.ogg")
    from models import load_predictor
    a = load_predictor(scene["model"]).analyze(EXAMPLES / scene["file"])
    assert [w["label"] for w in a.timeline] == ["dog", "siren", "church_bells"]


def test_the_tabs_list_the_examples():
    from demos.common import example_recordings
    sound, labels = example_recordings("sound")
    assert len(sound) == len(labels) == sum(i["tab"] == "sound" for i in ITEMS) >= 8
    assert all(p.startswith(str(EXAMPLES)) for p in sound)
    assert len(example_recordings("digits")[0]) == 3
