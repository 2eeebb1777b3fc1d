"""Sound tab speed on this machine's CPU: prints figures, asserts nothing.

    python benchmarks/bench_audio.py [--model esc50:cnn] [--repeats 20] [--threads N]

For a 5 s clip: predict p50; predict + spectrogram + CAM + re-synthesis (`analyze`) p50; the
same plus the tab's figures rendered to PNG; and a 60 s recording's full analyze. When the
model's checkpoint is missing, an untrained model of the same architecture and input spec
(from the config its registry entry trains with) is built in memory and the output says so:
the speed does not depend on the weights.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import fmt_ms, fmt_s  # noqa: E402

# the bars of the AudioSet-based sound models (issue: ESC-50 >= 93%...): a 5 s clip, a 60 s recording
TARGETS = {"predict": "<= 40 ms", "analyze": "<= 150 ms", "long": "<= 1 s"}
FALLBACK_CLASSES = 50  # ESC-50; only the head's size, which costs nothing


def measure(fn, repeats: int) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) per call, after one warm-up call. CPU time sums the
    threads; on a loaded machine it says what the call costs when wall time says what it got."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return wall, cpu


def untrained_predictor(model_id: str):
    """The model's architecture and input spec, random weights: from the config its registry entry trains with."""
    import torch

    from models.architectures import build_model
    from models.audio_predictor import AudioPredictor
    from models.registry import parse_model_id
    from training.config import load_config
    from training.data_common import audio_spec

    task, entry = parse_model_id(model_id)
    config = ROOT / entry.train_config
    cfg = load_config(config, list(entry.train_overrides))
    spec = audio_spec(cfg)
    kwargs = {k: v for k, v in dict(cfg["model"]).items() if k != "pretrained"}
    model = build_model(entry.arch, spec=spec.to_dict(), num_classes=FALLBACK_CLASSES, **kwargs)
    labels = [f"class-{i}" for i in range(FALLBACK_CLASSES)]
    return AudioPredictor(f"{task.id}:{entry.name}", model, labels, spec, entry.cam_layer, torch.device("cpu")), config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="esc50", help="an audio model id (models.model_ids('audio'))")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from models import load_predictor
    from models.audio_plots import figure_png, spectrogram_figure, timeline_figure
    from models.errors import ModelUnavailable

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        p = load_predictor(args.model, device="cpu")
        origin = "trained checkpoint"
    except ModelUnavailable:
        p, config = untrained_predictor(args.model)
        origin = f"NO CHECKPOINT: untrained model built in memory from {config.relative_to(ROOT)} (same speed)"
    if p.modality != "audio":
        raise SystemExit(f"{args.model} is not a sound model")
    spec = p.spec
    load = os.getloadavg()[0]
    print(f"model {p.model_id} ({origin})")
    print(f"input {spec.clip_seconds:g} s at {spec.sample_rate} Hz, {spec.n_mels} mels x {spec.frames} frames; "
          f"CPU, torch threads {torch.get_num_threads()}, {os.cpu_count()} cores, load average {load:.1f}"
          + ("  <- machine busy: figures are pessimistic" if load > 0.5 * (os.cpu_count() or 1) else ""))

    rng = np.random.default_rng(0)
    clip = (0.1 * rng.normal(size=int(5 * spec.sample_rate))).astype(np.float32)
    long = (0.1 * rng.normal(size=int(60 * spec.sample_rate))).astype(np.float32)

    def with_figures(y):
        a = p.analyze(y)
        figure_png(spectrogram_figure(a.logmel, a.heatmap, a.times, a.freqs, a.target, "GradCAM"))
        if len(a.timeline) > 1:
            figure_png(timeline_figure(a.timeline, len(y) / spec.sample_rate, a.target, a.target_prob))

    rows = [  # (what, target key, call, repeats, formatter)
        ("predict, 5 s clip", "predict", lambda: p.predict(clip), args.repeats, fmt_ms),
        ("predict + spectrogram + CAM + re-synthesis, 5 s", "analyze", lambda: p.analyze(clip), args.repeats, fmt_ms),
        ("  the same + figure rendered to PNG", None, lambda: with_figures(clip), max(3, args.repeats // 2), fmt_ms),
        ("60 s recording: full analyze", "long", lambda: p.analyze(long), max(3, args.repeats // 5), fmt_s),
        ("  the same + figures rendered to PNG", None, lambda: with_figures(long), 3, fmt_s),
    ]
    for name, key, fn, repeats, fmt in rows:
        wall, cpu = measure(fn, repeats)
        target = f"   target {TARGETS[key]}" if key else ""
        print(f"{name:50s} wall {fmt(wall)}   cpu p50 {1000 * float(np.median(cpu)):7.1f} ms{target}")


if __name__ == "__main__":
    main()
