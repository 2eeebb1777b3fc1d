"""python -m training.loss_study --config training/configs/mnist.yaml [--reuse]

The practical "Analyse de l'evolution de la loss": the config's `study` runs (as is;
train/test swapped; swapped without dropout; without dropout), each with the loss over
the whole train set and the whole test set per epoch. Writes the histories and the
verdicts to checkpoints/<task>/loss_study.json (the Training tab draws from it), the
plots per run and the two synthesis plots under runs/. The code names the runs that
overfit: test loss rising from its minimum while the train loss keeps falling.
"""
from __future__ import annotations

import json
import sys

import torch

from models import artifacts as A
from models.artifacts import side_file

from models.errors import cli_main

from .common import ROOT, artifacts_dir, run_dir, run_training, study_cli

TOLERANCE = 0.05  # test loss must end >5% above its minimum to count as rising


def overfit_verdict(train: list[float], test: list[float], tol: float = TOLERANCE) -> dict:
    """Overfitting = the test loss rises after its minimum while the train loss keeps falling."""
    best = min(range(len(test)), key=test.__getitem__)
    rising = test[-1] > test[best] * (1 + tol) and best < len(test) - 1
    falling = train[-1] < train[best]
    verdict = rising and falling
    why = (f"test loss min {test[best]:.4f} at epoch {best + 1}, {test[-1]:.4f} at the end "
           f"({(test[-1] / test[best] - 1) * 100:+.0f}%); train loss {train[best]:.4f} -> {train[-1]:.4f}")
    return {"overfits": bool(verdict), "min_test_epoch": best + 1, "explanation": why}


@cli_main()
def main(argv=None) -> int:
    args, cfg, runs = study_cli(__doc__, "study", argv)
    histories, notes, data = {}, {}, {}
    for run in runs:
        path = ROOT / run["output"]
        if not (args.reuse and path.is_file()):  # --reuse: take what a run saved, even a partial one
            run_training(args, run.get("set", {}), run["output"])
        ckpt = torch.load(path, weights_only=True)
        histories[run["name"]] = ckpt["history"]
        data[run["name"]] = ckpt.get("data_description", "")  # each run's own split, as trained
        if not ckpt[A.METRICS].get("complete"):
            notes[run["name"]] = f"partial: {len(ckpt['history'])} of {cfg['train']['epochs']} epochs"
    result = {"runs": {}, "tolerance": TOLERANCE}
    for name, hist in histories.items():
        train = [h["train_eval_loss"] for h in hist]
        test = [h["test_loss"] for h in hist]
        verdict = overfit_verdict(train, test)
        result["runs"][name] = {"history": hist, **verdict, "note": notes.get(name, ""), "data": data[name],
                                "final_train_loss": train[-1], "final_test_loss": test[-1]}
        print(f"{name:24s} train {train[-1]:.4f}  test {test[-1]:.4f}  -> "
              f"{'OVERFITS' if verdict['overfits'] else 'no overfitting'}: {verdict['explanation']} {notes.get(name, '')}")
    result["overfitting_runs"] = [n for n, r in result["runs"].items() if r["overfits"]]
    out = side_file(artifacts_dir(cfg), cfg["name"], "loss_study")
    out.write_text(json.dumps(result, indent=1))
    from models import training_plots as plots
    figs = run_dir(cfg, "loss_study")
    for name, hist in histories.items():
        plots.curves(hist, f"run {name}").savefig(figs / f"run_{name.split()[0]}.png", dpi=80)
    plots.loss_synthesis({n: [{"epoch": h["epoch"], "loss": h["train_eval_loss"]} for h in hs] for n, hs in histories.items()},
                         "loss", "train loss (whole train set)").savefig(figs / "train_losses.png", dpi=80)
    plots.loss_synthesis({n: [{"epoch": h["epoch"], "loss": h["test_loss"]} for h in hs] for n, hs in histories.items()},
                         "loss", "test loss (whole test set)").savefig(figs / "test_losses.png", dpi=80)
    print(f"overfitting: {result['overfitting_runs'] or 'none'}; wrote {out} and plots in {figs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
