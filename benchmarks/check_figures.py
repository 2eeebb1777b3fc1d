"""Re-score every shipped checkpoint on its test split and compare with the figure it records.

    python benchmarks/check_figures.py [--only esc50:mn04 ...] [--data-dir DIR]

For each checkpoints/<task>/<name>.pt: the config it was trained with (stored in it) names the data
and the split; the test accuracy and macro-F1 are computed again (training.engine.evaluate, the
whole network on its inputs, as `python -m training.evaluate` does) and printed beside the stored
ones. A refactoring that changes what a model computes, or how its data are read, shows here.
Writes nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import artifacts as A  # noqa: E402
from models.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from models.errors import one_line  # noqa: E402
from models.registry import CHECKPOINT_DIR  # noqa: E402
from training.config import data_dir, resolve_stored  # noqa: E402
from training.datasets import load_task_data  # noqa: E402
from training.engine import evaluate  # noqa: E402


def rescore(path: Path, root: str | None) -> dict:
    ckpt = load_checkpoint(path)
    cfg = resolve_stored(ckpt[A.CONFIG], str(path))
    start = time.time()
    data = load_task_data(cfg, data_dir(cfg, root))
    model = model_from_checkpoint(ckpt)
    res = evaluate(model, data.test, len(data.labels), torch.device("cpu"))
    m = A.metrics(ckpt)
    return {"stored": (m.get("test_accuracy"), m.get("test_macro_f1")), "now": (res["accuracy"], res["macro_f1"]),
            "n": len(data.test), "seconds": time.time() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="model ids (task:name); default: all")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    worst = 0.0
    for path in sorted(CHECKPOINT_DIR.glob("*/*.pt")):
        model_id = f"{path.parent.name}:{path.stem}"
        if args.only and model_id not in args.only:
            continue
        try:
            r = rescore(path, args.data_dir)
        except Exception as exc:  # a data set missing here: say so and go on with the others
            print(f"{model_id:34s} not scored: {type(exc).__name__}: {one_line(exc)}", flush=True)
            continue
        (acc0, f10), (acc, f1) = r["stored"], r["now"]
        diff = abs(acc - acc0) if acc0 is not None else float("nan")
        worst = max(worst, diff) if acc0 is not None else worst
        print(f"{model_id:34s} test accuracy stored {A.fmt(acc0)} now {acc:.4f} "
              f"(macro-F1 {A.fmt(f10)} / {f1:.4f}) on {r['n']} items, "
              f"{r['seconds']:.0f} s", flush=True)
    print(f"largest test-accuracy difference: {worst:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
