"""Promote a trial run to the checkpoint the app serves.

    python -m training.promote --config training/configs/<task>.yaml --checkpoint runs/<trial>.pt

A trial run writes elsewhere (`--set output=...`) and is often launched with `--set` overrides.
When its validation figures win, its settings go into the config file; this command then checks
that the config file, with no overrides, says exactly what the run was trained with (all keys but
`name` and `output`), that the run finished, records the plain command that reproduces it, and
writes it where the app looks, with its model card. A difference is a one-line error naming the
keys that differ (exit 2): a shipped checkpoint never claims a recipe it was not trained with.
"""
from __future__ import annotations

import argparse
import pickle
import shlex
import sys
from pathlib import Path

import torch

from .common import ROOT, output_path, public_config, save_in_place
from .config import ConfigError, load_config

IGNORED = ("name", "output")


def differences(a, b, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested configs."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += differences(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')} ({a!r} in the run, {b!r} in the config)"]


def promote(config: str | Path, checkpoint: str | Path) -> Path:
    cfg = load_config(config)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not ckpt.get("metrics", {}).get("complete", False):
        raise ConfigError(f"{checkpoint} is from a run that did not finish (metrics.complete is not true)")
    if ckpt["metrics"].get("test_accuracy") is None:
        raise ConfigError(f"{checkpoint} was never tested (a run without a test split cannot be served)")
    strip = lambda c: {k: v for k, v in public_config(c).items() if k not in IGNORED}  # noqa: E731
    diff = differences(strip(ckpt.get("config", {})), strip(cfg))
    if diff:
        raise ConfigError(f"{config} does not say what {checkpoint} was trained with: " + "; ".join(diff))
    try:
        shown = Path(config).resolve().relative_to(ROOT)
    except ValueError:
        shown = Path(config)
    ckpt["config"] = public_config(cfg)
    ckpt["reproduce"] = f"python -m training.train --config {shlex.quote(str(shown))}"
    ckpt["promoted_from"] = str(checkpoint)
    dest = output_path(cfg)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_in_place(ckpt, dest)
    return dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the config file that now holds the run's settings")
    parser.add_argument("--checkpoint", required=True, help="the trial run's checkpoint")
    args = parser.parse_args(argv)
    try:
        dest = promote(args.config, args.checkpoint)
    except (ConfigError, OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"promoted {args.checkpoint} -> {dest} ({dest.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
