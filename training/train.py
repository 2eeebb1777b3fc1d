"""python -m training.train --config training/configs/<task>.yaml [--overfit-small N]

The full course workflow's training step: first-batch check, then either the overfit
sanity check on N examples or the full training (best checkpoint by the validation
metric, saved every epoch, evaluated on the test split at the end, model card written).
Runs under `torchrun --nproc_per_node=N` too (DistributedDataParallel).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from models import artifacts as A
from models.architectures import build_model

from models.errors import cli_main

from .common import device_for, load_for_cli, public_config, reproduce_command, run_dir, write_checkpoint
from .config import ConfigError, common_parser
from .data_common import first_items
from .engine import (dist_setup, dist_teardown, evaluate, first_batch_check, fit, is_main, make_optimizer,
                     seed_everything)
from .model_card import write as write_card
from .model_setup import build, model_kwargs
from .schema import section
from .weights import average


def overfit_small(cfg, data, n: int, device, max_steps: int = 300) -> float:
    """Memorise n training examples: the loss must go to ~0, else something is broken."""
    seed_everything(section(cfg, "train").seed)
    model = build(cfg, data).to(device)
    x, y = first_items(data.train, n)
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(cfg, model.parameters())
    model.train()
    loss = torch.tensor(float("nan"))
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if step % 25 == 0:
            print(f"overfit step {step}: loss {float(loss):.4f}")
        if float(loss) < 1e-3:
            break
    model.eval()
    with torch.no_grad():
        final = float(F.cross_entropy(model(x), y))
    print(f"overfit-small: {n} examples, final loss {final:.5f} after {step} steps (eval mode)")
    return final


@cli_main()
def main(argv=None) -> int:
    parser = common_parser(__doc__.splitlines()[0])
    parser.add_argument("--overfit-small", type=int, default=0, metavar="N", help="only memorise N examples")
    args = parser.parse_args(argv)
    cfg, data = load_for_cli(args)
    seeds = soup_seeds(cfg)
    rank, world = dist_setup()
    device = device_for(args)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
    seed_everything(section(cfg, "train").seed)  # the initial weights too: a config + seed is one run
    model = build(cfg, data)
    sanity = first_batch(cfg, data, model, device)
    if args.overfit_small:
        final = overfit_small(cfg, data, args.overfit_small, device)
        dist_teardown()
        return 0 if final < 0.05 else 1
    writer = None
    if is_main():
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(run_dir(cfg, "train")))
        print(f"TensorBoard logs: {writer.log_dir}" + (f" (run1 .. run{len(seeds)}, one per run of the soup)"
                                                        if len(seeds) > 1 else ""), flush=True)
    run = Run(cfg, data, device, writer, time.time(), checkpoint_extra(cfg, data, model, sanity, device, world))
    model, best_state, history, best = train_soup(run, model, seeds)
    if is_main():
        finish(run, model, best_state, history, best)
    dist_teardown()
    return 0


def first_batch(cfg: dict, data, model, device) -> dict:
    """The course's first check: the loss of an untrained model is log(C), its gradients flow."""
    probed = section(cfg, "train").probe_init
    sanity = first_batch_check(model, data.train, len(data.labels), section(cfg, "train").batch_size, device,
                               from_chance=not probed)
    if is_main():
        print(f"first batch: loss {sanity['initial_loss']:.4f} (log C = {sanity['log_num_classes']:.4f}"
              f"{'; output layer from a probe, not at chance' if probed else ''}), "
              f"grad norm {sanity['grad_norm']:.4g} -> {'ok' if sanity['ok'] else 'CHECK THE MODEL'}")
    return sanity


