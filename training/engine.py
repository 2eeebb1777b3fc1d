"""The training engine: one readable loop for every task (nanoGPT style).

fit(cfg, model, data) trains with the config's optimiser and scheduler, evaluates each
epoch, keeps the best state by the validation metric, logs to TensorBoard, and returns
(best_state, history). Works under torchrun (DistributedDataParallel, gloo on CPU).
"""
from __future__ import annotations

import copy
import math
import os
import random
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from tqdm import tqdm

from .augment import batch_augment
from .metrics import confusion_matrix, summary
from .schema import ConfigError, section
from .weights import WeightAverage, interpolate


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- distributed helpers (torchrun sets WORLD_SIZE / RANK / LOCAL_RANK)

def dist_setup() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank() if world > 1 else 0), world


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def dist_teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


# --- optimiser and schedule from the config

def param_groups(cfg: dict, model: nn.Module) -> list[dict]:
    """The trainable parameters; with optim.pretrained_lr_scale, those of the pretrained layers
    (all but the model's `new_layers`, e.g. a new output layer) learn at lr x that scale: a
    pretrained network fine-tuned at the new layer's rate forgets what it knew."""
    o = section(cfg, "optim")
    scale = o.pretrained_lr_scale
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if scale is None:
        return [{"params": [p for _, p in named]}]
    new = tuple(f"{m}." for m in getattr(model, "new_layers", ()))
    if not new:
        raise ConfigError(f"optim.pretrained_lr_scale needs a model that names its new layers; {cfg['arch']} does not")
    lr = o.lr
    groups = [{"params": [p for n, p in named if n.startswith(new)], "lr": lr},
              {"params": [p for n, p in named if not n.startswith(new)], "lr": lr * float(scale)}]
    return [g for g in groups if g["params"]]


def make_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    o = section(cfg, "optim")
    name, lr, wd = o.name.lower(), o.lr, o.weight_decay
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=o.momentum, weight_decay=wd, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ConfigError(f"unknown optimiser optim.name {name!r} (adadelta, sgd, adam, adamw)")


def make_scheduler(cfg: dict, opt, steps_per_epoch: int, epochs: int):
    """Returns (scheduler, step_per_batch)."""
    s = section(cfg, "scheduler")
    name = s.name
    if name == "step":
        if s.gamma is None:
            raise ConfigError("scheduler.gamma is required by the step scheduler")
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma), False
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                   total_steps=steps_per_epoch * epochs,
                                                   pct_start=s.pct_start), True
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_per_epoch * epochs), True
    if name == "none":
        return None, False
    raise ConfigError(f"unknown scheduler scheduler.name {name!r} (step, onecycle, cosine, none)")


def loader(ds: TensorDataset, batch_size: int, shuffle: bool, seed: int = 0, distributed: bool = False) -> DataLoader:
    sampler = DistributedSampler(ds, shuffle=shuffle, seed=seed) if distributed else None
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler, generator=g)


@torch.no_grad()
def evaluate(model: nn.Module, ds: TensorDataset, num_classes: int, device, batch_size: int = 512) -> dict:
    """Loss over the whole split (eval mode), accuracy, macro-F1 and the confusion matrix."""
    model.eval()
    total, preds, targets = 0.0, [], []
    for x, y in DataLoader(ds, batch_size=batch_size):
        x, y = x.to(device), y.to(device)
        out = model(x)
        total += F.cross_entropy(out, y, reduction="sum").item()
        preds.append(out.argmax(1).cpu())
        targets.append(y.cpu())
    y_true, y_pred = torch.cat(targets).numpy(), torch.cat(preds).numpy()
    cm = confusion_matrix(y_true, y_pred, num_classes)
    return {"loss": total / max(len(y_true), 1), **summary(cm), "confusion": cm}


def first_batch_check(model: nn.Module, ds: TensorDataset, num_classes: int, batch_size: int, device,
                      from_chance: bool = True) -> dict:
    """Initial loss vs log(C), and a backward pass with a non-zero gradient norm. The model is
    left as it was (the train-mode pass would move its BatchNorm statistics, frozen ones too)."""
    before = copy.deepcopy(model.state_dict())
    model.train()
    x, y = next(iter(DataLoader(ds, batch_size=batch_size, shuffle=False)))
    model.zero_grad()
    loss = F.cross_entropy(model(x.to(device)), y.to(device))
    loss.backward()
    grad_norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters() if p.grad is not None))
    model.zero_grad()
    model.load_state_dict(before)
    check = {"initial_loss": loss.item(), "log_num_classes": math.log(num_classes), "grad_norm": grad_norm}
    # a new output layer starts near chance (loss ~ log C); one initialised by a probe need not
    near = abs(check["initial_loss"] - check["log_num_classes"]) < 1.0 if from_chance else math.isfinite(loss.item())
    check["ok"] = bool(grad_norm > 0 and near)
    check["from_chance"] = from_chance
    return check


def freeze(model: nn.Module, names) -> list[nn.Module]:
    """train.freeze: the named submodules (e.g. body.frontend) keep their pretrained weights and
    their BatchNorm statistics: no gradients, eval mode in training. No backward pass runs
    through a frozen front end, so training costs little more than its forward pass."""
    names = [names] if isinstance(names, str) else list(names or ())
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        tops = [n for n in modules if n and n.count(".") <= 1]
        raise ConfigError(f"train.freeze names {missing}, which the model lacks; its modules include {tops}")
    frozen = [modules[n] for n in names]
    for m in frozen:
        m.requires_grad_(False)
    return frozen


