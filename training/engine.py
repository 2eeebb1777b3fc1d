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

from .metrics import confusion_matrix, summary


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
    scale = cfg["optim"].get("pretrained_lr_scale")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if scale is None:
        return [{"params": [p for _, p in named]}]
    new = tuple(f"{m}." for m in getattr(model, "new_layers", ()))
    if not new:
        from .config import ConfigError
        raise ConfigError(f"optim.pretrained_lr_scale needs a model that names its new layers; {cfg['arch']} does not")
    lr = float(cfg["optim"]["lr"])
    groups = [{"params": [p for n, p in named if n.startswith(new)], "lr": lr},
              {"params": [p for n, p in named if not n.startswith(new)], "lr": lr * float(scale)}]
    return [g for g in groups if g["params"]]


def make_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    o = cfg["optim"]
    name, lr, wd = o.get("name", "adamw").lower(), float(o["lr"]), float(o.get("weight_decay", 0.0))
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(o.get("momentum", 0.9)), weight_decay=wd, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimiser {name!r} (adadelta, sgd, adam, adamw)")


def make_scheduler(cfg: dict, opt, steps_per_epoch: int, epochs: int):
    """Returns (scheduler, step_per_batch)."""
    s = cfg.get("scheduler") or {"name": "none"}
    name = s.get("name", "none")
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=int(s.get("step_size", 1)), gamma=float(s["gamma"])), False
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                   total_steps=steps_per_epoch * epochs,
                                                   pct_start=float(s.get("pct_start", 0.3))), True
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_per_epoch * epochs), True
    if name == "none":
        return None, False
    raise ValueError(f"unknown scheduler {name!r} (step, onecycle, cosine, none)")


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


def _speed(x: torch.Tensor, max_change: float) -> torch.Tensor:
    """Each waveform played faster or slower by up to +-max_change (pitch moves with it, like
    another vocal tract or instrument size), then padded or cut back to its length."""
    n, rows = x.shape[1], []
    for row in x:
        m = max(2, int(round(n / (1 + (2 * torch.rand(1).item() - 1) * max_change))))
        row = F.interpolate(row[None, None], size=m, mode="linear", align_corners=False)[0, 0]
        rows.append(row[:n] if m >= n else F.pad(row, (0, n - m)))
    return torch.stack(rows)


def _noise(x: torch.Tensor, prob: float, snr_db=(5.0, 40.0)) -> torch.Tensor:
    """White noise at a random SNR on a `prob` share of the waveforms (microphones, rooms)."""
    pick = torch.rand(len(x), device=x.device) < prob
    snr = torch.empty(len(x), device=x.device).uniform_(*snr_db)
    power = x.pow(2).mean(1).clamp_min(1e-10)
    scale = (power / 10 ** (snr / 10)).sqrt() * pick
    return x + torch.randn_like(x) * scale[:, None]


def _eq(x: torch.Tensor, max_db: float, points: int = 6) -> torch.Tensor:
    """Each waveform through a random smooth EQ (another microphone, room or phone): a gain
    curve of `points` random levels in +-max_db, spaced evenly on a log-frequency axis from
    1/256 of the Nyquist frequency (16 Hz at 8 kHz) up to Nyquist and interpolated between
    them, applied in the frequency domain; the clip's peak level is kept."""
    n = x.shape[1]
    spec = torch.fft.rfft(x, dim=1)
    bins = spec.shape[1]
    pos = torch.log2(torch.arange(bins, device=x.device).clamp_min(1) / max(bins - 1, 1) * 2 ** 8).clamp(0, 8)
    pos = pos / 8 * (points - 1)  # 0..points-1: 1/256 of Nyquist (~16-100 Hz) .. Nyquist
    levels = (torch.rand(len(x), points, device=x.device) * 2 - 1) * max_db
    lo = pos.floor().long().clamp(max=points - 2)
    frac = pos - lo
    gain_db = levels[:, lo] * (1 - frac) + levels[:, lo + 1] * frac
    y = torch.fft.irfft(spec * 10 ** (gain_db / 20), n=n, dim=1)
    peak_in, peak_out = x.abs().amax(1, keepdim=True), y.abs().amax(1, keepdim=True).clamp_min(1e-8)
    return y * (peak_in / peak_out)


