"""Image explainer speed on this machine: prints figures, asserts nothing.

    python benchmarks/bench_image.py [--model imagenet] [--repeats 20]

Measures, at 224x224 input: predict p50; predict + GradCAM + overlay p50; each CAM
method's time; and the app's cold start (process start to first answer).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from app_process import free_port, stop  # noqa: E402  (not start_app: this times from process start)
from timing import fmt_ms as fmt, timed  # noqa: E402


def cold_start(image: Path) -> float:
    from gradio_client import Client, handle_file
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        Client(url, verbose=False).predict(handle_file(str(image)), "imagenet:effnet-lite0", "GradCAM",
                                           "(predicted class)", 0.5, api_name="/explain")
        return time.perf_counter() - t0
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="imagenet")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-cold-start", action="store_true")
    args = parser.parse_args()

    import torch
    from PIL import Image
    from skimage import data

    from models import load_predictor
    from models.cam import METHODS, overlay

    image = Image.fromarray(data.chelsea()).resize((224, 224))
    path = Path("/tmp/bench-cat-224.png")
    image.save(path)
    p = load_predictor(args.model)
    print(f"model {p.model_id} on {p.device}, torch threads {torch.get_num_threads()}, input 224x224")
    print(f"predict                      {fmt(timed(lambda: p.predict(image), args.repeats))}")

    def predict_cam_overlay():
        res = p.analyze(image, method="GradCAM")
        overlay(res.image, res.heatmap)

    print(f"predict + GradCAM + overlay  {fmt(timed(predict_cam_overlay, args.repeats))}")
    for method in METHODS:
        reps = args.repeats if "Score" not in method and "SCAM" not in method else max(3, args.repeats // 4)
        print(f"CAM {method:34s} {fmt(timed(lambda: p.explain(image, method=method), reps))}")
    if not args.skip_cold_start:
        print(f"app cold start to first answer  {cold_start(path):.1f} s")


if __name__ == "__main__":
    main()
