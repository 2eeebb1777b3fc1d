"""Pick the torch device: CUDA if available, else MPS, else CPU; DEMO_DEVICE overrides."""
from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to run on.

    `requested` (or the DEMO_DEVICE environment variable) wins when given, so a user can
    force "cpu" on a machine with a GPU, e.g. to compare timings.
    """
    name = requested or os.environ.get("DEMO_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def on_gpu(fn):
    """Hugging Face ZeroGPU: wrap an inference entry point in `spaces.GPU` (a GPU is attached
    for the call) when the `spaces` package is importable; elsewhere return fn unchanged."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)