def train_epoch(model, dl, opt, device, scheduler=None, per_batch=False, augment=None, desc="train",
                after_step=None, frozen=()) -> float:
    model.train()
    for m in frozen:
        m.eval()
    total, count = 0.0, 0
    for x, y in tqdm(dl, desc=desc, leave=False, disable=not is_main() or not os.isatty(2)):
        x, y = x.to(device), y.to(device)
        opt.zero_grad(set_to_none=True)
        if augment is not None:  # mixup: the loss is the same mix of the two targets' losses
            x, y_a, y_b, lam = augment(x, y)
            out = model(x)
            loss = lam * F.cross_entropy(out, y_a) + (1 - lam) * F.cross_entropy(out, y_b)
        else:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step()
        if scheduler is not None and per_batch:
            scheduler.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / max(count, 1)


def fit(cfg: dict, model: nn.Module, data, device, writer=None, log=print, on_epoch=None
        ) -> tuple[dict, list[dict], dict]:
    """Train per the config; returns (best state_dict, history per epoch, best val metrics).

    `on_epoch(best_state, history, best)` runs after every epoch on the main process
    (the trainer saves the checkpoint there, so a killed run loses at most one epoch)."""
    # long: the one training loop, kept whole to read top to bottom (nanoGPT's train.py); its parts are above
    t = section(cfg, "train")
    if t.epochs is None:
        raise ConfigError("train.epochs is required to train")
    epochs, batch_size, seed = t.epochs, t.batch_size, t.seed
    num_classes = len(data.labels)
    distributed = dist.is_initialized()
    seed_everything(seed)
    model.to(device)
    if t.channels_last:  # NHWC convolutions: ~1.6x faster training of the EfficientNets on this CPU
        model.to(memory_format=torch.channels_last)
    frozen = freeze(model, t.freeze)
    if t.bn_eval:  # BatchNorm keeps its pretrained statistics (its scale and shift still train):
        # statistics of mixed and masked training inputs are not those of the clips it will see
        frozen += [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    net = nn.parallel.DistributedDataParallel(model) if distributed else model
    dl = loader(data.train, batch_size, shuffle=True, seed=seed, distributed=distributed)
    opt = make_optimizer(cfg, param_groups(cfg, model))
    scheduler, per_batch = make_scheduler(cfg, opt, len(dl), epochs)
    metric = t.select_metric
    keep_last = t.select == "last"  # "last": the recipe's final weights, no selection
    has_val = data.val is not None and len(data.val) > 0
    if not (has_val or keep_last):
        raise ConfigError("no validation split: set data.val_size > 0, or train.select: last")
    augment = batch_augment(cfg, data.preprocessing.get("sample_rate"))
    ema = WeightAverage(model, t.ema) if t.ema else None
    after_step = (lambda: ema.update(model)) if ema is not None else None
    scored = ema.model if ema is not None else model  # what is evaluated and kept
    wise = t.wise
    wise_report = [float(a) for a in t.wise_report or ()]  # val accuracy at each alpha, last 5 epochs
    if wise is not None and not 0.0 < wise <= 1.0:
        raise ConfigError(f"train.wise must be in (0, 1], got {wise}")
    if (wise_report and not has_val):
        raise ConfigError("train.wise_report needs a validation split")
    start_state = _cpu_state(scored) if wise is not None or wise_report else None
    probe = copy.deepcopy(scored).eval() if start_state is not None else None
    best, best_state, history = None, None, []
    for epoch in range(1, epochs + 1):
        if distributed:
            dl.sampler.set_epoch(epoch)
        start = time.time()
        lr = opt.param_groups[0]["lr"]
        train_loss = train_epoch(net, dl, opt, device, scheduler, per_batch, augment, desc=f"epoch {epoch}/{epochs}",
                                 after_step=after_step, frozen=frozen)
        if scheduler is not None and not per_batch:
            scheduler.step()
        row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "epoch_seconds": 0.0}
        if is_main():
            reported = wise_report if epoch > epochs - 5 else []
            if wise is not None or reported:  # what is evaluated and kept: the interpolation, at train.wise
                end = _cpu_state(scored)
                for a in reported:
                    probe.load_state_dict(interpolate(start_state, end, a))
                    row[f"wise_{a:g}"] = evaluate(probe, data.val, num_classes, device)["accuracy"]
                if wise is not None:
                    probe.load_state_dict(interpolate(start_state, end, wise))
            current = probe if wise is not None else scored
            if has_val:
                val = evaluate(current, data.val, num_classes, device)
                row.update(val_loss=val["loss"], val_accuracy=val["accuracy"], val_f1=val["macro_f1"])
            if t.eval_train:  # loss over the whole train set, eval mode (the loss-curve study)
                row["train_eval_loss"] = evaluate(current, data.train, num_classes, device)["loss"]
            if t.eval_test and len(data.test):
                tst = evaluate(current, data.test, num_classes, device)
                row.update(test_loss=tst["loss"], test_accuracy=tst["accuracy"])
            row["epoch_seconds"] = time.time() - start
            score = val[metric if metric != "f1" else "macro_f1"] if has_val else float("nan")
            if keep_last or best is None or score > best[metric]:
                best = {"epoch": epoch, metric: score, "val_loss": val["loss"] if has_val else None,
                        "val_accuracy": val["accuracy"] if has_val else None,
                        "val_f1": val["macro_f1"] if has_val else None}
                best_state = _cpu_state(current)
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(key.replace("_", "/", 1), value, epoch)
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        history.append(row)
        if distributed:
            dist.barrier()
        if on_epoch is not None and is_main():
            on_epoch(best_state, history, best)
    return best_state, history, best or {}


def _cpu_state(model: nn.Module) -> dict:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
