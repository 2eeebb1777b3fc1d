"""The limits config (one place, env overrides, bad values reported in one line) and the
ZeroGPU hook (spaces.GPU when the package exists, a no-op otherwise)."""
import subprocess
import sys
import types

import pytest

from conftest import ROOT
from models.device import on_gpu
from models.limits import Limits, LimitsError


def test_defaults_and_env_overrides():
    default = Limits()
    assert default.image_megapixels == 40 and default.audio_seconds == 600 and default.queue_concurrency == 2
    limits = Limits.from_env({"XAI_LAB_AUDIO_SECONDS": "90", "XAI_LAB_QUEUE_CONCURRENCY": "4", "OTHER": "x"})
    assert limits.audio_seconds == 90.0 and limits.queue_concurrency == 4 and limits.image_megapixels == 40
    assert isinstance(limits.queue_concurrency, int)
    assert Limits().bytes(1.5) == 1572864


@pytest.mark.parametrize("name,value", [("XAI_LAB_AUDIO_SECONDS", "ten"), ("XAI_LAB_QUEUE_SIZE", "-1"),
                                        ("XAI_LAB_QUEUE_CONCURRENCY", "1.5"), ("XAI_LAB_IMAGE_MEGAPIXELS", "0")])
def test_bad_values(name, value, capsys):
    with pytest.raises(LimitsError, match=name) as err:
        Limits.from_env({name: value})
    assert "\n" not in str(err.value)
    kept = Limits.from_env({name: value}, strict=False)  # the app's way: warn and keep the default
    assert kept == Limits()
    assert name in capsys.readouterr().err


def test_limits_reach_the_loaders():
    """A lowered limit in the environment is what the audio loader enforces."""
    code = ("import numpy as np; from models.audio_loading import load_audio; from models.errors import InputError\n"
            "try:\n    load_audio((8000, np.zeros(8000 * 3, np.float32)), 8000)\n"
            "except InputError as e:\n    print('refused:', e)\n"
            "else:\n    print('accepted')\n")
    env = {"XAI_LAB_AUDIO_SECONDS": "2", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("refused:") and "limit" in out.stdout, out.stdout + out.stderr[-2000:]
    env["XAI_LAB_AUDIO_SECONDS"] = "10"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "accepted", out.stderr[-2000:]


def test_on_gpu_is_a_no_op_without_spaces(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces -> ImportError

    def infer(x):
        return x + 1
    assert on_gpu(infer) is infer


def test_on_gpu_uses_spaces_gpu_when_present(monkeypatch):
    calls = []

    def gpu(fn):
        def wrapped(*a, **k):
            calls.append(fn.__name__)
            return fn(*a, **k)
        return wrapped
    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))

    def infer(x):
        return x * 2
    assert on_gpu(infer)(21) == 42 and calls == ["infer"]
