"""Live tab: the microphone classified as it streams. Every hop: the top-k of the last window,
a scrolling log-mel spectrogram of the last 10 s with the CAM of the current top class, and a
timeline of the top label that grows as it listens. The recording so far can be downloaded
and sent to the Sound tab's full analysis. The work is models.live's; this wires it to widgets."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace

import gradio as gr

from models import load_predictor, model_ids
from models.audio_predictor import AUDIO_DEFAULT_METHOD, AUDIO_METHODS
from models.device import on_gpu
from models.live import (DEFAULT_HOP_SECONDS, HISTORY_SECONDS, MIN_HOP_SECONDS, LiveListener, render_timeline,
                         segments)

from .common import output_folder, user_errors
from .stream_chunks import CHUNK_SECONDS  # the browser's chunks (the app serves the widget that keeps to it)

DEFAULT_MODEL = "audioset"
MAX_HOP_SECONDS = 2.0
LISTEN_LIMIT_SECONDS = 600  # one listening session; Record again to go on
NO_MICROPHONE = ("No microphone (the widget says \"No microphone found\")? Allow it in the address bar or plug "
                 "one in, or upload a recording in the Sound tab instead.")


@dataclass
class Session:
    """One visitor's listening: the listener (its window, timeline, recording) and its folder."""
    listener: LiveListener
    folder: str
    model_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> str | None:
        with self.lock:
            return self.listener.close()


def _free(session) -> None:
    """gr.State's delete callback: the visitor left (or the state expired): close the recording."""
    if isinstance(session, Session):
        session.close()


def model_choices() -> list[str]:
    return model_ids("audio")


def _new_session(model_id: str, hop: float, method: str) -> Session:
    predictor = load_predictor(model_id)
    if predictor.modality != "audio":
        raise gr.Error(f"{model_id} is not a sound model; choose one of {model_choices()}.", print_exception=False)
    folder = output_folder("live-")
    listener = LiveListener(predictor, hop_seconds=float(hop or DEFAULT_HOP_SECONDS), method=method,
                            recording_path=folder / "live-recording.wav", runner=run_analysis)
    return Session(listener, str(folder), model_id)


def segment_text(timeline: list[dict], hop: float) -> str:
    """The timeline in words: each run of one top label with its times, in order."""
    runs = segments(timeline, gap=hop)
    if not runs:
        return ""
    return "**Heard so far:** " + " \u2192 ".join(
        f"{s['label']} ({s['start']:.1f}-{s['end']:.1f} s)" for s in runs[-12:])


def status_text(session: Session, frame) -> str:
    live = session.listener
    text = (f"Listening with `{session.model_id}`: {live.heard_seconds:.1f} s heard; the last window "
            f"({live.predictor.spec.clip_seconds:g} s) took {frame.work_ms:.0f} ms on {live.predictor.device.type} "
            f"(hop {live.hop_seconds:g} s)")
    if live.skipped:
        text += f"  \n\u26a0\ufe0f {live.skipped} hop(s) skipped to keep up: the work took longer than the hop."
    return text


@on_gpu  # ZeroGPU Spaces: a GPU for each analysis (not for each chunk); a no-op elsewhere
def run_analysis(fn, *args):
    return fn(*args)


@user_errors
def on_chunk(chunk, session, model_id: str, hop: float, method: str):
    """A microphone chunk: feed it; when a hop is due, the new top-k, spectrogram, timeline."""
    skip = (gr.skip(),) * 5
    if chunk is None:
        return (*skip, session)
    rate, y = chunk
    if not isinstance(session, Session) or session.model_id != model_id:
        _free(session)
        session = _new_session(model_id, hop, method)
    with session.lock:
        live = session.listener
        live.method = method if method in AUDIO_METHODS else AUDIO_DEFAULT_METHOD
        live.hop_seconds = max(float(hop or DEFAULT_HOP_SECONDS), MIN_HOP_SECONDS)  # settable while listening
        frame = live.push(rate, y)
        try:  # output folders are pruned by age: this one is in use while the visitor listens
            os.utime(session.folder)
        except OSError:
            pass
        if live.error:  # the analysis thread failed: say so once, keep listening
            error, live.error = live.error, None
            raise gr.Error(f"Live analysis failed ({error}); still listening.", print_exception=False)
        if frame is None:
            return (*skip, session)
        rows = live.timeline_rows()
        return (frame.probs, frame.image, render_timeline(rows, frame.at), segment_text(rows, live.hop_seconds),
                status_text(session, frame), session)


def on_start(session):
    """Record pressed: a new listening (the previous one's recording stays downloadable)."""
    _free(session)
    return None, gr.update(value=None, visible=False), gr.update(interactive=False)


def on_stop(session):
    """Stop pressed: the recording so far, to download or analyse."""
    path = session.close() if isinstance(session, Session) else None
    if path is None:
        return session, gr.update(value=None, visible=False), gr.update(interactive=False)
    return session, gr.update(value=path, visible=True), gr.update(interactive=True)


def build() -> SimpleNamespace:
    """The tab; returns what app.py wires to other tabs: the recording and its "analyse" button."""
    choices = model_choices()
    with gr.Tab("Live", id="live"):
        gr.Markdown("Press **Record** and the model listens as you go: every hop it classifies the last window, "
                    "shows where in the spectrogram it looked (the CAM of its top class) and adds to the timeline. "
                    "Allow the microphone when the browser asks.  \n" + NO_MICROPHONE, elem_id="live-intro")
        with gr.Row():
            with gr.Column(scale=1):
                mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Microphone",
                               elem_id="live-mic")
                model = gr.Dropdown(choices, value=DEFAULT_MODEL if DEFAULT_MODEL in choices else choices[0], elem_id="live-model",
                                    label="Model", info="audioset: 527 everyday sounds; the others: their task's "
                                                        "classes")
                hop = gr.Slider(MIN_HOP_SECONDS * 2, MAX_HOP_SECONDS, value=DEFAULT_HOP_SECONDS, step=0.5,
                                label="Hop (s)", info="How often the model answers")
                method = gr.Dropdown(AUDIO_METHODS, value=AUDIO_DEFAULT_METHOD, label="CAM method")
                recording = gr.File(label="The recording so far (WAV)", visible=False, elem_id="live-recording")
                send = gr.Button("Analyze this recording in the Sound tab", interactive=False, elem_id="live-send")
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id="live-status")
                top = gr.Label(num_top_classes=5, label="Now")
                spectrogram = gr.Image(label=f"The last {HISTORY_SECONDS:g} s (now at the right); CAM over the "
                                             f"model's window", type="numpy", interactive=False,
                                       elem_id="live-spectrogram", buttons=[])
                timeline = gr.Image(label="Top label per hop", type="numpy", interactive=False,
                                    elem_id="live-timeline", buttons=[])
                heard = gr.Markdown(elem_id="live-segments")
        session = gr.State(None, delete_callback=_free)
        mic.stream(on_chunk, [mic, session, model, hop, method], [top, spectrogram, timeline, heard, status, session],
                   stream_every=CHUNK_SECONDS, time_limit=LISTEN_LIMIT_SECONDS,
                   api_name=False)
        mic.start_recording(on_start, session, [session, recording, send], api_name=False)
        mic.stop_recording(on_stop, session, [session, recording, send], api_name=False)
    return SimpleNamespace(recording=recording, send=send)
