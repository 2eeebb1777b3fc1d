"""Spoken digits: the FSDD loader's two splits on the real records (no speaker in two
splits / the random split's leak), the AudioMNIST layout, the study commands on a tiny task,
the shipped model on its unseen speaker, and an honest out-of-distribution check with
digits spoken by espeak-ng voices."""
import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import ROOT
from training.config import load_config
from training.fsdd import find_recordings, split_indices

CONFIG = ROOT / "training" / "configs" / "spoken-digits.yaml"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-029"]


def test_speaker_split_keeps_speakers_apart_and_random_split_does_not(needs_data):
    found = find_recordings(needs_data("fsdd", "recordings"))
    assert len(found) == 3000 and {d for _, d, _ in found} == set(range(10))
    speakers = [s for _, _, s in found]
    cfg = load_config(CONFIG)
    by_speaker = split_indices(speakers, cfg["data"], 0)
    who = {k: {speakers[i] for i in v} for k, v in by_speaker.items()}
    assert who["test"] == {"theo"} and len(who["train"]) == 5 and not by_speaker["val"].size
    with_val = split_indices(speakers, {**cfg["data"], "val_speakers": ["jackson"]}, 0)
    assert {speakers[i] for i in with_val["val"]} == {"jackson"} and len(with_val["train"]) == 2000
    assert not (who["train"] & who["test"]) and not (who["train"] & who["val"])
    random = split_indices(speakers, {**cfg["data"], "split": "random"}, 0)
    assert {k: len(v) for k, v in random.items()} == {k: len(v) for k, v in by_speaker.items()}
    assert {speakers[i] for i in random["test"]} <= {speakers[i] for i in random["train"]}  # the leak
    assert len(set(random["test"]) | set(random["val"]) | set(random["train"])) == 3000
    with pytest.raises(ValueError, match="not in the data"):
        split_indices(speakers, {**cfg["data"], "test_speakers": ["nobody"]}, 0)


def test_audiomnist_layout(tmp_path):
    for speaker in ("01", "02"):
        folder = tmp_path / "data" / speaker
        folder.mkdir(parents=True)
        for digit in (3, 7):
            sf.write(folder / f"{digit}_{speaker}_0.wav", np.zeros(800, np.float32), 8000)
    (tmp_path / "data" / "audioMNIST_meta.txt").write_text("{}")
    found = find_recordings(tmp_path)
    assert sorted((d, s) for _, d, s in found) == [(3, "01"), (3, "02"), (7, "01"), (7, "02")]


def test_cross_validate_and_compare_on_a_tiny_task(tmp_path):
    """The k-fold and comparison commands on the synthetic tones task (seconds)."""
    import sys
    cfg = yaml.safe_load((ROOT / "training/configs/synthetic-audio.yaml").read_text())
    cfg["train"]["epochs"] = 1
    cfg["output"] = str(tmp_path / "tones.pt")
    cfg["folds"] = [{"train.seed": 0}, {"train.seed": 1}]
    path = tmp_path / "tones.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "training.cross_validate", "--config", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2-fold test accuracy: mean" in out.stdout
    cv = json.loads((tmp_path / f"{cfg['name']}_cv.json").read_text())  # beside the config's checkpoint
    assert len(cv["folds"]) == 2 and cv["min_test_accuracy"] <= cv["mean_test_accuracy"] <= cv["max_test_accuracy"]
    subprocess.run([sys.executable, "-m", "training.train", "--config", str(path)], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    out = subprocess.run([sys.executable, "-m", "training.compare", "--configs", str(path), "--name", "cmp"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads((tmp_path / "comparison_cmp.json").read_text())
    from models.checkpoint import load_checkpoint, model_from_checkpoint
    ckpt = load_checkpoint(cfg["output"])  # the row's figures are the checkpoint's own, its size the model's
    assert isinstance(ckpt["metrics"]["test_accuracy"], float)
    assert len(rows) == 1 and rows[0]["test_accuracy"] == ckpt["metrics"]["test_accuracy"]
    assert rows[0]["parameters"] == sum(p.numel() for p in model_from_checkpoint(ckpt).parameters())
    assert rows[0]["inference_ms"] > 0


@pytest.fixture(scope="module")
def digits_model():
    from models import load_predictor
    return load_predictor("spoken-digits")


def test_shipped_model_on_its_unseen_speaker(digits_model, needs_data):
    """The checkpoint's own test figure is on a speaker it never heard; re-check a sample of it."""
    metrics = digits_model.card["metrics"]
    assert "theo" in metrics["split"] and metrics["test_accuracy"] >= 0.9
    clips = sorted(needs_data("fsdd", "recordings").glob("*_theo_4*.wav"))  # indices 4, 40-49 of each digit
    assert len(clips) == 110, len(clips)
    right = sum(digits_model.predict(str(p), top_k=1).popitem()[0] == p.name[0] for p in clips)
    assert right / len(clips) >= 0.85, f"{right}/{len(clips)}"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_espeak_digits_out_of_distribution(digits_model, tmp_path):
    """Synthetic voices the model never heard, and no tuning on them: reported, and must at
    least beat chance (10%) clearly."""
    right, total, misses = 0, 0, []
    for voice in VOICES:
        for digit, word in enumerate(WORDS):
            wav = tmp_path / f"{voice}_{digit}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), word], check=True, capture_output=True)
            guess = next(iter(digits_model.predict(str(wav), top_k=1)))
            right += guess == str(digit)
            total += 1
            if guess != str(digit):
                misses.append(f"{voice}:{word}->{guess}")
    print(f"\nespeak-ng: {right}/{total} digits recognised ({right / total:.0%}) over voices {VOICES}; "
          f"misses: {' '.join(misses)}")
    assert right / total >= 0.3
