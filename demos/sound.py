"""Sound tab: upload or record a sound, pick a model, a CAM method and a target class; see
the top-5, the log-mel spectrogram with its CAM (seconds x Hz), "what the model heard"
(the clip re-synthesised from the regions the CAM highlights) beside the original, and for
long recordings the top label per window."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np

from models import artifacts as A
from models.device import on_gpu
from models import load_predictor, model_ids, parse_model_id
from models.audio_plots import spectrogram_figure, timeline_figure
from models.audio_predictor import AUDIO_DEFAULT_METHOD, AUDIO_METHODS
from models.cam import describe_layers
from models.errors import ModelUnavailable
from models.limits import LIMITS

from . import faithfulness_panel
from .common import PREDICTED, example_items, output_folder, user_errors
from .widgets import SafeAudio, available, target_choices, untrained_card

# A long recording with a small hop could ask for thousands of windows; the hop grows so
# that at most this many are explained (a 10-minute file at 5 s windows is 120).
MAX_WINDOWS = LIMITS.sound_windows
DEFAULT_CLIP_SECONDS = 5.0  # hop slider before a model says its window (ESC-50's clip length)
MIN_HOP_SECONDS = 0.25
# The slider's range is fixed (Gradio checks API inputs against the maximum it was built
# with); a hop above the model's window is used as the window (see effective_hop).
MAX_HOP_SECONDS = 10.0


# --- model choices and card


def model_choices() -> list[str]:
    return model_ids("audio")


def clip_seconds(model_id: str) -> float | None:
    """The model's window length, or None when its checkpoint is missing or unreadable."""
    if not available(model_id):
        return None
    try:
        return float(load_predictor(model_id).spec.clip_seconds)
    except ModelUnavailable:
        return None


def describe_model(model_id: str) -> str:
    """Model card: the train command when the checkpoint is missing, else what it eats and scores."""
    if not available(model_id):
        return untrained_card(model_id)
    task, entry = parse_model_id(model_id)
    try:
        p = load_predictor(model_id)
    except ModelUnavailable as exc:
        return f"**{model_id}**: {exc}"
    s = p.spec
    if not entry.from_checkpoint:
        score = "pretrained as released, not trained here"
    else:
        score = A.test_score(A.metrics(p.card)) or "no test metrics in the checkpoint"
    if p.temperature != 1.0:  # training.calibrate
        score += f"; probabilities calibrated (temperature {p.temperature:.2f}, fitted on validation data)"
    outputs = "independent probabilities (several classes can be present)" if p.multilabel else "classes"
    lines = [f"**{model_id}** ({task.title}): {entry.description or entry.arch}",
             f"Input: {s.clip_seconds:g} s windows at {s.sample_rate} Hz, {s.n_mels} mel bands "
             f"(n_fft {s.n_fft}, hop {s.hop_length}); {len(p.labels)} {outputs}; {score}.",
             f"{describe_layers(entry.cam_layer)}." + (f" Train it again with `{entry.train_command}`"
                                                   if entry.train_command else "")]
    if entry.arch == "audio-mn":
        from models.pretrained import MN04
        lines.append(f"Built on {MN04.credit}.")
    return "  \n".join(lines)


@user_errors
def on_model_change(model_id: str):
    """Target classes, card, and the hop slider set to the new model's window (no overlap)."""
    clip = clip_seconds(model_id)
    hop = gr.update(value=clip) if clip else gr.skip()
    return gr.update(choices=target_choices(model_id), value=PREDICTED), describe_model(model_id), hop


# --- the analysis


def effective_hop(duration: float, clip: float, hop: float | None) -> float:
    """The hop used: the clip length when none is given, never more (no gaps between
    windows), and large enough to keep at most MAX_WINDOWS windows."""
    hop = clip if not hop or hop <= 0 else min(float(hop), clip)
    hop = max(hop, min(MIN_HOP_SECONDS, clip))
    if duration > clip:
        hop = max(hop, (duration - clip) / (MAX_WINDOWS - 1))
    return hop


