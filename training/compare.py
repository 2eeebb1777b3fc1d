"""python -m training.compare --configs A.yaml B.yaml [...] --name NAME

Side-by-side table of trained models (each config's checkpoint): test accuracy, macro-F1,
parameters, file size, training time and CPU inference time per input. Used for the
spoken-digit split lesson (random vs speaker split) and model comparisons (CNN vs LSTM).
Writes comparison_NAME.json and .md beside the first config's checkpoint (the Training tab
shows every comparison_*.md of a task with its models).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from models import artifacts as A
from models.artifacts import side_file
from models.checkpoint import load_checkpoint, model_from_checkpoint

from models.errors import cli_main

from .common import artifacts_dir, output_path
from .config import load_config


def inference_ms(model: torch.nn.Module, ckpt: dict, repeats: int = 20) -> float:
    """Median CPU time of one input (batch of 1) with the input shape the model was trained on."""
    pre = ckpt["preprocessing"]
    if pre.get("kind") == "audio":
        x = torch.zeros(1, int(round(pre["clip_seconds"] * pre["sample_rate"])))
    else:
        x = torch.zeros(1, 1 if pre.get("grayscale") and pre.get("size", 224) <= 32 else 3, pre["size"], pre["size"])
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1000


def row(cfg_path: str) -> dict:
    cfg = load_config(cfg_path)
    path = output_path(cfg)
    ckpt = load_checkpoint(path, f"python -m training.train --config {cfg_path}")
    model = model_from_checkpoint(ckpt)
    m = A.metrics(ckpt)
    return {"model": f"{cfg['task']}:{cfg['name']}", "config": str(cfg_path), "split": m.get("split", ""),
            "test_accuracy": m.get("test_accuracy"), "test_macro_f1": m.get("test_macro_f1"),
            "val_accuracy": m.get("val_accuracy"), "parameters": sum(p.numel() for p in model.parameters()), "size_mb": round(path.stat().st_size / 1e6, 2),
            "train_minutes": round(A.train_minutes(ckpt), 1),
            "inference_ms": round(inference_ms(model, ckpt), 2)}


def markdown(rows: list[dict]) -> str:
    """The table; a validation-accuracy column when every model has one (the last epoch's, or
    the `evaluate` command's)."""
    val = all(r.get("val_accuracy") is not None for r in rows)
    head = ("| model | test accuracy | macro-F1 | " + ("val accuracy | " if val else "") +
            "parameters | size | training | inference (CPU, 1 input) | split |")
    lines = [head, "|---" * (8 + val) + "|"]
    lines += [f"| `{r['model']}` | {r['test_accuracy'] * 100:.2f}% | {r['test_macro_f1']:.4f} | "
              + (f"{r['val_accuracy'] * 100:.2f}% | " if val else "") + f"{r['parameters']:,} | "
              f"{r['size_mb']} MB | {r['train_minutes']} min | {r['inference_ms']} ms | {r['split']} |" for r in rows]
    return "\n".join(lines) + "\n"


@cli_main(RuntimeError)
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--name", required=True, help="file name of the table, e.g. split_study")
    args = parser.parse_args(argv)
    rows = [row(c) for c in args.configs]
    out = artifacts_dir(load_config(args.configs[0]))
    data, table = (side_file(out, args.name, kind) for kind in ("comparison_data", "comparison"))
    data.write_text(json.dumps(rows, indent=1))
    table.write_text(markdown(rows))
    print(markdown(rows) + f"wrote {data} and {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