def checkpoint_extra(cfg: dict, data, model, sanity: dict, device, world: int) -> dict:
    """What the checkpoint records of the run besides weights and metrics (models/artifacts.py)."""
    extra = {A.SANITY: sanity, A.REPRODUCE: reproduce_command("training.train"), A.DATA_DESCRIPTION: data.description,
             A.TRAIN_DEVICE: f"{device.type} x{world}", A.NUM_PARAMETERS: sum(p.numel() for p in model.parameters())}
    if data.frozen_backbone:  # the checkpoint holds the whole network; only the classifier was trained
        extra["trained_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        extra[A.NUM_PARAMETERS] = sum(p.numel() for p in build_model(cfg["arch"], **model_kwargs(cfg, data)).parameters())
    return extra


@dataclass
class Run:
    cfg: dict
    data: object
    device: torch.device
    writer: object  # SummaryWriter on the main process, else None
    start: float
    extra: dict

    def save(self, best_state, history, best, metrics=None, **more) -> Path:
        """Every epoch (metrics: the best so far, incomplete): a killed run keeps its best epoch so far."""
        return write_checkpoint(self.cfg, best_state, self.data, history=history,
                                metrics=metrics or {"best_val": best, "complete": False},
                                extra={**self.extra, A.TRAIN_SECONDS: time.time() - self.start, **more})


def train_soup(run: Run, model, seeds: list[int]):
    """train.soup: the same recipe once per seed, then the mean weights. -> (model, state, history, best)"""
    states, history = [], []
    for i, member_seed in enumerate(seeds):
        member = run.cfg if i == 0 else {**run.cfg, "train": {**run.cfg["train"], "seed": member_seed}}
        if i:
            seed_everything(member_seed)
            model = build(member, run.data)
        before = list(history)

        def save_member(state, hist, best, before=before, i=i):
            run.save(state, before + _tagged(hist, i, len(seeds)), best)

        # a soup's runs log side by side in the run folder (run1, run2, ...), each its own curve in TensorBoard
        member_writer = (run.writer if run.writer is None or len(seeds) == 1 else
                         type(run.writer)(str(Path(run.writer.log_dir) / f"run{i + 1}")))
        state, hist, best = fit(member, model, run.data, run.device, member_writer, on_epoch=save_member)
        if member_writer is not run.writer:
            member_writer.close()
        states.append(state)
        history = before + _tagged(hist, i, len(seeds))
    best_state = states[0] if len(states) == 1 else average(states)
    if len(states) > 1 and is_main():
        model.load_state_dict(best_state)
        val = evaluate(model, run.data.val, len(run.data.labels), run.device) if len(run.data.val) else None
        best = {**best, "val_accuracy": val["accuracy"] if val else None, "val_f1": val["macro_f1"] if val else None}
        print(f"soup of {len(states)} runs (seeds {', '.join(map(str, seeds))})"
              + (f": validation accuracy {val['accuracy']:.4f}" if val else ""))
    return model, best_state, history, best


def finish(run: Run, model, best_state: dict, history: list, best: dict) -> None:
    """The kept weights on the test split, the final checkpoint, its model card and the hparams log."""
    cfg, data = run.cfg, run.data
    model.load_state_dict(best_state)
    # no test split (e.g. --set 'data.test_folds=[]'): a selection run that never looks at the test set
    test = evaluate(model, data.test, len(data.labels), run.device) if len(data.test) else None
    metrics = {"test_accuracy": test and test["accuracy"], "test_macro_f1": test and test["macro_f1"],
               "test_loss": test and test["loss"], "best_epoch": best["epoch"],
               "val_accuracy": best["val_accuracy"], "val_f1": best["val_f1"],
               "split": data.description, "complete": True}
    confusion = {A.CONFUSION_MATRIX: torch.from_numpy(test["confusion"])} if test else {}
    path = run.save(best_state, history, best, metrics=metrics, **confusion)
    write_card(path)
    run.writer.add_hparams({k: v for k, v in _flat(public_config(cfg)).items()},
                           {"hparam/test_accuracy": test["accuracy"] if test else float("nan"),
                            "hparam/best_val_accuracy": best["val_accuracy"] or float("nan")})
    run.writer.close()
    scored = (f"test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}" if test else
              "no test split (not tested)")
    print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB): {scored}, "
          f"{'last' if section(cfg, 'train').select == 'last' else 'best'} epoch {best['epoch']}, {(time.time() - run.start) / 60:.1f} min")


def soup_seeds(cfg: dict) -> list[int]:
    """train.soup: N trains the recipe N times, seeds seed .. seed + N - 1 (the first run is exactly the
    run without train.soup), and keeps the mean of the N runs' kept weights (training.weights.average;
    with train.wise each run's interpolation, so the soup is the interpolation of the mean)."""
    t = section(cfg, "train")
    n = 1 if t.soup is None else t.soup
    if n < 1:
        raise ConfigError(f"train.soup must be a whole number of runs >= 1, got {n!r}")
    return [t.seed + i for i in range(n)]


def _tagged(history: list[dict], i: int, members: int) -> list[dict]:
    return history if members == 1 else [{"epoch": row["epoch"], "run": i + 1, **row} for row in history]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, (int, float, str, bool)):
            out[key] = v
    return out


if __name__ == "__main__":
    sys.exit(main())
