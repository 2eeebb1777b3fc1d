import json
import subprocess
import sys

from conftest import ROOT


def test_cli_prints_json_and_exits_2_on_bad_file(coffee_path, bad_images):
    out = subprocess.run([sys.executable, "-m", "models.predict", "--model", "imagenet", "--top", "2",
                          str(coffee_path), str(bad_images["text.png"]), str(bad_images["truncated.jpg"])],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["file"] == str(coffee_path)
    assert lines[0]["top"][0][0] == "espresso" and len(lines[0]["top"]) == 2
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 2 and "text.png" in errors[0] and "truncated.jpg is damaged" in errors[1], errors


def test_cli_unknown_model(coffee_path):
    out = subprocess.run([sys.executable, "-m", "models.predict", "--model", "nope", str(coffee_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown task" in out.stderr
