"""The app's example recordings: real (one rendered), credited, small, and each one the task's
default model gets right, so a visitor's first click does not show the model failing."""
import json
from pathlib import Path

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


def test_a_sound_example_brings_its_own_model():
    """Clicking an instrument recording in the Sound tab selects the instruments model (not the tab's
    first model, AudioSet's), an ESC-50 clip the ESC-50 model, each with the predicted class as target."""
    from demos.image_explainer import PREDICTED
    from demos.sound import example_rows, model_choices
    choices = model_choices()
    rows, labels = example_rows(choices, choices[0])
    by_file = {Path(path).name: (model, target) for path, model, target in rows}
    assert len(rows) == len(labels) == sum(i["tab"] == "sound" for i in ITEMS)
    for item in (i for i in ITEMS if i["tab"] == "sound"):
        model, target = by_file[item["file"]]
        assert model == choices[[c.split(":")[0] for c in choices].index(item["model"])], (item["file"], model)
        assert target == PREDICTED
    assert by_file["instrument-piano.ogg"][0].startswith("instruments:")
    # a task the dropdown does not offer falls back to the given model
    assert {m for _, m, _ in example_rows([choices[0]], choices[0])[0]} == {choices[0]}
