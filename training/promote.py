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
from pathlib import Path

import torch

from models import artifacts as A

from models.errors import cli_main

from .common import ROOT, output_path, public_config
from .config import ConfigError, load_config, resolve_stored
from .model_card import save_in_place

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
    if A.metrics(ckpt).get("complete") is not True:
        raise ConfigError(f"{checkpoint} is from a run that did not finish (metrics.complete is not true)")
    if A.metrics(ckpt).get("test_accuracy") is None:
        raise ConfigError(f"{checkpoint} was never tested (a run without a test split cannot be served)")
    strip = lambda c: {k: v for k, v in public_config(c).items() if k not in IGNORED}  # noqa: E731
    # the run's config with the schema's defaults filled in, as the file's are
    trained = resolve_stored(ckpt.get(A.CONFIG), str(checkpoint))
    diff = differences(strip(trained), strip(cfg))
    if diff:
        raise ConfigError(f"{config} does not say what {checkpoint} was trained with: " + "; ".join(diff))
    try:
        shown = Path(config).resolve().relative_to(ROOT)
    except ValueError:
        shown = Path(config)
    ckpt[A.CONFIG] = public_config(cfg)
    ckpt[A.REPRODUCE] = f"python -m training.train --config {shlex.quote(str(shown))}"
    ckpt["promoted_from"] = str(checkpoint)
    dest = output_path(cfg)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_in_place(ckpt, dest)
    return dest


@cli_main(OSError, RuntimeError, EOFError, pickle.UnpicklingError)
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the config file that now holds the run's settings")
    parser.add_argument("--checkpoint", required=True, help="the trial run's checkpoint")
    args = parser.parse_args(argv)
    dest = promote(args.config, args.checkpoint)
    print(f"promoted {args.checkpoint} -> {dest} ({dest.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