def _flip_crop(x: torch.Tensor, hflip: bool, pad: int) -> torch.Tensor:
    """With hflip, half the images mirrored left-right; with pad > 0, each shifted by up to
    `pad` pixels (reflection-padded random crop of the same size)."""
    if hflip:
        mirror = torch.rand(len(x), device=x.device) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
    if pad:
        h, w = x.shape[-2:]
        padded = F.pad(x, (pad,) * 4, mode="reflect")
        dy, dx = torch.randint(0, 2 * pad + 1, (2, len(x))).tolist()
        x = torch.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(zip(dy, dx))])
    return x


def batch_augment(cfg: dict, sample_rate: int | None = None):
    """Batch augmentation. Waveforms: train.time_shift (max seconds, circular), train.speed
    (max relative speed change), train.noise (share of clips given white noise at 5-40 dB SNR),
    train.eq (max dB of a random smooth EQ curve per clip), train.gain_db (a random gain within +-gain_db).
    Images: train.hflip (mirror half the images), train.crop_pad (random shift in pixels).
    Both: train.mixup (Beta alpha). Returns f(x, y) -> (x, y_a, y_b, lam) or None."""
    t = cfg["train"]
    shift_s, alpha = float(t.get("time_shift", 0) or 0), float(t.get("mixup", 0) or 0)
    speed, noise = float(t.get("speed", 0) or 0), float(t.get("noise", 0) or 0)
    hflip, crop_pad = bool(t.get("hflip")), int(t.get("crop_pad", 0) or 0)
    eq, gain_db = float(t.get("eq", 0) or 0), float(t.get("gain_db", 0) or 0)
    wave = sample_rate is not None
    if not ((shift_s or speed or noise or eq or gain_db) and wave) and not alpha and not (hflip or crop_pad):
        return None
    beta = torch.distributions.Beta(alpha, alpha) if alpha else None

    def augment(x, y):
        if x.dim() == 4 and (hflip or crop_pad):
            x = _flip_crop(x, hflip, crop_pad)
        if wave and x.dim() == 2:
            if speed:
                x = _speed(x, speed)
            if eq:
                x = _eq(x, eq)
            if gain_db:  # another recording level
                x = x * 10 ** ((torch.rand(len(x), 1, device=x.device) * 2 - 1) * gain_db / 20)
            if shift_s:
                max_shift = int(shift_s * sample_rate)
                shifts = torch.randint(-max_shift, max_shift + 1, (len(x),)).tolist()
                x = torch.stack([torch.roll(row, s) for row, s in zip(x, shifts)])
            if noise:
                x = _noise(x, noise)
        if beta is None:
            return x, y, y, 1.0
        lam = float(beta.sample())
        perm = torch.randperm(len(x), device=x.device)
        return lam * x + (1 - lam) * x[perm], y, y[perm], lam

    return augment


