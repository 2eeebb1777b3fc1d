"""python -m training.cross_validate --config training/configs/<task>.yaml [--reuse]

k-fold cross-validation: one full training per entry of the config's `folds` list (each a
set of overrides, e.g. which ESC-50 fold or which speaker is the test set), then the mean
and spread of the test figures. Writes checkpoints/<task>/<name>_cv.json (the Training tab
and the model card read it); the fold checkpoints stay under runs/<task>/cv/.
"""
from __future__ import annotations

import json
import statistics
import sys

import torch

from models import artifacts as A
from models.artifacts import side_file

from models.errors import cli_main

from .common import ROOT, artifacts_dir, run_training, study_cli


def summarise(results: list[dict]) -> dict:
    accs = [r["test_accuracy"] for r in results]
    return {"folds": results, "mean_test_accuracy": statistics.fmean(accs),
            "std_test_accuracy": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
            "min_test_accuracy": min(accs), "max_test_accuracy": max(accs)}


@cli_main()
def main(argv=None) -> int:
    args, cfg, folds = study_cli(__doc__, "folds", argv)
    results = []
    for i, overrides in enumerate(folds, 1):
        output = f"runs/{cfg['task']}/cv/{cfg['name']}_fold{i}.pt"
        path = ROOT / output
        done = path.is_file() and torch.load(path, weights_only=True)[A.METRICS].get("complete")
        if not (args.reuse and done):
            run_training(args, overrides, output, label=f"[fold {i}/{len(folds)}]")
        m = torch.load(path, weights_only=True)[A.METRICS]
        results.append({"fold": i, "overrides": overrides, "test_accuracy": m["test_accuracy"],
                        "test_macro_f1": m["test_macro_f1"], "split": m.get("split", "")})
        print(f"[fold {i}/{len(folds)}] test accuracy {m['test_accuracy']:.4f}", flush=True)
    summary = summarise(results)
    out = side_file(artifacts_dir(cfg), cfg["name"], "cv")
    out.write_text(json.dumps(summary, indent=1))
    spread = ", ".join(f"{k} {summary[f'{k}_test_accuracy']:.4f}" for k in ("std", "min", "max"))
    print(f"{len(folds)}-fold test accuracy: mean {summary['mean_test_accuracy']:.4f} ({spread}); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
