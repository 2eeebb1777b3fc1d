"""Hugging Face Space readiness: the README's front matter matches what we pin and run,
packages.txt brings ffmpeg, every shipped checkpoint is loadable and small, and the
README's checkpoint table is the one the checkpoints generate."""
import re
import subprocess

import torch
import yaml

from conftest import ROOT
from training.model_card import TABLE_END, TABLE_START, checkpoints_table


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must start with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n")[1])


def test_front_matter_matches_the_pins():
    meta = front_matter()
    pins = dict(re.findall(r"^([\w.-]+)==([\w.]+)", (ROOT / "requirements.txt").read_text(), re.M))
    assert meta["sdk"] == "gradio" and str(meta["sdk_version"]) == pins["gradio"]
    assert str(meta["python_version"]) == "3.11"  # torchcam 0.5 needs >= 3.11
    assert (ROOT / meta["app_file"]).is_file() and len(meta["short_description"]) <= 60


def test_packages_txt_brings_ffmpeg():
    assert "ffmpeg" in (ROOT / "packages.txt").read_text().split()


def shipped() -> list:
    """The committed checkpoints (a run still training locally is not shipped)."""
    out = subprocess.run(["git", "ls-files", "checkpoints/*.pt"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        return sorted((ROOT / "checkpoints").glob("*/*.pt"))
    return [ROOT / line for line in out.stdout.split()]


def test_shipped_checkpoints_are_safe_and_small():
    paths = shipped()
    assert paths, "no checkpoint shipped"
    for path in paths:
        assert path.stat().st_size <= 10 * 1024 * 1024, path
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        assert ckpt["metrics"].get("complete"), f"{path.name} is from an unfinished run"
        assert {"state_dict", "arch", "labels", "preprocessing", "metrics", "history", "reproduce"} <= set(ckpt), path
        assert path.with_suffix(".md").is_file(), f"{path.name} has no model card"


def test_readme_checkpoint_table_is_up_to_date():
    text = (ROOT / "README.md").read_text()
    block = text[text.index(TABLE_START) + len(TABLE_START):text.index(TABLE_END)].strip()
    assert block == checkpoints_table(ROOT / "checkpoints"), "stale table: run python -m training.model_card"
