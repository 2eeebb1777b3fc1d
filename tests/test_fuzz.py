"""Fuzz the running app: well over 100 malformed image and sound files, made here from a seeded
RNG (nothing committed), sent through /explain and /analyze_sound with gradio_client.

Each request must end in a result or a gradio error with a one-line message of ours (no traceback,
not Gradio's bare "Error", not the "Unexpected error (...)" the app gives any exception it did not
expect), within a time limit, with no new traceback in the server log; any other outcome fails the
test, naming the file that caused it. Afterwards the same server must still answer good requests.
The counts are printed (`pytest -s`). The sound model is the tiny synthetic esc50:cnn
of the `sound_app` fixture (conftest.py), served from a temporary checkpoint folder."""
from __future__ import annotations

import io
import math
import os
import re
import struct
import time
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from conftest import APPS, LIBRARY_PHRASES, wav_bytes

PREDICTED = "(predicted class)"
IMAGE_ARGS = ("imagenet:effnet-lite0", "GradCAM", PREDICTED, 0.5)  # the gradient methods take a few ms
SOUND_ARGS = ("esc50:cnn", "GradCAM", PREDICTED, 1.0)
API = {"image": "/explain", "sound": "/analyze_sound"}
REQUEST_TIMEOUT = 120  # seconds: a request taking longer counts as a hang
SEED = 20240611
# demos.common.user_errors: how the app words an exception it did not expect (a bug, not a bad file)
UNEXPECTED = "Unexpected error"
# Files in the corpus that are good media under an odd name, suffix or encoding (name without its
# number): each must get a result, not a refusal.
MUST_WORK = {"jpeg-named.png", "flac-named.wav", "16bit.png", "rgba.png", "la.png", "palette.png", "1bit.png",
             "cmyk.jpg", "webp.webp", "pcm_u8.wav", "pcm_24.wav", "pcm_32.wav", "ulaw.wav", "alaw.wav",
             "silence.wav", "n" * 230 + ".png", "s" * 230 + ".wav", "\u97f3" * 75 + ".png",
             "caf\u00e9 \u97f3 'quote\" $(x).wav", "-dash; rm -rf.png", ".wav"}


# --- building blocks


