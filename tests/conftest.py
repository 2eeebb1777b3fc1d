import os
import shutil
import struct
from contextlib import contextmanager
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.app_process import start_app, stop  # noqa: E402  (the app in a subprocess)
os.environ.setdefault("DEMO_DEVICE", "cpu")
os.environ.pop("XAI_LAB_HUB_REPO", None)  # hermetic: a user's Hub setting must not make tests download


def data_root() -> Path:
    """Where the real data sets are: $DATA_DIR when set, else ../shared/data beside the checkout
    (training.config.data_dir's rule, the one place that states it)."""
    from training.config import data_dir
    return data_dir({})


def data_path(*parts: str) -> Path:
    """data_root() / parts, or a skip saying which folder is missing and how to point at it."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"data not on this machine: {path} is missing (set DATA_DIR to the data root; "
                    f"default ../shared/data beside the checkout)")
    return path


@pytest.fixture
def needs_data():
    """A function: needs_data("esc50") (or needs_data("fsdd", "recordings")) is that folder (or
    file) under the data root, and skips the test with a clear reason when it is missing."""
    return data_path


def run_module(module: str, *args, env: dict | None = None, timeout: float = 600) -> str:
    """`python -m module args...` in the project root; asserts it succeeds; stdout + stderr."""
    out = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.fixture(scope="session")
def cat_path(tmp_path_factory) -> Path:
    from skimage import data
    path = tmp_path_factory.mktemp("img") / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    return path


@pytest.fixture(scope="session")
def coffee_path(tmp_path_factory) -> Path:
    from skimage import data
    path = tmp_path_factory.mktemp("img") / "coffee.jpg"
    Image.fromarray(data.coffee()).save(path, quality=95)
    return path


@pytest.fixture(scope="session")
def predictor():
    from models import load_predictor
    return load_predictor("imagenet", device="cpu")


# The app processes running_app started and their logs, by URL (a test can check the
# server is still alive after abusing it).
APPS: dict[str, tuple[subprocess.Popen, Path]] = {}


@contextmanager
def running_app(log: Path, **env_extra):
    """The real app in a subprocess on a free loopback port; yields its URL, always stops it."""
    proc, url = start_app(log, **env_extra)
    try:
        APPS[url] = (proc, log)
        yield url
    finally:
        APPS.pop(url, None)
        stop(proc)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("app") / "app.log") as url:
        yield url


# Tiny synthetic sound task (three tones and noise, 1 s at 8 kHz), trained in seconds.
SYNTHETIC_AUDIO_CONFIG = ROOT / "training" / "configs" / "synthetic-audio.yaml"


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> Path:
    """A checkpoint folder where the registry finds the tiny synthetic sound model as esc50:cnn."""
    folder = tmp_path_factory.mktemp("checkpoints")
    out = subprocess.run([sys.executable, "-m", "training.train", "--config", str(SYNTHETIC_AUDIO_CONFIG),
                          "--device", "cpu", "--set", f"output={folder / 'esc50' / 'cnn.pt'}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, env=dict(os.environ, DEMO_DEVICE="cpu"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert (folder / "esc50" / "cnn.pt").is_file()
    return folder


@pytest.fixture(scope="session")
def sound_app(checkpoints, tmp_path_factory):
    """The real app on a free port, its checkpoints folder holding the tiny esc50:cnn (and a
    copy of the repo's MNIST checkpoint when there is one, for the other tabs)."""
    mnist = ROOT / "checkpoints" / "mnist" / "cnn.pt"
    if mnist.is_file():
        (checkpoints / "mnist").mkdir(exist_ok=True)
        shutil.copy(mnist, checkpoints / "mnist" / "cnn.pt")
    with running_app(tmp_path_factory.mktemp("sound-app") / "app.log",
                     XAI_LAB_CHECKPOINTS=str(checkpoints), DEMO_DEVICE="cpu") as url:
        yield url


def make_bad_images(folder: Path) -> dict[str, Path]:
    """The odd files users upload, made on the spot."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    files = {}
    files["text.png"] = folder / "text.png"
    files["text.png"].write_text("this is not an image\n")
    files["empty.jpg"] = folder / "empty.jpg"
    files["empty.jpg"].write_bytes(b"")
    files["tiny.png"] = folder / "tiny.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(files["tiny.png"])
    files["rgba.png"] = folder / "rgba.png"
    Image.fromarray(np.dstack([photo, np.full((64, 80), 128, np.uint8)])).save(files["rgba.png"])
    files["grey.png"] = folder / "grey.png"
    Image.fromarray(photo[..., 0]).save(files["grey.png"])
    files["16bit.png"] = folder / "16bit.png"
    Image.fromarray(photo[..., 0].astype(np.uint16) * 257).save(files["16bit.png"])
    files["anim.gif"] = folder / "anim.gif"
    frames = [Image.fromarray(np.roll(photo, k * 10, axis=1)) for k in range(3)]
    frames[0].save(files["anim.gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    files["cmyk.jpg"] = folder / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(files["cmyk.jpg"])
    files["truncated.jpg"] = folder / "truncated.jpg"
    Image.fromarray(photo).save(files["truncated.jpg"])
    data = files["truncated.jpg"].read_bytes()
    files["truncated.jpg"].write_bytes(data[: len(data) // 3])
    # Decompression bomb: 20000x20000; 1-bit mode keeps the test's own memory small.
    files["bomb.png"] = folder / "bomb.png"
    Image.new("1", (20000, 20000)).save(files["bomb.png"])
    return files


@pytest.fixture(scope="session")
def bad_images(tmp_path_factory) -> dict[str, Path]:
    return make_bad_images(tmp_path_factory.mktemp("bad"))


# files that must be refused with a message; the others must give a correct result
REFUSED = {"text.png", "empty.jpg", "bomb.png", "truncated.jpg"}


# The decoders' own words (libsndfile, audioread, PIL) for a file they cannot read: they belong in
# the server log; a user is told what is wrong with the file in ours.
LIBRARY_PHRASES = ("SF_INFO", "chunk marker", "flac decoder", "file is malformed", "NoBackendError",
                   "DecodeError", "not processed", "Truncated File Read", "Channel count is zero",
                   "Error opening", "data stream", "unimplemented format", "Too many channels", "'fmt ' chunk",
                   "psf_fseek", "decoder object")


def wav_bytes(payload: bytes, sr: int, channels: int = 1, bits: int = 16, tag: int = 1,
              riff_size: int | None = None, data_size: int | None = None, data: bool = True) -> bytes:
    """A WAV built by hand, so that every header field can lie (rate, channels, sizes), or the
    data chunk be missing."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, sr, (sr * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    data_size = len(payload) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if data:
        body += b"data" + struct.pack("<I", data_size) + payload
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body
