"""The app: composition only. Each tab lives in demos/; run `python app.py`."""
from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from demos import image_explainer
from demos import live, sound
from demos import digits, sensitivity, training
from demos.common import GRADIO_CACHE_CLEANUP
from demos.stream_chunks import StreamChunks
from models.limits import LIMITS

TITLE = "Explainable audio & image classification lab"
CSS_PATH = Path(__file__).parent / "assets" / "style.css"


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=GRADIO_CACHE_CLEANUP) as demo:
        gr.Markdown(f"# {TITLE}\nWhat our models predict, and why: top-k labels and class activation maps.")
        with gr.Tabs() as tabs:
            image_explainer.build()
            sound_tab = sound.build()
            live_tab = live.build()
            sensitivity.build()
            digits.build()
            training.build()
        # the Live tab's recording, sent to the Sound tab's full analysis (its upload starts it)
        live_tab.send.click(lambda path: (path, gr.Tabs(selected="sound")), live_tab.recording,
                            [sound_tab.audio, tabs], api_name=False)
    return demo


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core); the request
    threads' freed tensors then stay spread over many arenas and the resident memory climbs under
    concurrent load (benchmarks/soak.py). A few shared arenas keep it flat. No-op off glibc."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def main() -> None:
    limit_malloc_arenas()
    if LIMITS.torch_threads:  # e.g. 1 per worker on a shared CPU, instead of oversubscribing
        import torch
        torch.set_num_threads(LIMITS.torch_threads)
    if os.environ.get("SPACE_ID"):  # a Hugging Face Space fetches the AudioSet base at start-up
        from models.errors import ModelUnavailable
        from models.pretrained import fetch
        try:
            fetch()
        except ModelUnavailable as exc:
            print(f"AudioSet models unavailable: {exc}")
    demo = build_app()
    demo.queue(default_concurrency_limit=LIMITS.queue_concurrency, max_size=LIMITS.queue_size)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
        css_paths=[CSS_PATH] if CSS_PATH.exists() else None,
        show_error=True,
        max_file_size=LIMITS.bytes(max(LIMITS.image_upload_mb, LIMITS.audio_upload_mb)),
        app_kwargs={"middleware": [Middleware(StreamChunks)]},  # the microphone's 0.5 s chunks (Live tab)
    )


if __name__ == "__main__":
    main()