def describe_windows(starts: list[float], clip: float, hop: float) -> str:
    """The windows analysed, for the info line; says when the last one was moved back to end
    with the recording, or which part a single window is of a recording a little longer
    (its middle, as training cut its clips; models.audio_windows.window_starts)."""
    if len(starts) == 1:
        text = f"one {clip:g} s window"
        # a hair over the window (under 1 ms, a resampled file) is not worth a word
        return text + (f", the middle {starts[0]:.2f}-{starts[0] + clip:.2f} s" if starts[0] > 1e-3 else "")
    text = f"{len(starts)} windows of {clip:g} s every {hop:g} s"
    # a moved window is off by more than 10 ms (WINDOW_SLACK_SECONDS); a hop rounded to samples by under 1 ms
    if abs(starts[-1] - starts[-2] - hop) > 1e-3:
        text += f", the last one from {starts[-1]:.2f} s to the recording's end"
    return text


def _wav(y: np.ndarray, sample_rate: int, folder: Path, name: str) -> str:
    """16-bit WAV any browser plays, at the waveform's own scale (no peak normalisation, so
    the original and what the model heard compare in loudness)."""
    import soundfile as sf
    path = folder / name
    sf.write(path, np.clip(np.nan_to_num(y), -1.0, 1.0), sample_rate, subtype="PCM_16")
    return str(path)


@user_errors
@on_gpu  # ZeroGPU Spaces: a GPU for this call; a no-op elsewhere
def analyze_sound(audio_path, model_id: str, method: str = AUDIO_DEFAULT_METHOD, target: str = PREDICTED,
                  hop_seconds: float | None = None):
    """The tab's main action; also the API endpoint /analyze_sound. Returns the top-5, the
    spectrogram + CAM figure, what the model heard, the model's input, the timeline, the info line."""
    if audio_path is None:
        raise gr.Error("Upload or record a sound (or pick an example) first.", print_exception=False)
    predictor = load_predictor(model_id)
    if predictor.modality != "audio":
        raise gr.Error(f"{model_id} is not a sound model; choose one of {model_choices()}.", print_exception=False)
    start = time.perf_counter()
    spec = predictor.spec
    loaded = predictor.load_report(audio_path)  # loaded once: the hop depends on the duration
    y = loaded.waveform
    duration = len(y) / spec.sample_rate
    hop = effective_hop(duration, spec.clip_seconds, hop_seconds)
    result = predictor.analyze(y, method=method, target=None if target in (None, "", PREDICTED) else target,
                               hop_seconds=hop)
    figure = spectrogram_figure(result.logmel, result.heatmap, result.times, result.freqs, result.target, method,
                                unit=spec.log_unit)
    many = len(result.timeline) > 1
    top1, top1_prob = next(iter(result.probs.items()))
    timeline = (gr.update(value=timeline_figure(result.timeline, duration, top1, top1_prob), visible=True) if many
                else gr.update(value=None, visible=False))
    elapsed = time.perf_counter() - start
    folder = output_folder("sound-")
    stem = Path(str(audio_path)).stem[:60] or "sound"
    heard = _wav(result.heard, spec.sample_rate, folder, f"{stem}-heard-{method.split()[0]}.wav")
    original = _wav(result.waveform, spec.sample_rate, folder, f"{stem}-model-input.wav")
    energy = float(np.sum(result.heard ** 2) / max(np.sum(result.waveform ** 2), 1e-12))
    windows = describe_windows([w["start"] for w in result.timeline], spec.clip_seconds, hop)
    info = (f"**{method}** for class **{result.target}** (p = {result.target_prob:.3f}) on `{predictor.model_id}` - "
            f"{duration:.2f} s at {spec.sample_rate} Hz, {windows}; what the model heard keeps {energy:.0%} of the "
            f"energy - {elapsed * 1000:.0f} ms on {predictor.device.type}")
    if hop_seconds and hop > min(float(hop_seconds), spec.clip_seconds) + 1e-9:
        info += f"  \nHop raised to {hop:.2f} s to explain at most {MAX_WINDOWS} windows."
    # what was analysed, when it is not simply the recording (a file read in part, clipping)
    info = "".join(f"\u26a0\ufe0f {note}  \n" for note in loaded.notes) + info
    if result.silent:
        warning = "The recording is silent (peak below -60 dBFS): the prediction and its CAM mean little."
        gr.Warning(warning)
        info = f"\u26a0\ufe0f **{warning}**  \n" + info
    return result.probs, figure, heard, original, timeline, info


