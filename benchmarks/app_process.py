"""The real app in a subprocess on a free loopback port: what the load and soak benchmarks and the
app tests (tests/conftest.running_app) start. Standard library only."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 300  # a loaded machine can take minutes to import torch and gradio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(log: Path, timeout: float = START_TIMEOUT, **env_extra: str) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free loopback port (env_extra: more environment for it); returns
    (process, URL) once it answers HTTP; the caller stops it (stop())."""
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1",
               GRADIO_ANALYTICS_ENABLED="False", **env_extra)
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=30)
            return proc, url
        except OSError:
            if time.time() > deadline:
                stop(proc)
                raise RuntimeError(f"app did not start in {timeout:g} s: {log.read_text()[-2000:]}") from None
            time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
