"""Soak test: N concurrent gradio_client clients for D seconds against the real app, then what
it left behind and how its memory moved.

    python benchmarks/soak.py [--clients 16] [--seconds 300] [--url http://127.0.0.1:7860/ [--pid PID]]

Without --url it starts `python app.py` on a free loopback port (as tests/conftest.py does) with
a temporary folder of its own (TMPDIR, GRADIO_TEMP_DIR), so every file the server writes there
is counted, and stops it at the end. With --url (loopback only) the server's folders are taken
to be this machine's default temporary folder.

Each client loops, back to back, over image explanations (/explain of the Image explainer tab,
on scikit-image photos) and sound analyses (/analyze_sound of the Sound tab, on the example
recordings in assets/examples/ with the model the examples list names). A ramp-up (--ramp-up,
default 30 s) of the same load comes first: the server's memory climbs while requests first run
side by side (the allocators' high-water marks, then flat), which is not growth over time; the
ramp-up's failures count, its latencies and memory samples do not. After the run it waits until
the app's request folders are old enough to be pruned, sends one more request (the app prunes
when a request makes its folder) and counts what is left.

Prints: requests done, failed requests (and the first error messages), p50/p95 latency per
endpoint, the files left in the app's output folder (demos/common.py OUTPUTS_DIR) and in Gradio's
cache, any other file the server left in its temporary folder, and the server's resident memory
(psutil when installed, else VmRSS from /proc; the process and its children) sampled every few
seconds, with the growth over the last half of the run. Exit status 1 when a bar is missed:
a failed request, files left beyond the app's bounded output folder (KEEP_OUTPUTS request folders)
other than Gradio's own cache, or memory growth over the last half of MAX_GROWTH_MB or more.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app_process import start_app, stop  # noqa: E402
from load_test import percentile, pid_listening_on, tree_rss_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "assets" / "examples" / "examples.json"
PHOTOS = ("chelsea", "coffee")  # scikit-image's bundled photos: nothing downloaded
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PREDICTED = "(predicted class)"
SOUND_HOP = 10.0  # the slider's maximum: the app uses the model's window (no overlap)
MAX_GROWTH_MB = 50  # over the last half of the run (1 MB = 10^6 bytes)
# bounds on everything the script does
MAX_CLIENTS, MAX_SECONDS = 64, 3600
DEFAULT_REQUEST_TIMEOUT = 300.0  # one request, queue wait included
ERRORS_SHOWN = 5


# --- inputs


def make_inputs(folder: Path, image_model: str | None, sound_method: str) -> list[tuple[str, str, tuple]]:
    """The request mix, images and sounds alternating: (endpoint, input file, the endpoint's other arguments)."""
    from PIL import Image
    from skimage import data

    from models.registry import parse_model_id
    from demos.image_explainer import model_choices
    from models.cam import DEFAULT_METHOD

    def full_id(model_id: str) -> str:
        task, entry = parse_model_id(model_id)
        return f"{task.id}:{entry.name}"

    image_model = full_id(image_model) if image_model else model_choices()[0]  # the tab's default
    images = []
    for name in PHOTOS:
        path = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(path)
        images.append(("explain", str(path), (image_model, DEFAULT_METHOD, PREDICTED, 0.5)))
    sounds = [("analyze_sound", str(MANIFEST.parent / item["file"]),
               (full_id(item["model"]), sound_method, PREDICTED, SOUND_HOP))
              for item in json.loads(MANIFEST.read_text())
              if item["tab"] == "sound" and (MANIFEST.parent / item["file"]).is_file()]
    if not sounds:
        raise SystemExit(f"no sound examples listed in {MANIFEST}")
    mix = []
    for i in range(max(len(images), len(sounds))):
        mix += [images[i % len(images)], sounds[i % len(sounds)]]
    return mix


def send(client, request: tuple, timeout: float):
    from gradio_client import handle_file
    kind, path, args = request
    return client.submit(handle_file(path), *args, api_name=f"/{kind}").result(timeout=timeout)


# --- what the server holds


def rss_bytes(pid: int) -> int:
    """Resident memory of the server process and its children (0 once it is gone)."""
    try:
        import psutil
    except ImportError:
        return tree_rss_bytes(pid)
    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return 0


def folder_stats(folder: Path) -> tuple[int, int, int]:
    """(files, folders, bytes) under folder (0s when it does not exist)."""
    files = dirs = size = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirs += len(dirnames)
        for name in filenames:
            files += 1
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return files, dirs, size


def paths_under(folder: Path, skip: tuple[Path, ...], recursive: bool = True) -> set[str]:
    """Every file and folder under folder (or only its entries), less the trees in skip."""
    found = set()
    skip_s = {str(s) for s in skip}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip_s]
        found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
        if not recursive:
            break
    return found


