"""Checkpoint I/O. A checkpoint is tensors and plain containers only, so it loads with
torch.load(weights_only=True); the architecture is rebuilt from its name and kwargs.

Its fields and the files beside it: models/artifacts.py (the one schema writers and readers share).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import torch
from torch import nn

from . import artifacts as A
from .architectures import build_model
from .errors import ModelUnavailable

FORMAT_VERSION = 1
MAX_BYTES = 10 * 1024 * 1024


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _plain(obj):
    """Reduce numpy scalars, tuples, Paths... to types the weights_only unpickler accepts."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):  # numpy scalar
        return obj.item()
    return str(obj)


def save_checkpoint(path: str | Path, model: nn.Module, *, arch: str, arch_kwargs: dict, labels: list[str],
                    preprocessing: dict, metrics: dict | None = None, history: list | dict | None = None,
                    config: dict | None = None, seed: int | None = None, half: bool = False, **extra) -> Path:
    """Write a checkpoint; `half=True` stores floating tensors as fp16 to stay under 10 MB."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    base = getattr(model, "pretrained_base", None)
    if base:  # only what training changed; the loader joins it to the (user-downloaded) base
        state, extra[A.BASE] = changed_from_base(state, base)
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    ckpt = {
        "format_version": FORMAT_VERSION,
        A.STATE_DICT: state,
        A.ARCH: arch,
        A.ARCH_KWARGS: _plain(arch_kwargs),
        A.LABELS: [str(x) for x in labels],
        A.PREPROCESSING: _plain(preprocessing),
        A.METRICS: _plain(metrics or {}),
        A.HISTORY: _plain(history or []),
        A.CONFIG: _plain(config or {}),
        A.SEED: seed,
        A.CODE_VERSION: code_version(),
        **_plain(extra),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)  # atomic: a crash mid-save never leaves a half-written checkpoint
    return path


def changed_from_base(state: dict, name: str) -> tuple[dict, dict]:
    """The tensors of `state` that differ from the pretrained base `name` (or that it lacks),
    and the base's description {name, sha256, file}."""
    from .pretrained import BASES, load_state
    base = BASES[name]
    ref = load_state(base)
    kept = {k: v for k, v in state.items()
            if k not in ref or ref[k].shape != v.shape or not torch.equal(ref[k].to(v.dtype), v)}
    return kept, {"name": base.name, "sha256": base.weights.sha256, "file": base.weights.name,
                  "stored_keys": len(kept), "base_keys": len(ref)}


def load_checkpoint(path: str | Path, train_command: str = "") -> dict:
    path = Path(path)
    if not path.is_file():
        hint = (f" Train it with: {train_command} (or set XAI_LAB_HUB_REPO to fetch it from the Hugging Face Hub)"
                if train_command else "")
        raise ModelUnavailable(f"Checkpoint {path.name} not found in {path.parent}.{hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, or one holding pickled objects
        raise ModelUnavailable(f"Checkpoint {path} cannot be loaded safely: {str(exc).splitlines()[0]}") from None


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    kwargs = dict(ckpt[A.ARCH_KWARGS])
    kwargs.pop("pretrained", None)  # the checkpoint holds the weights
    base = ckpt.get(A.BASE)
    if base:  # what training changed, joined to the pretrained base (sha256-checked)
        from .pretrained import BASES
        known = BASES.get(base.get("name"))
        if known is None or known.weights.sha256 != base.get("sha256"):
            raise ModelUnavailable(f"this checkpoint was built on {base.get('name')} (sha256 "
                                   f"{str(base.get('sha256'))[:12]}...), which this version does not know")
        kwargs["pretrained"] = True
    model = build_model(ckpt[A.ARCH], **kwargs)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt[A.STATE_DICT].items()}
    if base:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected:
            raise ModelUnavailable(f"checkpoint keys {unexpected[:3]} do not fit {ckpt[A.ARCH]}")
    else:
        model.load_state_dict(state)
    return model.eval()
