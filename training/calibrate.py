"""python -m training.calibrate --config training/configs/<task>.yaml --checkpoint PATH [--fit-on PATH]

Temperature scaling (Guo et al., 2017): one number T fitted on the validation split by
minimising the negative log-likelihood of softmax(logits / T); the predictor divides by it,
which changes the probabilities a person sees, never the ranking. The expected calibration
error (ECE, 15 equal-width confidence bins) on the test split before and after goes into the
checkpoint's metrics and model card.

A model trained on its validation fold too (the shipped ESC-50 model learns folds 1-4) cannot
be calibrated on it: `--fit-on` names the run of the same recipe that held that fold out, whose
fitted T is then applied (the validation figures are that run's).
"""
from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from models import artifacts as A
from models.checkpoint import load_checkpoint, model_from_checkpoint
from models.errors import cli_main

from .common import device_for, load_for_cli
from .config import ConfigError, common_parser
from .model_card import save_in_place

ECE_BINS = 15


@torch.no_grad()
def logits_of(model, ds, device, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval().to(device)
    outs, ys = [], []
    for x, y in DataLoader(ds, batch_size=batch_size):
        outs.append(model(x.to(device)).float().cpu())
        ys.append(y)
    return torch.cat(outs), torch.cat(ys)


def fit_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    """argmin_T NLL(softmax(logits / T)), T > 0 (optimised as log T)."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss
    opt.step(closure)
    return float(log_t.detach().exp())


def ece(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over confidence bins of |accuracy - confidence| x share."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(float((pred[m] == y[m]).mean()) - float(conf[m].mean()))
    return float(total)


def calibration(logits: torch.Tensor, y: torch.Tensor, t: float) -> dict:
    before = logits.softmax(-1).numpy()
    after = (logits / t).softmax(-1).numpy()
    return {"ece_before": ece(before, y.numpy()), "ece_after": ece(after, y.numpy()),
            "nll_before": float(F.cross_entropy(logits, y)), "nll_after": float(F.cross_entropy(logits / t, y))}


@cli_main()
def main(argv=None) -> int:
    parser = common_parser(__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="the checkpoint to calibrate (written in place)")
    parser.add_argument("--fit-on", default=None, help="fit T with this run's model instead (same recipe, val held out)")
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    fit_ckpt = load_checkpoint(args.fit_on) if args.fit_on else ckpt
    cfg, data = load_for_cli(args, features=False)
    if data.val is None or len(data.val) == 0:
        raise ConfigError("the config has no validation split to fit the temperature on (set data.val_folds, "
                          "and --fit-on a run that held it out)")
    device = device_for(args)
    val_logits, val_y = logits_of(model_from_checkpoint(fit_ckpt), data.val, device)
    t = fit_temperature(val_logits, val_y)
    val = calibration(val_logits, val_y, t)
    test_logits, test_y = logits_of(model_from_checkpoint(ckpt), data.test, device)
    test = calibration(test_logits, test_y, t)
    ckpt[A.METRICS].update(temperature=t, ece_val_before=val["ece_before"], ece_val_after=val["ece_after"],
                           ece_test_before=test["ece_before"], ece_test_after=test["ece_after"],
                           nll_test_before=test["nll_before"], nll_test_after=test["nll_after"],
                           calibration_fitted_on=(args.fit_on or args.checkpoint) + " (validation split)")
    card = save_in_place(ckpt, args.checkpoint)
    print(f"temperature {t:.3f} (fitted on the validation split, {len(val_y)} clips)")
    print(f"ECE val {val['ece_before']:.4f} -> {val['ece_after']:.4f}; "
          f"test {test['ece_before']:.4f} -> {test['ece_after']:.4f} (NLL {test['nll_before']:.4f} -> "
          f"{test['nll_after']:.4f}); wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
