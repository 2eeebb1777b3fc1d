"""Live listening: a stream of microphone chunks classified as it arrives (no Gradio here).

    live = LiveListener(load_predictor("audioset"), hop_seconds=1.0)
    for rate, chunk in microphone:                  # any rate, int16 or float, mono or not
        frame = live.push(rate, chunk)              # None until a hop's worth of sound arrived
        if frame: show(frame.probs, frame.image, live.timeline)

Every hop the last window of the model's clip length goes through the model once: its
probabilities, and the CAM of its top class from the same forward pass. What is kept is
bounded: the last `history_seconds` of sound (the scrolling spectrogram), the timeline's
last MAX_TIMELINE_ROWS rows, and, on disk only, the recording so far (a 16-bit WAV at the
model's rate) for download and the normal analysis.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch.nn.functional as F

from .audio_windows import prepare
from .cam import colormap_lut

HISTORY_SECONDS = 10.0     # the scrolling spectrogram's span
DEFAULT_HOP_SECONDS = 1.0
MIN_HOP_SECONDS = 0.25
MAX_TIMELINE_ROWS = 600    # 10 minutes at 1 s hops; older rows go first
IMAGE_ROW_REPEAT = 2       # each mel band drawn this many pixels high (128 bands -> 256 px)
MAX_RECORDING_SECONDS = 600.0  # beyond this the WAV on disk stops growing (listening goes on)


@dataclass
class LiveFrame:
    """One hop's result."""
    probs: dict[str, float]  # top-k of the current window
    target: str              # its top class, the one the CAM is for
    image: np.ndarray        # (H, W, 3) uint8: the last history_seconds' log-mel, CAM over the window
    at: float                # seconds of sound heard when the window ended
    work_ms: float           # model + CAM + spectrogram image, this hop
    skipped: int = 0         # hops skipped so far to keep up (the work took longer than the hop)