class WeightAverage:
    """An exponential moving average of a model's weights (train.ema = its decay, e.g. 0.998):
    after each optimiser step avg = d * avg + (1 - d) * weights, with d = min(decay, (1 + t) / (10 + t))
    at step t so that the first steps do not keep the initial weights. Float buffers (BatchNorm's
    running statistics) are averaged the same way, integer ones copied. The average is what the
    epoch is evaluated and saved with: it smooths the last epochs' noise without a selection."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema must be in (0, 1), got {decay}")
        self.decay, self.steps = decay, 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        current = model.state_dict()
        for key, avg in self.model.state_dict().items():
            new = current[key].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(new)


def interpolate(start: dict, end: dict, alpha: float) -> dict:
    """WiSE-FT (Wortsman et al. 2022): the weights (1 - alpha) * start + alpha * end, between the
    model as training found it (pretrained, its output layer from the probe) and as training left
    it; integer buffers come from `end`. Fine-tuning on 1600 clips forgets some of what AudioSet
    taught; part of the way back keeps the fine-tuned gains with less of the forgetting."""
    return {k: (torch.lerp(start[k].to(v.dtype), v, alpha) if v.dtype.is_floating_point else v.clone())
            for k, v in end.items()}


def average(states: list[dict]) -> dict:
    """A uniform model soup (Wortsman et al. 2022, "Model soups"): the mean of several runs' weights,
    every float tensor (BatchNorm statistics too), integer buffers from the first. Runs fine-tuned from
    the same start by different seeds (data order, augmentation) stay in one basin, so their mean is a
    model as fast as one of them that errs less (an ensemble's gain without its cost at inference)."""
    if not states:
        raise ValueError("average of no weights")
    first = states[0]
    for other in states[1:]:
        if other.keys() != first.keys() or any(other[k].shape != v.shape for k, v in first.items()):
            raise ValueError("the runs to average are not one architecture (their weights differ in names or shapes)")
    return {k: (torch.stack([s[k].to(v.dtype) for s in states]).mean(0) if v.dtype.is_floating_point else v.clone())
            for k, v in first.items()}


def freeze(model: nn.Module, names) -> list[nn.Module]:
    """train.freeze: the named submodules (e.g. body.frontend) keep their pretrained weights and
    their BatchNorm statistics: no gradients, eval mode in training. No backward pass runs
    through a frozen front end, so training costs little more than its forward pass."""
    names = [names] if isinstance(names, str) else list(names or ())
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        from .config import ConfigError
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
    t = cfg["train"]
    epochs, batch_size, seed = int(t["epochs"]), int(t.get("batch_size", 64)), int(t.get("seed", 0))
    num_classes = len(data.labels)
    distributed = dist.is_initialized()
    seed_everything(seed)
    model.to(device)
    if t.get("channels_last"):  # NHWC convolutions: ~1.6x faster training of the EfficientNets on this CPU
        model.to(memory_format=torch.channels_last)
    frozen = freeze(model, t.get("freeze"))
    if t.get("bn_eval"):  # BatchNorm keeps its pretrained statistics (its scale and shift still train):
        # statistics of mixed and masked training inputs are not those of the clips it will see
        frozen += [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    net = nn.parallel.DistributedDataParallel(model) if distributed else model
    dl = loader(data.train, batch_size, shuffle=True, seed=seed, distributed=distributed)
    opt = make_optimizer(cfg, param_groups(cfg, model))
    scheduler, per_batch = make_scheduler(cfg, opt, len(dl), epochs)
    metric = t.get("select_metric", "accuracy")
    keep_last = t.get("select", "best") == "last"  # "last": the recipe's final weights, no selection
    has_val = data.val is not None and len(data.val) > 0
    if not (has_val or keep_last):
        raise ValueError("no validation split: set data.val_size > 0, or train.select: last")
    augment = batch_augment(cfg, data.preprocessing.get("sample_rate"))
    ema = WeightAverage(model, float(t["ema"])) if t.get("ema") else None
    after_step = (lambda: ema.update(model)) if ema is not None else None
    scored = ema.model if ema is not None else model  # what is evaluated and kept
    wise = float(t["wise"]) if t.get("wise") is not None else None
    wise_report = [float(a) for a in t.get("wise_report") or ()]  # val accuracy at each alpha, last 5 epochs
    if wise is not None and not 0.0 < wise <= 1.0:
        raise ValueError(f"train.wise must be in (0, 1], got {wise}")
    if (wise_report and not has_val):
        raise ValueError("train.wise_report needs a validation split")
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
            if t.get("eval_train"):  # loss over the whole train set, eval mode (the loss-curve study)
                row["train_eval_loss"] = evaluate(current, data.train, num_classes, device)["loss"]
            if t.get("eval_test") and len(data.test):
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