class Sampler(threading.Thread):
    """Every `every` seconds: (seconds since start, server RSS, Gradio cache files, output folders)."""

    def __init__(self, pid: int | None, every: float, gradio_cache: Path, outputs: Path):
        super().__init__(daemon=True)
        self.pid, self.every, self.gradio_cache, self.outputs = pid, every, gradio_cache, outputs
        self.samples: list[tuple[float, int, int, int]] = []
        self.done = threading.Event()
        self.start_time = time.perf_counter()

    def sample(self) -> None:
        rss = rss_bytes(self.pid) if self.pid else 0
        cache_files = folder_stats(self.gradio_cache)[0]
        out_folders = sum(1 for _ in self.outputs.iterdir()) if self.outputs.is_dir() else 0
        self.samples.append((time.perf_counter() - self.start_time, rss, cache_files, out_folders))

    def run(self):
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.every)

    def stop(self) -> list[tuple[float, int, int, int]]:
        self.done.set()
        self.join(self.every + 30)
        self.sample()  # the end of the run
        return self.samples


def last_half_growth(samples: list[tuple[float, int, int, int]], column: int) -> tuple[float, float, float]:
    """(value at half time, at the end, least-squares slope per minute over the last half) of a sampled
    column: the half-time value is the median of the samples nearest the middle, the end one of the last three."""
    total = samples[-1][0]
    half = [s for s in samples if s[0] >= total / 2]
    nearest = sorted(samples, key=lambda s: abs(s[0] - total / 2))[:3]
    mid = statistics.median(s[column] for s in nearest)
    end = statistics.median(s[column] for s in samples[-3:])
    slope = 0.0
    if len(half) >= 2 and half[-1][0] > half[0][0]:
        slope = float(np.polyfit([s[0] for s in half], [s[column] for s in half], 1)[0]) * 60
    return mid, end, slope


# --- the clients


