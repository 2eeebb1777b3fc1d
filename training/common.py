"""What every training command shares: device, run folders, checkpoint writing, the CLI's config loading.
Model building: training/model_setup.py."""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import torch

from models.architectures import build_model
from models.checkpoint import save_checkpoint
from models.device import pick_device
from models.errors import as_user_error

from .model_setup import model_kwargs
from .schema import ConfigError, section

ROOT = Path(__file__).resolve().parent.parent


def device_for(args) -> torch.device:
    # MPS lacks some ops used in training; CUDA or CPU
    dev = pick_device(args.device)
    return dev if dev.type != "mps" else torch.device("cpu")


def output_path(cfg: dict) -> Path:
    return ROOT / (cfg["output"] or f"checkpoints/{cfg['task']}/{cfg['name']}.pt")


def run_dir(cfg: dict, kind: str) -> Path:
    path = ROOT / "runs" / cfg["task"] / f"{cfg['name']}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir(cfg: dict) -> Path:
    """Small figures the Training tab shows (LR finder, grid table): beside the checkpoint."""
    path = output_path(cfg).parent
    path.mkdir(parents=True, exist_ok=True)
    return path


def reproduce_command(module: str) -> str:
    """The command line that made this run, less a `--set output=...` (where a trial run wrote its
    file; the same command without it writes the checkpoint where the app looks)."""
    args, out, i = sys.argv[1:], [], 0
    while i < len(args):
        if args[i] == "--set" and args[i + 1:i + 2] and args[i + 1].startswith("output="):
            i += 2
            continue
        if args[i].startswith("--set=output="):
            i += 1
            continue
        out.append(args[i])
        i += 1
    return " ".join(["python -m", module] + [shlex.quote(a) for a in out])


def train_command(cfg_path, overrides: dict, output: str) -> list[str]:
    """The `training.train` command line for one run of a study: the config plus overrides."""
    import json
    cmd = [sys.executable, "-m", "training.train", "--config", str(cfg_path)]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    return cmd + ["--set", f"output={output}"]


def study_cli(doc: str, section: str, argv=None):
    """A command made of several training runs (loss study, cross-validation): its args, its
    config and the config's `section` list; no such section -> a one-line error, exit 2."""
    from .config import common_parser
    parser = common_parser(doc.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="use finished runs' checkpoints instead of retraining")
    args = parser.parse_args(argv)
    cfg, _ = load_for_cli(args, with_data=False)
    entries = cfg[section] or []
    if not entries:
        raise ConfigError(f"{args.config}: the config has no `{section}` section")
    return args, cfg, entries


def run_training(args, overrides: dict, output: str, label: str = "running:") -> None:
    """One run of a study in a subprocess: the command's config, data dir and --set options too."""
    import subprocess
    extra = (["--data-dir", args.data_dir] if args.data_dir else []) + [f"--set={o}" for o in args.overrides]
    cmd = train_command(args.config, overrides, output) + extra
    print(label, " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def public_config(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def write_checkpoint(cfg: dict, state: dict, data, *, metrics: dict, history: list, extra: dict) -> Path:
    model = build_model(cfg["arch"], **model_kwargs(cfg, data))
    if data.frozen_backbone:  # the trained classifier goes onto the pretrained backbone
        from .frozen import merge_head
        merge_head(model, state)
    else:
        model.load_state_dict(state)
    return save_checkpoint(output_path(cfg), model, arch=cfg["arch"], arch_kwargs=model_kwargs(cfg, data),
                           labels=data.labels, preprocessing=data.preprocessing, metrics=metrics, history=history,
                           config=public_config(cfg), seed=section(cfg, "train").seed,
                           half=cfg["save_half"], **extra)


def load_for_cli(args, with_data: bool = True, features: bool = True):
    """(cfg, data) for a command's parsed args; a bad config or missing data raise the one-line
    errors the command's main reports (models.errors.cli_main). With train.frozen_backbone (and
    `features`), the data are the pretrained backbone's cached features (training.frozen)."""
    from .config import data_dir, load_config
    from .datasets import load_task_data
    with as_user_error(KeyError):  # a name the config gives that the data lack (config checks raise ConfigError)
        cfg = load_config(args.config, args.overrides)
        data = load_task_data(cfg, data_dir(cfg, args.data_dir), args.download) if with_data else None
    from . import frozen
    if data is not None and features and frozen.enabled(cfg):
        backbone = build_model(cfg["arch"], **model_kwargs(cfg, data))
        data = frozen.feature_data(cfg, data, backbone, device_for(args))
    return cfg, data
