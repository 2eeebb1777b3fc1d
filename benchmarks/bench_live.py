"""Live tab speed on this machine's CPU: prints figures, asserts nothing.

    python benchmarks/bench_live.py [--model audioset] [--hop 1.0] [--chunk 0.5] [--seconds 60] [--threads N]

Feeds a recording (the bundled 15 s ESC-50 scene, looped to --seconds) to models.live in
microphone-sized chunks (0.5 s of 48 kHz int16, as the app's browser widget sends them:
demos/stream_chunks.py) and times, per hop,
the work the Live tab does: the window, the log-mel, the model with its CAM, the spectrogram
picture and the timeline picture. Display lag: how long after the hop's last chunk arrived its
pictures are ready (chunk length + that work); the tab keeps up while the work stays under the hop.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import apply_threads, bench_parser, fmt_ms  # noqa: E402

TARGET = "<= 60 ms"      # the bar for the default model's work per hop
MIC_RATE = 48000
CHUNK_SECONDS = 0.5  # demos.stream_chunks.CHUNK_SECONDS (not imported: this runs without Gradio)
RECORDING = ROOT / "assets" / "examples" / "esc50-scene-15s.ogg"


def main(argv=None) -> int:
    parser = bench_parser(__doc__, "audioset")
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chunk", type=float, default=CHUNK_SECONDS, help="seconds of sound per chunk")
    args = parser.parse_args(argv)
    import numpy as np
    import torch
    apply_threads(args)
    from models import load_predictor
    from models.audio_loading import load_audio
    from models.live import LiveListener, render_timeline

    predictor = load_predictor(args.model, device="cpu")
    y = load_audio(RECORDING, MIC_RATE)
    y = np.tile(y, int(np.ceil(args.seconds * MIC_RATE / len(y))))[: int(args.seconds * MIC_RATE)]
    pcm = np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)
    live = LiveListener(predictor, hop_seconds=args.hop, background=False)  # the work timed in this thread
    live.push(MIC_RATE, pcm[: MIC_RATE])  # warm-up: the first pass builds kernels and caches
    live = LiveListener(predictor, hop_seconds=args.hop, background=False)
    n = int(args.chunk * MIC_RATE)
    work, feed = [], []
    for i in range(0, len(pcm), n):
        start = time.perf_counter()
        frame = live.push(MIC_RATE, pcm[i: i + n])
        if frame is None:
            feed.append(time.perf_counter() - start)
            continue
        render_timeline(live.timeline_rows(), frame.at)
        work.append(time.perf_counter() - start)
    print(f"{args.model} ({predictor.model_id}): {args.seconds:g} s fed in {args.chunk:g} s chunks of "
          f"{MIC_RATE} Hz int16, hop {args.hop:g} s, window {predictor.spec.clip_seconds:g} s, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  work per hop (window + mel + model + CAM + spectrogram + timeline), {len(work)} hops: "
          f"{fmt_ms(work)}   target {TARGET}")
    print(f"  a chunk without a hop (resample + buffer + WAV): {fmt_ms(feed)}")
    lag = [args.chunk + w for w in work]
    print(f"  display lag after the sound (chunk + work): {fmt_ms(lag)}; keeps up: "
          f"{'yes' if max(work) < args.hop else 'no: hops would be skipped'} (slowest hop {max(work) * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
