"""Figures of a sound analysis: the log-mel spectrogram with its CAM on real axes (seconds,
Hz on a mel-spaced axis), and the top label per window of a long recording.

matplotlib's object API only (no pyplot): no global state, safe in the server's threads.
"""
from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

# Frequencies labelled on the mel axis, most wanted first; a tick closer than TICK_GAP (a
# fraction of the axis) to one already placed is dropped (low ones crowd on a mel scale).
HZ_TICKS = (1000, 100, 500, 2000, 4000, 200, 8000, 16000, 50)
TICK_GAP = 0.07
FIG_WIDTH = 9.0  # inches; the Gradio plot scales it to the column


def _hz_label(f: float) -> str:
    return f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"


def _mel_axis(ax, freqs: np.ndarray) -> None:
    """The y axis counts mel bands (as the model sees them); ticks say where given Hz fall."""
    bands = np.arange(len(freqs)) + 0.5
    placed: dict[float, float] = {}
    for f in HZ_TICKS:
        if freqs[0] <= f <= freqs[-1]:
            y = float(np.interp(f, freqs, bands))
            if all(abs(y - other) >= TICK_GAP * len(freqs) for other in placed.values()):
                placed[f] = y
    ticks = sorted(placed)
    ax.set_yticks([placed[f] for f in ticks], [_hz_label(f) for f in ticks])
    ax.set_ylabel("Hz (mel scale)")


def _extent(times: np.ndarray, n_bands: int) -> tuple[float, float, float, float]:
    """Each frame is centred on its time; each band is one unit of the mel axis."""
    dt = float(times[1] - times[0]) if len(times) > 1 else 0.01
    return float(times[0]) - dt / 2, float(times[-1]) + dt / 2, 0.0, float(n_bands)


def spectrogram_figure(logmel: np.ndarray, heatmap: np.ndarray, times: np.ndarray, freqs: np.ndarray,
                       target: str = "", method: str = "CAM", unit: str = "dB") -> Figure:
    """Two panels on the same axes: the log-mel spectrogram (in `unit`: dB, or a model's own log,
    see AudioSpec.log_unit), and the CAM over it
    (colour and opacity grow with the CAM, so unimportant regions stay readable)."""
    if logmel.shape != heatmap.shape or logmel.shape != (len(freqs), len(times)):
        raise ValueError(f"logmel {logmel.shape}, heatmap {heatmap.shape}, axes ({len(freqs)}, {len(times)}) disagree")
    extent = _extent(times, len(freqs))
    # Fixed axes positions, no layout engine: constrained layout cost 200 ms per figure here.
    fig = Figure(figsize=(FIG_WIDTH, 5.6))
    top = fig.add_axes((0.075, 0.555, 0.83, 0.385))
    bottom = fig.add_axes((0.075, 0.095, 0.83, 0.385), sharex=top)
    image = top.imshow(logmel, origin="lower", aspect="auto", extent=extent, cmap="magma", interpolation="nearest")
    fig.colorbar(image, cax=fig.add_axes((0.915, 0.555, 0.014, 0.385)), label=unit)
    top.set_title("Log-mel spectrogram (what the model sees)", fontsize=10, loc="left")
    top.tick_params(labelbottom=False)
    bottom.imshow(logmel, origin="lower", aspect="auto", extent=extent, cmap="gray", interpolation="nearest")
    heat = np.clip(np.nan_to_num(heatmap), 0, 1)
    cam = bottom.imshow(heat, origin="lower", aspect="auto", extent=extent, cmap="jet", vmin=0, vmax=1,
                        alpha=0.15 + 0.65 * heat, interpolation="nearest")
    fig.colorbar(cam, cax=fig.add_axes((0.915, 0.095, 0.014, 0.385)), label="CAM")
    bottom.set_title(f"{method} for \u201c{target}\u201d over the spectrogram" if target else method,
                     fontsize=10, loc="left")
    bottom.set_xlabel("time (s)")
    for ax in (top, bottom):
        _mel_axis(ax, freqs)
    return fig


def timeline_figure(timeline: list[dict], duration: float, overall: str = "", overall_prob: float | None = None
                    ) -> Figure:
    """Top label per window: one row per label met, a bar over each window's time span,
    darker where overlapping windows agree; the overall prediction on top, in bold."""
    labels = list(dict.fromkeys(w["label"] for w in timeline))
    if overall in labels:
        labels.remove(overall)
        labels.insert(0, overall)
    row = {label: len(labels) - 1 - i for i, label in enumerate(labels)}
    height = 1.25 + 0.32 * len(labels)  # inches: fixed margins, a strip per label
    fig = Figure(figsize=(FIG_WIDTH, height))
    ax = fig.add_axes((0.17, 0.62 / height, 0.8, 1 - 1.02 / height))
    cmap = matplotlib.colormaps["viridis"]
    annotate = len(timeline) <= 24
    for w in timeline:
        start, end = w["start"], min(w["end"], max(duration, w["start"]))
        ax.broken_barh([(start, end - start)], (row[w["label"]] - 0.35, 0.7), facecolors=cmap(0.15 + 0.75 * w["prob"]),
                       alpha=0.55, edgecolor="white", linewidth=0.5)
        if annotate:
            ax.text((start + end) / 2, row[w["label"]], f"{w['prob']:.2f}", ha="center", va="center", fontsize=7,
                    color="white")
    ax.set_yticks(list(row.values()), list(row.keys()))
    for tick in ax.get_yticklabels():
        if tick.get_text() == overall:
            tick.set_fontweight("bold")
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlim(0, max(duration, 1e-3))
    ax.set_xlabel("time (s)")
    title = f"Top label per window ({len(timeline)} windows)"
    if overall:
        title += f"; overall: {overall}" + (f" (p = {overall_prob:.2f})" if overall_prob is not None else "")
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (tests, downloads)."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
