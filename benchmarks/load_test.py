"""Load test: N concurrent gradio_client users for D seconds against the running app.

    python benchmarks/load_test.py [--users 16] [--seconds 60] [--url http://127.0.0.1:7860/]

Without --url it starts `python app.py` itself on a free loopback port (as the tests do) and
stops it at the end. Each user loops over a mix of requests: /explain on scikit-image's
example photos and /analyze_sound on a tone-and-noise clip synthesised here with numpy.
The sound model needs an ESC-50 checkpoint (checkpoints/esc50/*.pt, or XAI_LAB_CHECKPOINTS);
without one the run is image-only and says so.

Prints total requests, throughput, p50/p95/max latency (overall and per endpoint), the
error count (0 expected; the exit status is 1 when there were errors) and the server's peak
resident memory (VmRSS of the server process and its children, sampled from /proc; for
--url, the process listening on the URL's loopback port, or --pid).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_process import start_app, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PREDICTED = "(predicted class)"
IMAGES = ("chelsea", "coffee", "astronaut", "rocket")  # bundled with scikit-image: nothing downloaded
SOUND_RATE, SOUND_SECONDS = 22050, 5.0  # resampled by the app to the model's rate
SOUND_HOP = 5.0  # ESC-50's window: one window per clip
RSS_POLL_SECONDS = 0.2


# --- the server


def pid_listening_on(port: int) -> int | None:
    """The process with a listening TCP socket on `port` (Linux /proc), if we may see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def tree_rss_bytes(pid: int) -> int:
    """VmRSS of pid and all its descendants, in bytes (0 once it is gone)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                children.setdefault(ppid, []).append(int(proc.name))
            except (OSError, ValueError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class RssSampler(threading.Thread):
    """Polls the server's memory in the background; keeps the peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.first = pid, 0, None
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            rss = tree_rss_bytes(self.pid)
            self.first = rss if self.first is None else self.first
            self.peak = max(self.peak, rss)
            self.done.wait(RSS_POLL_SECONDS)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


# --- the requests


def make_inputs(folder: Path) -> tuple[list[Path], Path]:
    """scikit-image's photos as files, and a 5 s clip: a gliding tone, a steady tone, noise bursts."""
    import soundfile as sf
    from PIL import Image
    from skimage import data
    images = []
    for name in IMAGES:
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(data, name)()).convert("RGB").save(path, quality=92)
        images.append(path)
    rng = np.random.default_rng(0)
    t = np.arange(int(SOUND_SECONDS * SOUND_RATE)) / SOUND_RATE
    glide = np.sin(2 * np.pi * np.cumsum(700 + 400 * np.sin(2 * np.pi * t / 2.5)) / SOUND_RATE)
    bursts = rng.normal(0, 1, len(t)) * ((t % 1.0) < 0.15)
    y = 0.4 * glide + 0.2 * np.sin(2 * np.pi * 440 * t) + 0.2 * bursts
    clip = folder / "tone-and-noise.wav"
    sf.write(clip, (0.9 * y / np.abs(y).max()).astype(np.float32), SOUND_RATE, subtype="PCM_16")
    return images, clip


def esc50_folder() -> Path:
    return Path(os.environ.get("XAI_LAB_CHECKPOINTS", ROOT / "checkpoints")) / "esc50"


def local_sound_model() -> str | None:
    """esc50:<arch> for a checkpoint the app will find here (the task's default first), else None."""
    folder = esc50_folder()
    found = sorted(folder.glob("*.pt"), key=lambda p: (p.stem != "effnet-lite0", p.stem))
    return f"esc50:{found[0].stem}" if found else None


class Requests:
    """The request mix: each call of `one(client, i)` is the i-th request of a user."""

    def __init__(self, images: list[Path], clip: Path, image_model: str, method: str, sound_model: str | None):
        self.images, self.clip = images, clip
        self.image_model, self.method, self.sound_model = image_model, method, sound_model

    def kinds(self) -> list[str]:
        # two images for one sound: the image tab is the one most visitors use
        return ["explain", "explain", "analyze_sound"] if self.sound_model else ["explain"]

    def send(self, client, kind: str, i: int):
        from gradio_client import handle_file
        if kind == "explain":
            image = self.images[i % len(self.images)]
            return client.predict(handle_file(str(image)), self.image_model, self.method, PREDICTED, 0.5,
                                  api_name="/explain")
        return client.predict(handle_file(str(self.clip)), self.sound_model, "GradCAM", PREDICTED, SOUND_HOP,
                              api_name="/analyze_sound")


def user(url: str, requests: Requests, offset: int, deadline: float, out: list, lock: threading.Lock) -> None:
    """One simulated visitor: its own client, requests back to back until the deadline."""
    from gradio_client import Client
    try:
        client = Client(url, verbose=False)
    except Exception as exc:
        with lock:
            out.append(("connect", 0.0, f"{type(exc).__name__}: {exc}".splitlines()[0]))
        return
    kinds, i = requests.kinds(), offset
    while time.perf_counter() < deadline:
        kind = kinds[i % len(kinds)]
        t = time.perf_counter()
        try:
            requests.send(client, kind, i)
            error = None
        except Exception as exc:
            error = (str(getattr(exc, "message", None) or exc) or type(exc).__name__).splitlines()[0][:200]
        with lock:
            out.append((kind, time.perf_counter() - t, error))
        i += 1