def client_loop(url: str, k: int, mix: list, deadline: float, args, out: list, lock: threading.Lock,
                downloads: Path) -> None:
    """One client: its own gradio_client.Client, requests back to back until the deadline."""
    from gradio_client import Client
    try:
        client = Client(url, verbose=False, download_files=str(downloads / str(k)))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        with lock:
            out.append(("connect", 0.0, 0.0, f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
        return
    i = k
    try:
        while time.perf_counter() < deadline:
            with lock:
                if len(out) >= args.max_requests:
                    return
            request = mix[i % len(mix)]
            t = time.perf_counter()
            try:
                send(client, request, args.request_timeout)
                error = None
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                error = (str(getattr(exc, "message", None) or exc) or type(exc).__name__).splitlines()[0][:300]
                error = f"{type(exc).__name__}: {error} ({Path(request[1]).name}, {request[2][0]})"
            with lock:
                out.append((request[0], t, time.perf_counter() - t, error))
            i += 1
    finally:
        client.close()


def latency_line(latencies: list[float]) -> str:
    ts = sorted(latencies)
    if not ts:
        return "no requests"
    return f"p50 {percentile(ts, 50):6.2f} s   p95 {percentile(ts, 95):6.2f} s   max {ts[-1]:6.2f} s"


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


# --- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16, help=f"concurrent clients (default 16, at most {MAX_CLIENTS})")
    ap.add_argument("--seconds", type=float, default=300,
                    help=f"how long the clients keep sending after the ramp-up (default 300, at most {MAX_SECONDS})")
    ap.add_argument("--ramp-up", type=float, default=30,
                    help="seconds of load before the measured run (default 30): its requests count as done or "
                         "failed, but not in the latencies, and its memory samples not in the halves")
    ap.add_argument("--url", help="an app already running on this machine's loopback (default: start one)")
    ap.add_argument("--pid", type=int, help="with --url: the server's process id (default: the one listening)")
    ap.add_argument("--image-model", help="model for /explain (default: the tab's first, imagenet:effnet-lite0)")
    ap.add_argument("--sound-method", default="GradCAM", help="CAM method for /analyze_sound (default GradCAM)")
    ap.add_argument("--sample-every", type=float, default=5.0, help="memory sampling period, s (default 5)")
    ap.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
                    help=f"one request's limit, queue included (default {DEFAULT_REQUEST_TIMEOUT:g} s)")
    ap.add_argument("--max-requests", type=int, default=100_000, help="stop after this many (default 100000)")
    ap.add_argument("--settle", type=float, default=None,
                    help="after the run, wait at most this long for the request folders to be prunable "
                         "(default: the app's OUTPUT_MIN_AGE + 5 s); 0 skips the wait and the pruning request")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.seconds <= MAX_SECONDS or not 0 <= args.ramp_up <= 600:
        ap.error(f"--clients must be 1..{MAX_CLIENTS}, --seconds in (0, {MAX_SECONDS}], --ramp-up 0..600")
    if not 0.5 <= args.sample_every <= 60 or not 1 <= args.request_timeout <= 3600 or args.max_requests < 1:
        ap.error("--sample-every must be 0.5..60 s, --request-timeout 1..3600 s, --max-requests >= 1")
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        ap.error(f"--url must be a loopback address ({', '.join(sorted(LOOPBACK))}), not {args.url}")

    from gradio_client import Client

    from demos.common import GRADIO_CACHE_CLEANUP, KEEP_OUTPUTS, OUTPUT_MIN_AGE, OUTPUTS_DIR

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    (work / "inputs").mkdir()
    mix = make_inputs(work / "inputs", args.image_model, args.sound_method)
    proc = None
    if args.url:
        url, pid = args.url, args.pid or pid_listening_on(urlparse(args.url).port or 80)
        server_tmp = Path(tempfile.gettempdir())
        gradio_cache = Path(os.environ.get("GRADIO_TEMP_DIR") or server_tmp / "gradio")
    else:
        server_tmp = work / "server-tmp"
        gradio_cache = server_tmp / "gradio"
        gradio_cache.mkdir(parents=True)
        print("starting app.py ...", flush=True)
        t = time.perf_counter()
        proc, url = start_app(work / "app.log", TMPDIR=str(server_tmp), GRADIO_TEMP_DIR=str(gradio_cache))
        pid = proc.pid
        print(f"app up at {url} in {time.perf_counter() - t:.0f} s (pid {pid}, log {work / 'app.log'})")
    outputs = server_tmp / OUTPUTS_DIR.name
    skip = (gradio_cache, outputs, work / "downloads", work / "inputs")

    results: list = []
    try:
        # warm-up, not counted: every model loaded once
        client = Client(url, verbose=False, download_files=str(work / "downloads" / "warm-up"))
        for request in dict.fromkeys((r[0], r[2][0]) for r in mix):
            first = next(r for r in mix if (r[0], r[2][0]) == request)
            t = time.perf_counter()
            try:
                send(client, first, args.request_timeout)
            except Exception as exc:  # noqa: BLE001
                raise SystemExit(f"warm-up /{first[0]} with {first[2][0]} failed: {exc}") from None
            print(f"warm-up /{first[0]} {first[2][0]}: {time.perf_counter() - t:.1f} s", flush=True)
        before = paths_under(server_tmp, skip, recursive=not args.url)
        cache_before = folder_stats(gradio_cache)

        sampler = Sampler(pid, args.sample_every, gradio_cache, outputs)
        lock = threading.Lock()
        kinds = Counter(r[0] for r in mix)
        print(f"{args.clients} clients for {args.ramp_up:g} s of ramp-up + {args.seconds:g} s, each looping over "
              f"{len(mix)} requests "
              f"({', '.join(f'{n}x /{k}' for k, n in kinds.items())}; models "
              f"{', '.join(sorted({r[2][0] for r in mix}))})", flush=True)
        start = time.perf_counter()
        measured_from = start + args.ramp_up
        deadline = measured_from + args.seconds
        sampler.start()
        threads = [threading.Thread(target=client_loop, daemon=True,
                                    args=(url, k, mix, deadline, args, results, lock, work / "downloads"))
                   for k in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(max(1.0, deadline + args.request_timeout + 30 - time.perf_counter()))
        wall = time.perf_counter() - measured_from
        all_samples = [(t - args.ramp_up, *rest) for t, *rest in sampler.stop()]  # t: from the measured start
        samples = [x for x in all_samples if x[0] >= 0]
        stuck = sum(th.is_alive() for th in threads)

        # let the request folders age past OUTPUT_MIN_AGE, then one request makes the app prune them
        settle = OUTPUT_MIN_AGE + 5 if args.settle is None else args.settle
        probe_error = None
        if settle > 0:
            last_end = max((r[1] + r[2] for r in results), default=start)
            wait = min(settle, max(0.0, last_end + OUTPUT_MIN_AGE + 2 - time.perf_counter()))
            print(f"run over; waiting {wait:.0f} s for the request folders to age, then one request to prune them",
                  flush=True)
            time.sleep(wait)
            try:
                send(client, mix[0], args.request_timeout)
            except Exception as exc:  # noqa: BLE001
                probe_error = str(exc).splitlines()[0][:300]
        client.close()
        out_files, _, out_bytes = folder_stats(outputs)
        out_folders = sum(1 for _ in outputs.iterdir()) if outputs.is_dir() else 0
        cache_files, cache_dirs, cache_bytes = folder_stats(gradio_cache)
        strays = sorted(paths_under(server_tmp, skip, recursive=not args.url) - before)
        if args.url:  # this machine's shared temporary folder: other programs write there too
            strays = [s for s in strays if not s.startswith(str(work))]
    finally:
        if proc is not None:
            stop(proc)

    # --- report
    ramp = [r for r in results if r[0] != "connect" and r[1] < measured_from]
    done = [r for r in results if r[0] != "connect" and r[1] >= measured_from]
    failed = [r for r in results if r[3] is not None]
    print(f"\nrequests done: {len(done)} in {wall:.0f} s ({len(done) / wall:.2f} req/s), {args.clients} clients "
          f"(+ {len(ramp)} in the {args.ramp_up:g} s ramp-up)"
          + (f"; {stuck} clients still waiting at the end" if stuck else ""))
    print(f"failed requests: {len(failed)} (ramp-up included)")
    for message, n in Counter(r[3] for r in failed).most_common(ERRORS_SHOWN):
        print(f"  {n}x /{next(r[0] for r in failed if r[3] == message)}: {message}")
    for kind in dict.fromkeys(r[0] for r in done):
        rows = [r[2] for r in done if r[0] == kind]
        print(f"latency /{kind + ':':15s} {latency_line(rows)}   ({len(rows)} requests)")

    bound = KEEP_OUTPUTS + (1 if settle > 0 else 0)
    print(f"\napp output folder {outputs}: {out_folders} request folders, {out_files} files, {mib(out_bytes)} "
          + (f"after the pruning request (bound: {KEEP_OUTPUTS} kept + the new one)" if settle > 0 else
             "(no pruning request: --settle 0)")
          + (f"; pruning request failed: {probe_error}" if probe_error else ""))
    cache_mid, cache_end, _ = last_half_growth(samples, 2)
    print(f"Gradio cache {gradio_cache}: {cache_files} files in {cache_dirs} folders, {mib(cache_bytes)} "
          f"(after warm-up {cache_before[0]} files; at half time {cache_mid:.0f}, at the end {cache_end:.0f}); "
          f"Gradio deletes its files after {GRADIO_CACHE_CLEANUP[1] / 3600:g} h (checked every "
          f"{GRADIO_CACHE_CLEANUP[0] / 3600:g} h)")
    print(f"other files the server left in {server_tmp}: {len(strays)}"
          + ("" if not args.url else " (the machine's shared temporary folder: other programs' files count too)"))
    for s in strays[:10]:
        print(f"  {s}")

    rss = [s[1] for s in samples]
    growth_ok = True
    if pid and any(rss):
        mid, end, slope = last_half_growth(samples, 1)
        growth = end - mid
        growth_ok = growth < MAX_GROWTH_MB * 1e6
        print(f"\nserver RSS (pid {pid} and children, {'psutil' if _has_psutil() else '/proc VmRSS'}, "
              f"every {args.sample_every:g} s): before the load {mib(all_samples[0][1])}, after the ramp-up "
              f"{mib(rss[0])}, peak {mib(max(rss))}, half time {mib(mid)}, end {mib(end)}")
        print(f"growth over the last half: {growth / 1e6:+.1f} MB ({slope / 1e6:+.2f} MB/min)")
        shown = all_samples[:: max(1, len(all_samples) // 14)]
        shown += [] if shown[-1] is all_samples[-1] else [all_samples[-1]]
        print("  t(s)  " + "  ".join(f"{x[0]:5.0f}" for x in shown) + "   (t < 0: ramp-up)")
        print("  MiB   " + "  ".join(f"{x[1] / 2**20:5.0f}" for x in shown))
    else:
        print("\nserver RSS: unknown (no server pid: give --pid)")

    bars = {"no failed requests": not failed and not stuck,
            "no files left beyond the app's bounded output folder and Gradio's cache":
                (args.url or not strays) and (settle == 0 or (out_folders <= bound and not probe_error)),
            f"memory growth over the last half < {MAX_GROWTH_MB} MB": growth_ok}
    print()
    for bar, ok in bars.items():
        print(f"{'PASS' if ok else 'FAIL'}: {bar}")
    shutil.rmtree(work / "downloads", ignore_errors=True)  # the clients' copies of the results
    if all(bars.values()):
        shutil.rmtree(work, ignore_errors=True)
        return 0
    print(f"(kept for a look: {work}{', with the server log app.log' if not args.url else ''})")
    return 1


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
