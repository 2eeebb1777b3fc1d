"""Sensitivity sweep speed on this machine: prints figures, asserts nothing.

    python benchmarks/bench_sensitivity.py [--model imagenet:effnet-lite0] [--repeats 5]

One sweep = 10 transformed images + the original through the model as one batch with
GradCAM, overlays and CAM-stability figures (models.sensitivity_sweep.run_sweep), input 224x224.
Targets: p50 <= 1.5 s for one sweep, <= 3 s for brightness and shear together.
`--threads 1` when the machine is shared with another CPU job; `--with-save` also times
what the app adds (PNG files, ZIP, CSV, the plot).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import fmt_s as fmt, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="imagenet:effnet-lite0")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--method", default="GradCAM")
    parser.add_argument("--with-save", action="store_true", help="also time the app's PNG/ZIP/CSV/plot step")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice; use 1 when another job holds a core: "
                             "oversubscribed OpenMP threads make every op several times slower)")
    args = parser.parse_args()

    import torch
    from PIL import Image
    from skimage import data

    from models import load_predictor
    from models.sensitivity_sweep import run_sweep

    if args.threads:
        torch.set_num_threads(args.threads)
    image = Image.fromarray(data.chelsea()).resize((224, 224))
    p = load_predictor(args.model)
    print(f"model {p.model_id} on {p.device}, torch threads {torch.get_num_threads()}, input 224x224, "
          f"{args.method}, 10 images per sweep, {args.repeats} repeats")

    def one(name):
        return lambda: run_sweep(p, image, name, n=10, method=args.method)

    for name in ("brightness", "shear"):
        print(f"sweep {name:20s} {fmt(timed(one(name), args.repeats))}")
    both = lambda: (one("brightness")(), one("shear")())  # noqa: E731
    print(f"sweep brightness + shear   {fmt(timed(both, args.repeats))}")

    if args.with_save:
        from demos.sensitivity import _save

        class _NoProgress:
            def __call__(self, *a, **k):
                return self

        def sweep_and_save():
            r = run_sweep(p, image, "brightness", n=10, method=args.method)
            _save(r, _NoProgress())
            r.plot().savefig(Path(tempfile.mkdtemp()) / "plot.png")

        print(f"sweep + PNG/ZIP/CSV + plot {fmt(timed(sweep_and_save, args.repeats))}")


if __name__ == "__main__":
    main()