def auto_analyze(audio_path, model_id, method, target, hop_seconds):
    """On upload, recording or example click; clearing the sound changes nothing else."""
    if audio_path is None:
        return (gr.skip(),) * 6
    return analyze_sound(audio_path, model_id, method, target, hop_seconds)


# --- the tab


def example_rows(choices: list[str], fallback: str) -> tuple[list[list[str]], list[str]]:
    """The Sound tab's examples as (rows of [recording, model id, target], labels): each example
    with its task's default model when `choices` offers it, else `fallback`."""
    rows, labels = [], []
    for item in example_items("sound"):
        try:
            task, entry = parse_model_id(item.get("model") or "")
            model_id = f"{task.id}:{entry.name}"
        except KeyError:  # a task this app does not have
            model_id = fallback
        rows.append([item["path"], model_id if model_id in choices else fallback, PREDICTED])
        labels.append(item["label"])
    return rows, labels


def build() -> SimpleNamespace:
    """The tab; returns its sound input (the Live tab sends its recording there)."""
    choices = model_choices()
    first = next((m for m in choices if available(m)), choices[0])  # a trained model when there is one
    clip = clip_seconds(first) or DEFAULT_CLIP_SECONDS
    with gr.Tab("Sound", id="sound"):
        gr.Markdown("Upload or record a sound, choose a model and a CAM method, and see which times and "
                    "frequencies the network listens to - and hear only those.")
        with gr.Row():
            with gr.Column(scale=1):
                audio = SafeAudio(sources=["upload", "microphone"], type="filepath", label="Sound",
                                  buttons=["download"], elem_id="sound-input")
                model = gr.Dropdown(choices, value=first, label="Model", elem_id="sound-model")
                method = gr.Dropdown(AUDIO_METHODS, value=AUDIO_DEFAULT_METHOD, label="CAM method",
                                     info="GradCAM: maps that cover the sound; LayerCAM: a few sharp spots")
                target = gr.Dropdown(target_choices(first), value=PREDICTED, label="Target class",
                                     filterable=True, allow_custom_value=True, info="Type to search the class names.")
                hop = gr.Slider(MIN_HOP_SECONDS, MAX_HOP_SECONDS, value=clip, step=0.25, label="Window hop (s)",
                                info="For recordings longer than the model's window: a window starts every hop "
                                     "seconds. The window length (default) means no overlap; more is used as it.")
                run = gr.Button("Analyze", variant="primary")
                rows, labels = example_rows(choices, first)
                if rows:
                    # a click loads the recording and the model it is for (an instrument recording
                    # goes to the instruments model, not AudioSet's), with the predicted class as target
                    gr.Examples(rows, inputs=[audio, model, target], example_labels=labels,
                                label="Examples (real recordings: see assets/examples/ATTRIBUTION.md)")
            with gr.Column(scale=2):
                info = gr.Markdown()
                with gr.Row():
                    top5 = gr.Label(num_top_classes=5, label="Top-5 predictions")
                    with gr.Column():
                        original = gr.Audio(label="Model input (mono, model's sample rate)", type="filepath",
                                            interactive=False, buttons=["download"])
                        heard = gr.Audio(label="What the model heard (CAM-masked re-synthesis)", type="filepath",
                                         interactive=False, buttons=["download"], elem_id="sound-heard")
                spectrogram = gr.Plot(label="Log-mel spectrogram and CAM", format="png", show_label=False,
                                      elem_id="sound-spectrogram")
                timeline = gr.Plot(label="Top label per window", format="png", visible=False, show_label=False)
                card = gr.Markdown(describe_model(first))
                faithfulness_panel.build(audio, model, method, target, modality="audio")

        inputs = [audio, model, method, target, hop]
        outputs = [top5, spectrogram, heard, original, timeline, info]
        run.click(analyze_sound, inputs, outputs, api_name="analyze_sound")
        audio.change(auto_analyze, inputs, outputs, api_name=False)
        model.change(on_model_change, model, [target, card, hop], api_name=False)
    return SimpleNamespace(audio=audio)