def photo(rng, h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth synthetic RGB picture (gradients + blobs + a little noise)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([x, y, 1 - x * y], axis=-1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        base += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / r ** 2)[..., None] * rng.uniform(-1, 1, 3)
    base += rng.normal(0, 0.03, base.shape)
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    return (base * 255).astype(np.uint8)


def encode_image(arr_or_img, fmt: str, **kwargs) -> bytes:
    img = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, idat: bytes = b"", color_type: int = 2, depth: int = 8) -> bytes:
    """A PNG whose (valid, CRC-correct) header declares width x height, with the IDAT given."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def sound(rng, seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    """A tone with a random pitch plus a little noise, (n,) or (n, channels), float32 in [-1, 1]."""
    t = np.arange(int(round(seconds * sr))) / sr
    y = 0.5 * np.sin(2 * np.pi * rng.choice([440.0, 1000.0, 2500.0]) * t) + rng.normal(0, 0.05, len(t))
    y = y.astype(np.float32)
    return y if channels == 1 else np.repeat(y[:, None], channels, axis=1)


def encode_audio(y: np.ndarray, sr: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def flip_bits(data: bytes, rng, n: int, start: int = 0, end: int | None = None) -> bytes:
    """n random bit flips in data[start:end]."""
    out = bytearray(data)
    end = min(len(out), end or len(out))
    for pos in rng.integers(start, end, n):
        out[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


# --- the corpus


def make_fuzz_files(folder: Path, seed: int = SEED) -> list[tuple[str, Path]]:
    """(endpoint kind, path) for each malformed file, all written under folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[str, str, bytes]] = []  # (kind, file name, content)

    def add(kind: str, name: str, data: bytes) -> None:
        cases.append((kind, f"{len(cases):03d}-{name}", data))

    pic = photo(rng)
    png, jpeg = encode_image(pic, "PNG"), encode_image(pic, "JPEG", quality=90)
    wav = encode_audio(sound(rng, 1.5, 16000), 16000, "WAV", "PCM_16")
    flac = encode_audio(sound(rng, 1.5, 16000), 16000, "FLAC")
    ogg = encode_audio(sound(rng, 1.5, 16000), 16000, "OGG", "VORBIS")

    # random bytes with image and audio extensions
    for ext in ("png", "jpg", "jpeg", "gif", "webp", "bmp", "tiff"):
        add("image", f"random.{ext}", rng.bytes(int(rng.integers(1, 4096))))
    for ext in ("wav", "flac", "ogg", "mp3", "m4a", "webm", "aiff"):
        add("sound", f"random.{ext}", rng.bytes(int(rng.integers(1, 4096))))
    # random bytes behind a real signature
    add("image", "png-magic-random.png", png[:16] + rng.bytes(500))
    add("image", "jpeg-magic-random.jpg", b"\xff\xd8\xff\xe0" + rng.bytes(500))
    add("image", "gif-magic-random.gif", b"GIF89a" + rng.bytes(300))
    add("sound", "riff-magic-random.wav", b"RIFF" + rng.bytes(4) + b"WAVEfmt " + rng.bytes(500))
    add("sound", "flac-magic-random.flac", b"fLaC" + rng.bytes(500))
    add("sound", "ogg-magic-random.ogg", b"OggS" + rng.bytes(500))
    add("sound", "mp3-sync-random.mp3", b"\xff\xfb\x90\x64" * 200 + rng.bytes(300))
    add("sound", "id3-random.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x0a" + rng.bytes(800))

    # truncated real files
    for frac in (0.02, 0.25, 0.5, 0.9):
        add("image", f"truncated-{frac}.png", png[: max(1, int(len(png) * frac))])
        add("image", f"truncated-{frac}.jpg", jpeg[: max(1, int(len(jpeg) * frac))])
    add("image", "no-iend.png", png[:-12])
    for frac in (0.01, 0.3, 0.9):
        add("sound", f"truncated-{frac}.wav", wav[: max(1, int(len(wav) * frac))])
        add("sound", f"truncated-{frac}.flac", flac[: max(1, int(len(flac) * frac))])
        add("sound", f"truncated-{frac}.ogg", ogg[: max(1, int(len(ogg) * frac))])
    add("sound", "header-only.wav", wav[:44])

    # bit-flipped headers (and a few flips in the body)
    for i in range(5):
        add("image", f"flipped-header-{i}.png", flip_bits(png, rng, 3, 8, 64))
        add("image", f"flipped-header-{i}.jpg", flip_bits(jpeg, rng, 3, 2, 200))
        add("sound", f"flipped-header-{i}.wav", flip_bits(wav, rng, 3, 0, 44))
    for i in range(3):
        add("sound", f"flipped-header-{i}.flac", flip_bits(flac, rng, 3, 0, 80))
        add("sound", f"flipped-header-{i}.ogg", flip_bits(ogg, rng, 3, 0, 120))
    for fmt, ext in (("GIF", "gif"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tiff")):
        other = encode_image(pic, fmt)
        add("image", f"truncated-half.{ext}", other[: len(other) // 2])
        for i in range(2):
            add("image", f"flipped-header-{i}.{ext}", flip_bits(other, rng, 3, 0, 64))
    add("image", "flipped-body.png", flip_bits(png, rng, 20, 64))
    add("image", "flipped-body.jpg", flip_bits(jpeg, rng, 20, 400))
    add("sound", "flipped-body.flac", flip_bits(flac, rng, 20, 200))
    add("sound", "flipped-body.ogg", flip_bits(ogg, rng, 20, 400))

    # wrong extension: each kind's files under the other kind's names (and sent to the other API)
    add("image", "wav-named.png", wav)
    add("image", "flac-named.jpg", flac)
    add("image", "ogg-named.gif", ogg)
    add("sound", "png-named.wav", png)
    add("sound", "jpeg-named.flac", jpeg)
    add("sound", "png-named.ogg", png)
    add("image", "jpeg-named.png", jpeg)    # a real image under another image suffix: should work
    add("sound", "flac-named.wav", flac)    # a real sound under another sound suffix: should work

    # zero-length and tiny
    for ext in ("png", "jpg"):
        add("image", f"empty.{ext}", b"")
    for ext in ("wav", "flac", "ogg"):
        add("sound", f"empty.{ext}", b"")
    add("image", "1x1.png", encode_image(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"))
    add("image", "1x1.jpg", encode_image(Image.new("RGB", (1, 1), (10, 200, 10)), "JPEG"))
    add("image", "1x2000.png", encode_image(photo(rng, 1, 2000), "PNG"))
    add("image", "3000x2.png", encode_image(photo(rng, 3000, 2), "PNG"))
    add("image", "1x1.gif", encode_image(Image.new("P", (1, 1)), "GIF"))
    add("image", "1x1.ico", encode_image(Image.new("RGB", (1, 1)), "ICO"))
    add("sound", "10-samples.wav", encode_audio(sound(rng, 10 / 16000, 16000), 16000, "WAV", "PCM_16"))
    add("sound", "1-sample.wav", encode_audio(np.array([0.3], np.float32), 16000, "WAV", "FLOAT"))
    add("sound", "10-samples.flac", encode_audio(sound(rng, 10 / 16000, 16000), 16000, "FLAC"))
    add("sound", "0-frames.wav", wav_bytes(b"", 16000))

    # NaN / inf / absurd float samples
    y = sound(rng, 1.0, 8000)
    add("sound", "all-nan.wav", encode_audio(np.full(8000, np.nan, np.float32), 8000, "WAV", "FLOAT"))
    mixed = y.copy()
    mixed[::7], mixed[3::11], mixed[5::13] = np.nan, np.inf, -np.inf
    add("sound", "nan-inf-mixed.wav", encode_audio(mixed, 8000, "WAV", "FLOAT"))
    add("sound", "all-inf.wav", encode_audio(np.full(8000, np.inf, np.float32), 8000, "WAV", "FLOAT"))
    add("sound", "huge-1e30.wav", encode_audio(y * np.float32(1e30), 8000, "WAV", "FLOAT"))
    add("sound", "huge-1e300-double.wav", encode_audio(y.astype(np.float64) * 1e300, 8000, "WAV", "DOUBLE"))
    add("sound", "denormal.wav", encode_audio(y * np.float32(1e-40), 8000, "WAV", "FLOAT"))
    add("sound", "nan-stereo.wav", encode_audio(np.stack([mixed, y], 1), 8000, "WAV", "FLOAT"))

    # extreme and impossible sample rates, odd channel counts (headers written by hand)
    pcm = (sound(rng, 0.5, 8000) * 32767).astype("<i2").tobytes()
    for sr in (0, 1, 999, 1000, 768_000, 768_001, 2**31 - 1, 2**32 - 1):
        add("sound", f"rate-{sr}.wav", wav_bytes(pcm, sr))
    add("sound", "rate-1000.flac", encode_audio(sound(rng, 0.5, 1000), 1000, "FLAC"))
    add("sound", "rate-192000.wav", encode_audio(sound(rng, 0.5, 192000), 192000, "WAV", "PCM_24"))
    for ch in (6, 64, 256):
        add("sound", f"{ch}-channels.wav", encode_audio(sound(rng, 0.3, 8000, ch), 8000, "WAV", "PCM_16"))
    add("sound", "0-channels.wav", wav_bytes(pcm, 8000, channels=0))
    add("sound", "65535-channels.wav", wav_bytes(pcm[: 65535 * 2 * 2], 8000, channels=65535))
    add("sound", "bits-7.wav", wav_bytes(pcm, 8000, bits=7))
    add("sound", "bits-0.wav", wav_bytes(pcm, 8000, bits=0))
    add("sound", "format-tag-unknown.wav", wav_bytes(pcm, 8000, tag=0x1234))
    add("sound", "riff-size-max.wav", wav_bytes(pcm, 8000, riff_size=0xFFFFFFFF))
    add("sound", "data-size-max.wav", wav_bytes(pcm, 8000, data_size=0xFFFFFFFF))
    add("sound", "data-size-odd.wav", wav_bytes(pcm[:-1], 8000))
    add("sound", "claims-10-hours.wav", wav_bytes(pcm, 8000, data_size=10 * 3600 * 8000 * 2))
    # unusual but valid encodings
    for subtype in ("PCM_U8", "PCM_24", "PCM_32", "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM", "GSM610"):
        add("sound", f"{subtype.lower()}.wav", encode_audio(sound(rng, 0.6, 8000), 8000, "WAV", subtype))
    add("sound", "silence.wav", encode_audio(np.zeros(8000, np.float32), 8000, "WAV", "PCM_16"))
    add("sound", "full-scale-square.wav",
        encode_audio(np.sign(sound(rng, 1.0, 8000)).astype(np.float32), 8000, "WAV", "PCM_16"))
    add("sound", "webm-signature.wav", b"\x1aE\xdf\xa3" + rng.bytes(200))
    add("sound", "m4a-signature.wav", b"\x00\x00\x00\x20ftypM4A " + rng.bytes(200))

    # huge declared dimensions (decompression bombs by header), and big-but-allowed
    add("image", "declares-100000x100000.png", png_declaring(100_000, 100_000, zlib.compress(b"\x00" * 1000)))
    add("image", "declares-2^31x1.png", png_declaring(2**31 - 1, 1, zlib.compress(b"\x00" * 100)))
    add("image", "declares-0x0.png", png_declaring(0, 0))
    add("image", "declares-6000x6000-tiny-idat.png", png_declaring(6000, 6000, zlib.compress(b"\x00" * 100)))
    add("image", "declares-bad-depth.png", png_declaring(64, 64, zlib.compress(b"\x00" * 1000), depth=3))
    add("image", "declares-bad-colortype.png", png_declaring(64, 64, zlib.compress(b"\x00" * 1000), color_type=5))
    rows = 4000
    add("image", "zeros-4000x4000.png",  # 16 MP of black in 50 kB: allowed, must be decoded and shrunk
        png_declaring(4000, rows, zlib.compress(b"\x00" * (rows * (1 + 4000)), 9), color_type=0))
    gif = bytearray(encode_image(Image.new("P", (4, 4)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    add("image", "gif-screen-65535.gif", bytes(gif))
    big_jpeg = bytearray(jpeg)
    sof = big_jpeg.find(b"\xff\xc0")
    big_jpeg[sof + 5: sof + 9] = struct.pack(">HH", 65500, 65500)
    add("image", "jpeg-sof-65500x65500.jpg", bytes(big_jpeg))
    bmp = bytearray(encode_image(pic, "BMP"))
    bmp[18:26] = struct.pack("<ii", 1_000_000, -1_000_000)
    add("image", "bmp-1e6x1e6.bmp", bytes(bmp))

    # odd but valid modes and containers
    grey = photo(rng)[..., 0]
    add("image", "16bit.png", encode_image(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"))
    add("image", "rgba.png", encode_image(np.dstack([pic, np.full(pic.shape[:2], 100, np.uint8)]), "PNG"))
    add("image", "la.png", encode_image(Image.fromarray(grey).convert("LA"), "PNG"))
    add("image", "palette.png", encode_image(Image.fromarray(pic).convert("P"), "PNG"))
    add("image", "1bit.png", encode_image(Image.fromarray(grey).convert("1"), "PNG"))
    add("image", "cmyk.jpg", encode_image(Image.fromarray(pic).convert("CMYK"), "JPEG"))
    fimg = grey.astype(np.float32)
    fimg[::5, ::3] = np.nan
    fimg[1::7] = np.inf
    add("image", "float-nan-inf.tiff", encode_image(Image.fromarray(fimg, mode="F"), "TIFF"))
    add("image", "float-all-nan.tiff", encode_image(Image.fromarray(np.full((32, 32), np.nan, np.float32)), "TIFF"))
    add("image", "int32.tiff", encode_image(Image.fromarray(grey.astype(np.int32) * 10**7), "TIFF"))
    frames = [Image.fromarray(np.roll(pic, 9 * k, axis=1)) for k in range(20)]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:], duration=0)
    add("image", "animated.png", buf.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 9  # an orientation that does not exist
    add("image", "bad-exif-orientation.jpg", encode_image(pic, "JPEG", exif=exif.tobytes()))
    add("image", "webp.webp", encode_image(pic, "WEBP"))

    # not media at all; sent alternately to both APIs
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr(zipfile.ZipInfo("inside.png", date_time=(2020, 1, 1, 0, 0, 0)), png)  # no clock: seeded bytes
    others = [
        ("notes.txt", b"just some text\n" * 20),
        ("page.html", b"<!doctype html><html><body><script>alert(1)</script><img src=x></body></html>"),
        ("page-named.png", b"<html><body>not a picture</body></html>"),
        ("text-named.wav", b"RIFF? no, just text\n"),
        ("archive.zip", zipped.getvalue()),
        ("archive-named.png", zipped.getvalue()),
        ("archive-named.wav", zipped.getvalue()),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10"/></svg>'),
        ("data.json", b'{"image": null, "sound": [1, 2, 3]}'),
        ("program.elf", b"\x7fELF\x02\x01\x01" + rng.bytes(400)),
        ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.bytes(300)),
        ("compressed.gz", zlib.compress(b"x" * 10000)),
        ("png-then-html.png", png + b"<html>polyglot</html>"),
        ("utf16-text.wav", "not a sound".encode("utf-16")),
    ]
    for i, (name, data) in enumerate(others):
        add("image" if i % 2 == 0 else "sound", name, data)
    # odd file names on good content
    add("image", "n" * 230 + ".png", png)
    add("sound", "s" * 230 + ".wav", wav)
    add("image", "\u97f3" * 75 + ".png", png)  # 225 bytes of UTF-8
    add("sound", "caf\u00e9 \u97f3 'quote\" $(x).wav", wav)
    add("image", "-dash; rm -rf.png", png)
    add("sound", ".wav", wav)

    files = []
    for kind, name, data in cases:
        path = folder / name
        path.write_bytes(data)
        files.append((kind, path))
    return files


# --- the test


def check_message(message: str) -> str | None:
    """What is wrong with an error message a user would see, or None when it is fine."""
    message = message.strip()
    if not message or message.lower() in {"error", "none", "exception"}:
        return "no message"
    if "\n" in message:
        return "several lines"
    if "Traceback" in message or 'File "' in message:
        return "traceback"
    if any(phrase in message for phrase in LIBRARY_PHRASES):
        return "a decoder's words, not ours"
    if message.startswith(UNEXPECTED):
        return "an unexpected exception"
    return None


def check_result(kind: str, result) -> str | None:
    labels = result[0]
    if not isinstance(labels, dict) or not labels.get("confidences"):
        return f"no labels: {labels!r}"[:200]
    probs = [c.get("confidence") for c in labels["confidences"]]
    if not all(isinstance(p, (int, float)) and math.isfinite(p) and 0 <= p <= 1 for p in probs):
        return f"bad probabilities {probs}"
    return None


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory) -> list[tuple[str, Path]]:
    return make_fuzz_files(tmp_path_factory.mktemp("fuzz"))


def test_corpus_is_big_mixed_and_seeded(fuzz_files, tmp_path):
    kinds = Counter(kind for kind, _ in fuzz_files)
    assert len(fuzz_files) >= 100 and min(kinds.values()) >= 0.4 * len(fuzz_files), kinds
    assert len({p.name for _, p in fuzz_files}) == len(fuzz_files)
    again = make_fuzz_files(tmp_path)

    def same_bytes(path: Path) -> bytes:  # libvorbis picks a random stream serial number
        if "ogg" in path.name:
            return b""
        data = bytearray(path.read_bytes())
        peak = data.find(b"PEAK")  # a float WAV's PEAK chunk holds the time it was written
        if peak >= 0:
            data[peak + 12: peak + 16] = b"\0\0\0\0"
        return bytes(data)
    assert [(k, p.name, same_bytes(p)) for k, p in again] == [(k, p.name, same_bytes(p)) for k, p in fuzz_files]


def test_check_message_refuses_what_a_user_must_not_see():
    assert check_message("photo.png is damaged or truncated.") is None
    assert check_message("") == check_message("Error") == "no message"
    assert check_message("first line\nsecond line") == "several lines"
    assert check_message('Traceback (most recent call last): File "x.py"') == "traceback"
    assert check_message("Error opening 'x.wav': Format not recognised.") == "a decoder's words, not ours"
    assert check_message("Unexpected error (ZeroDivisionError): division by zero") == "an unexpected exception"


def test_malformed_files_get_a_result_or_a_one_line_message(sound_app, fuzz_files, coffee_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    client = Client(sound_app, verbose=False)
    proc, log = APPS[sound_app]
    tracebacks_before = log.read_text(errors="replace").count("Traceback")
    outcomes: dict[str, list] = {"result": [], "message": [], "problem": []}
    messages: Counter = Counter()
    slowest = (0.0, "")
    start = time.perf_counter()
    for kind, path in fuzz_files:
        args = IMAGE_ARGS if kind == "image" else SOUND_ARGS
        t = time.perf_counter()
        job = client.submit(handle_file(str(path)), *args, api_name=API[kind])
        try:
            result = job.result(timeout=REQUEST_TIMEOUT)
        except TimeoutError:
            job.cancel()
            outcomes["problem"].append((path.name, f"no answer in {REQUEST_TIMEOUT} s"))
            break  # a hung worker would make every later request time out as well
        except Exception as exc:  # gradio_client raises AppError with the server's message
            message = str(getattr(exc, "message", None) or exc)
            problem = check_message(message) if isinstance(exc, AppError) else f"{type(exc).__name__} in the client"
            if problem or proc.poll() is not None:
                outcomes["problem"].append((path.name, f"{problem or 'server died'}: {message[:300]!r}"))
            else:
                outcomes["message"].append((path.name, message))
                messages[re.sub(re.escape(path.stem) + r"\.\w+", "<file>", message).split(":")[0][:70]] += 1
        else:
            problem = check_result(kind, result)
            outcomes["problem" if problem else "result"].append((path.name, problem or "ok"))
        slowest = max(slowest, (time.perf_counter() - t, path.name))
        if proc.poll() is not None:
            outcomes["problem"].append((path.name, f"server exited with {proc.returncode}"))
            break
    elapsed = time.perf_counter() - start

    by_kind = Counter(kind for kind, _ in fuzz_files)
    log_text = log.read_text(errors="replace")
    new_tracebacks = log_text.count("Traceback") - tracebacks_before
    print(f"\nfuzz: {len(fuzz_files)} files sent ({by_kind['image']} to {API['image']}, {by_kind['sound']} to "
          f"{API['sound']}) in {elapsed:.0f} s: {len(outcomes['result'])} results, {len(outcomes['message'])} "
          f"one-line messages, {len(outcomes['problem'])} problems; "
          f"slowest {slowest[0]:.1f} s ({slowest[1]}); server log: {new_tracebacks} new tracebacks")
    if os.environ.get("FUZZ_VERBOSE"):  # every file's outcome
        for outcome, items in outcomes.items():
            for name, detail in items:
                print(f"  {outcome}: {name}: {detail}")
    for name, problem in outcomes["problem"]:
        print(f"  PROBLEM: {name}: {problem}")
    print("  message kinds: " + "; ".join(f"{n}x {m}" for m, n in messages.most_common(12)))

    assert not outcomes["problem"], outcomes["problem"]  # (file name, what went wrong) for each
    assert new_tracebacks == 0, log_text[-3000:]  # an exception the app logged while answering the files
    assert sum(map(len, outcomes.values())) == len(fuzz_files)
    assert outcomes["result"] and outcomes["message"]
    worked = {name.split("-", 1)[1] for name, _ in outcomes["result"]}
    assert MUST_WORK <= worked, sorted(MUST_WORK - worked)

    # the same server still answers good requests, and its process is alive
    labels, *_ = client.predict(handle_file(str(coffee_path)), *IMAGE_ARGS, api_name="/explain")
    assert "espresso" in [c["label"] for c in labels["confidences"]], labels
    good = coffee_path.parent / "tone-1000.wav"
    t = np.arange(8000) / 8000
    sf.write(good, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 8000)
    labels, *_ = client.predict(handle_file(str(good)), *SOUND_ARGS, api_name="/analyze_sound")
    assert labels["label"] == "tone-1000", labels
    assert proc.poll() is None