# --- report


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    return sorted_values[min(len(sorted_values) - 1, max(0, int(np.ceil(q / 100 * len(sorted_values))) - 1))]


def latency_line(latencies: list[float]) -> str:
    ts = sorted(latencies)
    if not ts:
        return "no requests"
    return (f"p50 {percentile(ts, 50):6.2f} s   p95 {percentile(ts, 95):6.2f} s   "
            f"max {ts[-1]:6.2f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=16, help="concurrent gradio_client users (default 16)")
    ap.add_argument("--seconds", type=float, default=60, help="how long the users keep sending (default 60)")
    ap.add_argument("--url", help="an app already running (default: start one on a free loopback port)")
    ap.add_argument("--pid", type=int, help="with --url: the server's process id, for its memory")
    ap.add_argument("--image-model", default="imagenet:effnet-lite0")
    ap.add_argument("--method", default="GradCAM", help="CAM method for /explain (default GradCAM)")
    ap.add_argument("--sound-model", help="model id for /analyze_sound (default: esc50:<the checkpoint found>)")
    args = ap.parse_args(argv)

    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="load-test-"))
    images, clip = make_inputs(work)
    proc = None
    if args.url:
        url, pid = args.url, args.pid
        port = urlparse(url).port
        if pid is None and urlparse(url).hostname in ("127.0.0.1", "localhost") and port:
            pid = pid_listening_on(port)
    else:
        print("starting app.py ...", flush=True)
        t = time.perf_counter()
        proc, url = start_app(work / "app.log")
        pid = proc.pid
        print(f"app up at {url} in {time.perf_counter() - t:.0f} s (log: {work / 'app.log'})")

    try:
        sound_model = args.sound_model or local_sound_model()
        if sound_model is None and args.url:
            sound_model = "esc50"  # a remote server may have one: the warm-up request tells
        elif sound_model is None:
            print(f"no ESC-50 checkpoint ({esc50_folder()}/*.pt): sound analysis left out, image-only run")
        requests = Requests(images, clip, args.image_model, args.method, sound_model)

        # warm-up, not counted: loads each model once, and checks the sound model is there
        client = Client(url, verbose=False)
        for kind in dict.fromkeys(requests.kinds()):
            t = time.perf_counter()
            try:
                requests.send(client, kind, 0)
            except Exception as exc:
                message = str(getattr(exc, "message", None) or exc).splitlines()[0]
                if kind != "analyze_sound":
                    raise SystemExit(f"warm-up /{kind} failed: {message}")
                print(f"/analyze_sound with {requests.sound_model} is not available ({message}): image-only run")
                requests.sound_model = None
                continue
            print(f"warm-up /{kind}: {time.perf_counter() - t:.1f} s")

        sampler = RssSampler(pid) if pid else None
        if sampler:
            sampler.start()
        results: list = []
        lock = threading.Lock()
        mix = " + ".join(f"{n}x /{k}" for k, n in Counter(requests.kinds()).items())
        print(f"{args.users} users for {args.seconds:g} s, each looping over {mix} "
              f"(image model {args.image_model}, {args.method}; sound model {requests.sound_model or '-'})",
              flush=True)
        start = time.perf_counter()
        deadline = start + args.seconds
        threads = [threading.Thread(target=user, args=(url, requests, k, deadline, results, lock), daemon=True)
                   for k in range(args.users)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - start
        peak = sampler.stop() if sampler else None
    finally:
        if proc is not None:
            stop(proc)

    done = [r for r in results if r[0] != "connect"]
    errors = [r for r in results if r[2] is not None]
    ok = [r for r in done if r[2] is None]
    print(f"\nrequests: {len(done)} in {wall:.1f} s ({len(ok)} ok, {len(errors)} errors)")
    print(f"throughput: {len(ok) / wall:.2f} req/s")
    print(f"latency (all):           {latency_line([r[1] for r in done])}")
    for kind in dict.fromkeys(r[0] for r in done):
        rows = [r for r in done if r[0] == kind]
        print(f"latency /{kind + ':':15s} {latency_line([r[1] for r in rows])}   ({len(rows)} requests)")
    print(f"errors: {len(errors)}")
    for message, n in Counter(f"/{r[0]}: {r[2]}" for r in errors).most_common(5):
        print(f"  {n}x {message}")
    if peak is not None:
        print(f"server peak RSS: {peak / 2**20:.0f} MiB (at start of the run {sampler.first / 2**20:.0f} MiB; "
              f"process {pid} and its children)")
    else:
        print("server peak RSS: unknown (give --pid for a server not on a loopback port of this machine)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
