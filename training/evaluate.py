"""python -m training.evaluate --config training/configs/<task>.yaml --checkpoint PATH

Test-split evaluation of a checkpoint: accuracy, macro-F1, per-class report, confusion
matrix (PNG + CSV); the figures are written into the checkpoint and its model card. Where
the task has a validation split, its per-class report too (for the instruments: the
held-out recording sources).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from models import artifacts as A
from models.checkpoint import load_checkpoint, model_from_checkpoint
from models.errors import cli_main

from .baselines import baselines
from .common import device_for, load_for_cli
from .config import common_parser
from .engine import evaluate
from .metrics import per_class
from .model_card import save_in_place


def report_rows(cm: np.ndarray, labels: list[str]) -> list[dict]:
    pc = per_class(cm)
    return [{"label": label, "precision": float(pc["precision"][i]), "recall": float(pc["recall"][i]),
             "f1": float(pc["f1"][i]), "support": int(pc["support"][i])} for i, label in enumerate(labels)]


@cli_main()
def main(argv=None) -> int:
    parser = common_parser(__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    cfg, data = load_for_cli(args, features=False)  # the whole network, on images
    device = device_for(args)
    model = model_from_checkpoint(ckpt).to(device)
    res = evaluate(model, data.test, len(data.labels), device)
    cm = res["confusion"]
    path = Path(args.checkpoint)
    table, plot = (A.side_file(path.parent, path.stem, kind) for kind in ("confusion", "confusion_plot"))
    np.savetxt(table, cm, fmt="%d", delimiter=",", header=",".join(data.labels), comments="")
    from models import training_plots as plots
    plots.confusion(cm, data.labels).savefig(plot, dpi=80)
    ckpt[A.METRICS].update(test_accuracy=res["accuracy"], test_macro_f1=res["macro_f1"], test_loss=res["loss"],
                           per_class=report_rows(cm, data.labels), split=data.description)
    ckpt[A.CONFUSION_MATRIX] = torch.from_numpy(cm)
    ckpt[A.BASELINES] = baselines(data.train.tensors[1].numpy(), data.test.tensors[1].numpy(), len(data.labels))
    if data.val is not None and len(data.val):
        val = evaluate(model, data.val, len(data.labels), device)
        ckpt[A.METRICS].update(val_accuracy=val["accuracy"], val_macro_f1=val["macro_f1"],
                               val_per_class=report_rows(val["confusion"], data.labels))
        print(f"val accuracy {val['accuracy']:.4f}, macro-F1 {val['macro_f1']:.4f}; per class (recall): " + ", ".join(
            f"{r['label']} {r['recall']:.3f} ({r['support']})" for r in ckpt[A.METRICS]["val_per_class"]))
    card = save_in_place(ckpt, path)
    print(f"test accuracy {res['accuracy']:.4f}, macro-F1 {res['macro_f1']:.4f}, loss {res['loss']:.4f}")
    worst = sorted(report_rows(cm, data.labels), key=lambda r: r["f1"])[:3]
    print("weakest classes: " + ", ".join(f"{r['label']} (F1 {r['f1']:.3f})" for r in worst))
    print(f"wrote {plot}, {table}, {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
