"""python -m training.lr_finder --config training/configs/<task>.yaml

Log-scale LR sweep (one mini-batch per step, exponential from lr_finder.start to .end),
smoothed loss vs lr as PNG + TensorBoard, and a suggested window and lr: the window
where the loss falls fastest, the lr a bit below the steepest point.
"""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import torch.nn.functional as F

from models.artifacts import side_file

from models.errors import cli_main

from .common import artifacts_dir, device_for, load_for_cli, run_dir
from .config import common_parser
from .engine import loader, make_optimizer, seed_everything
from .model_setup import build
from .schema import section


def sweep(cfg, data, device, start: float, end: float, steps: int, beta: float = 0.9):
    seed_everything(section(cfg, "train").seed)
    model = build(cfg, data).to(device).train()
    opt = make_optimizer(cfg, model.parameters())
    factor = (end / start) ** (1 / max(steps - 1, 1))
    lrs, losses, avg, best = [], [], 0.0, math.inf
    batches = iter(())
    dl = loader(data.train, section(cfg, "train").batch_size, shuffle=True)
    for step in range(steps):
        lr = start * factor ** step
        for group in opt.param_groups:
            group["lr"] = lr
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(dl)
            x, y = next(batches)
        opt.zero_grad()
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        loss.backward()
        opt.step()
        avg = beta * avg + (1 - beta) * loss.item()
        smoothed = avg / (1 - beta ** (step + 1))
        if not math.isfinite(smoothed) or (step > 5 and smoothed > 4 * best):
            break  # diverged: the rest of the sweep says nothing
        best = min(best, smoothed)
        lrs.append(lr)
        losses.append(smoothed)
    return lrs, losses


MIN_DROP = 0.05  # a sweep whose loss never falls 5% below its start has no steepest descent to speak of


def clear_descent(losses) -> bool:
    """Did the loss fall at all during the sweep (a model too slow to learn in so few steps
    gives a flat, noisy curve whose 'steepest descent' is noise)?"""
    losses = np.asarray(losses, dtype=float)
    return bool(len(losses) and (losses[0] - np.nanmin(losses)) >= MIN_DROP * abs(losses[0]))


def suggest(lrs, losses) -> tuple[float, tuple[float, float]]:
    """lr at the steepest descent of the smoothed loss (in log-lr), and the window around it
    where the loss still falls at least half as fast."""
    if len(lrs) < 5:
        return lrs[0], (lrs[0], lrs[-1])
    log_lr = np.log10(lrs)
    grad = np.gradient(np.asarray(losses), log_lr)
    i = int(np.argmin(grad[: max(len(grad) - 2, 1)]))
    ok = np.where(grad <= grad[i] / 2)[0]
    lo, hi = ok[ok <= i].min(), ok[ok >= i].max()
    return float(lrs[i]), (float(lrs[lo]), float(lrs[hi]))


@cli_main()
def main(argv=None) -> int:
    args = common_parser(__doc__.splitlines()[0]).parse_args(argv)
    cfg, data = load_for_cli(args)
    f = section(cfg, "lr_finder")
    lrs, losses = sweep(cfg, data, device_for(args), f.start, f.end, f.steps)
    lr, window = suggest(lrs, losses)
    descent = clear_descent(losses)
    from torch.utils.tensorboard import SummaryWriter

    from models import training_plots as plots
    out = run_dir(cfg, "lr_finder")
    with SummaryWriter(str(out)) as writer:
        for step, (a, b) in enumerate(zip(lrs, losses)):
            writer.add_scalar("lr_finder/loss", b, step)
            writer.add_scalar("lr_finder/lr", a, step)
    fig = plots.lr_finder(lrs, losses, lr, window)
    art = artifacts_dir(cfg)
    for folder in (out, art):
        fig.savefig(side_file(folder, cfg["name"], "lr_finder_plot"), dpi=90)
    result = {"lrs": lrs, "losses": losses, "suggested_lr": lr, "window": list(window), "clear_descent": descent}
    side_file(art, cfg["name"], "lr_finder").write_text(json.dumps(result))
    print(f"suggested lr {lr:.3g}, window {window[0]:.3g} .. {window[1]:.3g}; plot {side_file(art, cfg['name'], 'lr_finder_plot')}")
    if not descent:
        print(f"warning: the loss never fell by {MIN_DROP:.0%} during the sweep, so this suggestion means little; "
              "sweep more steps (lr_finder.steps) or a wider range", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
