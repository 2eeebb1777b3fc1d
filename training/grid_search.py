"""python -m training.grid_search --config training/configs/<task>.yaml

Mini grid search: every combination of the config's `grid` values (lr, weight decay and
two model hyperparameters), a few epochs each on the same seed, scored on validation.
Writes a summary table (CSV + markdown) and prints the best configuration.
"""
from __future__ import annotations

import csv
import itertools
import sys
import time

import torch

from models.artifacts import side_file

from models.errors import cli_main

from .common import artifacts_dir, device_for, load_for_cli, run_dir
from .config import ConfigError, common_parser, copy_cfg, set_dotted
from .data_common import split_dataset, take
from .engine import fit
from .model_setup import build
from .schema import section



def combos(grid: dict) -> list[dict]:
    keys = [k for k in grid if "." in k]  # the axes; the other keys are settings (training.schema.Grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


@cli_main()
def main(argv=None) -> int:
    args = common_parser(__doc__.splitlines()[0]).parse_args(argv)
    cfg, data = load_for_cli(args)
    grid = cfg["grid"] or {}
    if not combos(grid) or not grid:
        raise ConfigError(f"{args.config}: the config has no `grid` section")
    if grid.get("val_size"):  # a task trained without validation still scores its grid on held-out data
        data.train, data.val = split_dataset(data.train, int(grid["val_size"]), section(cfg, "train").seed)
    subset = grid.get("train_subset")
    if subset:
        data.train = take(data.train, torch.arange(min(int(subset), len(data.train))))
    device = device_for(args)
    rows = []
    for i, combo in enumerate(combos(grid), 1):
        run = copy_cfg(cfg)
        for key, value in combo.items():
            set_dotted(run, key, value)
        run["train"]["epochs"] = grid["epochs"]
        run["train"]["eval_train"] = run["train"]["eval_test"] = False
        run["train"]["select"] = "best"
        start = time.time()
        _, history, best = fit(run, build(run, data), data, device, log=lambda *_: None)
        row = {**combo, "val_accuracy": best["val_accuracy"], "val_f1": best["val_f1"],
               "val_loss": history[-1]["val_loss"], "seconds": round(time.time() - start, 1)}
        rows.append(row)
        print(f"[{i}/{len(combos(grid))}] " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    rows.sort(key=lambda r: (-r["val_accuracy"], r["val_loss"]))
    out, art = run_dir(cfg, "grid"), artifacts_dir(cfg)
    for folder in (out, art):
        with open(side_file(folder, cfg["name"], "grid_table"), "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        side_file(folder, cfg["name"], "grid").write_text(markdown(rows, grid))
    print(f"best: {', '.join(f'{k}={rows[0][k]}' for k in combos(grid)[0])} "
          f"(val accuracy {rows[0]['val_accuracy']:.4f}); table {side_file(art, cfg['name'], 'grid')}")
    return 0


def markdown(rows: list[dict], grid: dict) -> str:
    keys = list(rows[0])
    head = (f"Grid search: {grid['epochs']} epoch(s) per run"
            f"{', ' + str(grid['train_subset']) + ' training examples' if grid.get('train_subset') else ''}, same seed; "
            "sorted by validation accuracy.\n\n")
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(f"{r[k]:.4f}" if isinstance(r[k], float) and k.startswith("val") else str(r[k])
                                for k in keys) + " |" for r in rows]
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