@dataclass
class LiveListener:
    predictor: object
    hop_seconds: float = DEFAULT_HOP_SECONDS
    history_seconds: float = HISTORY_SECONDS
    method: str = "GradCAM"
    top_k: int = 5
    recording_path: str | Path | None = None
    timeline: list[dict] = field(default_factory=list)
    heard_seconds: float = 0.0   # sound received (at the model's rate)
    skipped: int = 0             # hops not analysed to keep up
    received_chunks: int = 0
    background: bool = True      # analyse in a thread of its own (see push)
    runner: object = None        # runner(fn, *args) runs an analysis (a Space's GPU wrapper); None: fn(*args)
    error: str | None = None     # the last analysis' failure, if any
    work_ms: list[float] = field(default_factory=list)

    def __post_init__(self):
        spec = self.predictor.spec
        self.rate = int(spec.sample_rate)
        self.hop_seconds = max(float(self.hop_seconds), MIN_HOP_SECONDS)
        keep = max(self.history_seconds, spec.clip_seconds)
        self._keep = int(round(keep * self.rate))
        self._buffer = np.zeros(0, np.float32)
        self._since_hop = 0          # samples received since the last analysis
        self._resampler, self._in_rate = None, None
        self._wav = None
        self._wav_samples = 0
        self._worker: threading.Thread | None = None
        self._ready: LiveFrame | None = None
        self._lock = threading.Lock()
        if self.recording_path is not None:
            import soundfile as sf
            self._wav = sf.SoundFile(str(self.recording_path), "w", samplerate=self.rate, channels=1, subtype="PCM_16")

    # --- sound in

    def _to_model_rate(self, rate: int, chunk: np.ndarray) -> np.ndarray:
        y = np.asarray(chunk)
        if np.issubdtype(y.dtype, np.integer):  # PCM: full scale -> 1.0
            y = y.astype(np.float32) / float(np.iinfo(y.dtype).max + 1)
        if y.ndim == 2:  # (samples, channels), as Gradio gives it
            y = y.mean(axis=1)
        y = np.nan_to_num(y.astype(np.float32, copy=False))
        if int(rate) == self.rate:
            return y
        if self._resampler is None or self._in_rate != int(rate):
            import soxr  # a streaming resampler: no clicks at chunk borders
            self._resampler, self._in_rate = soxr.ResampleStream(int(rate), self.rate, 1, dtype="float32"), int(rate)
        return self._resampler.resample_chunk(y)

    def feed(self, rate: int, chunk: np.ndarray) -> None:
        """Add a chunk of sound: to the rolling buffer and to the recording on disk."""
        if rate is None or int(rate) <= 0:
            raise ValueError(f"a chunk needs a positive sample rate, got {rate}")
        y = self._to_model_rate(rate, chunk)
        self.received_chunks += 1
        self.heard_seconds += len(y) / self.rate
        self._buffer = np.concatenate([self._buffer, y])[-self._keep:]
        self._since_hop += len(y)
        if self._wav is not None and self._wav_samples < MAX_RECORDING_SECONDS * self.rate:
            self._wav.write(np.clip(y, -1.0, 1.0))
            self._wav.flush()
            self._wav_samples += len(y)

    def due(self) -> bool:
        return self._since_hop >= self.hop_seconds * self.rate

    def push(self, rate: int, chunk: np.ndarray) -> LiveFrame | None:
        """feed(), start an analysis when a hop is due, and return a finished analysis not yet
        returned (else None). With `background` the analysis runs in a thread of its own, so the
        chunks keep flowing meanwhile; a hop that falls due while the previous analysis still runs
        is skipped (counted), not queued, so what is shown never trails the sound by more than a hop."""
        self.feed(rate, chunk)
        if self.due():
            hop = int(round(self.hop_seconds * self.rate))
            self._since_hop = (self._since_hop - hop) % hop  # the next hop counts from this one's end
            if self._worker is not None and self._worker.is_alive():
                self.skipped += 1
            else:
                args = (self._analyze, self.window(), self._history(), self.heard_seconds)
                run = self.runner or (lambda fn, *rest: fn(*rest))
                if self.background:
                    self._worker = threading.Thread(target=run, args=args, daemon=True)
                    self._worker.start()
                else:
                    run(*args)
        return self.take()

    def take(self) -> LiveFrame | None:
        with self._lock:
            frame, self._ready = self._ready, None
        return frame

    def wait(self, timeout: float | None = None) -> LiveFrame | None:
        """The analysis under way, finished (tests, benchmarks, the end of a stream)."""
        if self._worker is not None:
            self._worker.join(timeout)
        return self.take()

    def timeline_rows(self) -> list[dict]:
        with self._lock:
            return list(self.timeline)

    # --- analysis

    def window(self) -> np.ndarray:
        """The last clip of the model's length (zero-padded at the start until that much was heard)."""
        spec = self.predictor.spec
        y = prepare(self._buffer[-spec.clip_samples:], spec)
        return np.pad(y, (spec.clip_samples - len(y), 0)) if len(y) < spec.clip_samples else y[-spec.clip_samples:]

    def _history(self) -> np.ndarray:
        n = int(round(self.history_seconds * self.rate))
        shown = self._buffer[-n:]
        return np.pad(shown, (n - len(shown), 0))

    def analyze(self) -> LiveFrame:
        """The current window analysed now, in this thread."""
        self._since_hop = 0
        self._analyze(self.window(), self._history(), self.heard_seconds)
        return self.take()

    def _analyze(self, window: np.ndarray, history: np.ndarray, at: float) -> None:
        start = time.perf_counter()
        p, spec = self.predictor, self.predictor.spec
        try:
            probs_w, cams, t = p._window_cams(window[None], self.method, None)
            probs = probs_w[0]
            cam = F.interpolate(cams[:1, None], size=(spec.n_mels, spec.frames), mode="bilinear",
                                align_corners=False)[0, 0].clamp(min=0).cpu().numpy()
            if cam.max() > 0:
                cam = cam / cam.max()
            image = render(p.features(history), cam)
        except Exception as exc:  # shown by the next push's caller, not lost in the thread
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
            return
        label, prob = p.labels[t], float(probs[t])
        frame = LiveFrame(probs=p._topk(probs, self.top_k), target=label, image=image, at=at,
                          work_ms=(time.perf_counter() - start) * 1000, skipped=self.skipped)
        with self._lock:
            self.timeline.append({"start": max(0.0, at - self.hop_seconds), "end": at, "label": label, "prob": prob})
            del self.timeline[:-MAX_TIMELINE_ROWS]
            self._ready = frame
            self.work_ms.append(frame.work_ms)
            del self.work_ms[:-MAX_TIMELINE_ROWS]

    def close(self) -> str | None:
        """Stop recording; the WAV's path (None when nothing was recorded)."""
        if self._worker is not None:
            self._worker.join(5.0)
        if self._wav is None:
            return None
        self._wav.close()
        self._wav = None
        return str(self.recording_path) if self._wav_samples else None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def render(logmel: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """(n_mels, frames) log-mel and a CAM of the last cam.shape[1] frames -> an RGB image, low
    frequencies at the bottom: the spectrogram in grey, the CAM in colour over the window, its
    opacity growing with the CAM (as the Sound tab's figure), a white line where the window starts."""
    lo, hi = np.percentile(logmel, 1), logmel.max()
    level = np.clip((logmel - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = colormap_lut("gray")[(level * 255).astype(np.uint8)]
    n = min(cam.shape[1], rgb.shape[1])
    heat = np.clip(np.nan_to_num(cam[:, -n:]), 0, 1)
    alpha = (0.15 + 0.65 * heat)[..., None]
    rgb[:, -n:] = rgb[:, -n:] * (1 - alpha) + colormap_lut("jet")[(heat * 255).astype(np.uint8)] * alpha
    if n < rgb.shape[1]:
        rgb[:, -n] = 255.0
    image = rgb[::-1].astype(np.uint8)
    return np.repeat(image, IMAGE_ROW_REPEAT, axis=0)


# --- the timeline, drawn with PIL: a matplotlib figure cost 100-160 ms per hop here, this ~3 ms

TIMELINE_WIDTH = 1000
ROW_HEIGHT = 26
LABEL_WIDTH = 210
MAX_LABEL_ROWS = 10  # the labels met most recently; older ones leave the plot (the segments keep them)


def segments(timeline: list[dict], gap: float = 0.0) -> list[dict]:
    """Consecutive rows with the same label as one segment: label, start, end, mean prob."""
    out: list[dict] = []
    for row in timeline:
        last = out[-1] if out else None
        if last and last["label"] == row["label"] and row["start"] <= last["end"] + gap + 1e-6:
            last["end"], last["n"], last["sum"] = row["end"], last["n"] + 1, last["sum"] + row["prob"]
        else:
            out.append({"label": row["label"], "start": row["start"], "end": row["end"], "n": 1, "sum": row["prob"]})
    return [{"label": s["label"], "start": s["start"], "end": s["end"], "prob": s["sum"] / s["n"]} for s in out]


def render_timeline(timeline: list[dict], duration: float, width: int = TIMELINE_WIDTH) -> np.ndarray:
    """The top label of each hop over time (as the Sound tab's timeline for long recordings): a row
    per label, a bar per hop coloured by its probability (viridis), seconds along the bottom."""
    from PIL import Image, ImageDraw, ImageFont
    labels = list(dict.fromkeys(r["label"] for r in reversed(timeline)))[:MAX_LABEL_ROWS][::-1]
    labels = sorted(labels, key=lambda name: next(i for i, r in enumerate(timeline) if r["label"] == name))
    height = 30 + ROW_HEIGHT * max(1, len(labels))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    span = max(duration, 1e-3)
    plot_w = width - LABEL_WIDTH - 10

    def x_of(t: float) -> int:
        return LABEL_WIDTH + int(round(min(max(t, 0.0), span) / span * plot_w))

    row_of = {name: i for i, name in enumerate(labels)}
    for i, name in enumerate(labels):
        y = 4 + i * ROW_HEIGHT
        draw.text((LABEL_WIDTH - 8, y + ROW_HEIGHT / 2), name[:30], fill="black", font=font, anchor="rm")
        draw.line([(LABEL_WIDTH, y + ROW_HEIGHT - 1), (width - 10, y + ROW_HEIGHT - 1)], fill=(230, 230, 230))
    for r in timeline:
        if r["label"] not in row_of:
            continue
        y = 4 + row_of[r["label"]] * ROW_HEIGHT
        colour = tuple(int(c) for c in colormap_lut("viridis")[int(np.clip(0.15 + 0.75 * r["prob"], 0, 1) * 255)])
        draw.rectangle([x_of(r["start"]), y + 4, max(x_of(r["end"]) - 1, x_of(r["start"])), y + ROW_HEIGHT - 5],
                       fill=colour)
    axis_y = 4 + len(labels) * ROW_HEIGHT
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if span / s <= 10)
    for k in range(int(span // step) + 1):
        x = x_of(k * step)
        draw.line([(x, axis_y), (x, axis_y + 4)], fill="black")
        draw.text((x, axis_y + 6), f"{k * step:g} s", fill="black", font=font, anchor="mt")
    return np.asarray(image)
