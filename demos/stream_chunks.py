"""The streaming microphone's chunk length, as the Live tab asks for it.

Gradio 6.31's Audio widget sets `props.stream_every = 0.1` when it mounts, so a streaming microphone
sends a chunk every 0.1 s whatever the event's `stream_every` says (it takes the event's value only
now and then, depending on the order things mount). Ten requests a second per listener is more than
the queue keeps up with for two listeners at once: both streams stop after a second or two
(measured with two fake-microphone pages; at 0.5 s chunks both stream throughout). This ASGI
middleware serves the widget's script with that one assignment set to `CHUNK_SECONDS` instead; every
other request passes through untouched. If a Gradio upgrade changes the script so that the pattern
is gone, the script is served as it is and `patched()` says so (a test checks the installed one).
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

import gradio

CHUNK_SECONDS = 0.5
ASSETS = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
SCRIPT = re.compile(r"/assets/(audio-[\w-]+\.js)$")  # the Audio widget's bundle
FORCED = re.compile(r"\b(\w+)\.props\.stream_every=\.1;")  # e.g. `n.props.stream_every=.1;`
log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def patched(name: str) -> bytes | None:
    """The widget's script with the chunk length set, or None when it is not the script we know."""
    path = ASSETS / name
    if path.parent != ASSETS or not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    new, count = FORCED.subn(rf"\1.props.stream_every={CHUNK_SECONDS};", text)
    if count != 1:
        log.warning("%s: the microphone's 0.1 s chunk setting was not found; streaming uses Gradio's", name)
        return None
    return new.encode("utf-8")


class StreamChunks:
    """ASGI middleware: GET .../assets/audio-*.js answered with `patched(...)`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            match = SCRIPT.search(scope.get("path", ""))
            body = patched(match.group(1)) if match else None
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"text/javascript; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-cache")]})
                await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
                return
        await self.app(scope, receive, send)
