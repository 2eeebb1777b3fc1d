"""What every training command shares: model building, device, run folders, checkpoint writing."""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import torch

from models.architectures import build_model
from models.checkpoint import save_checkpoint
from models.device import pick_device

ROOT = Path(__file__).resolve().parent.parent


def build(cfg: dict, data=None) -> torch.nn.Module:
    """The config's model. Audio models take the data's preprocessing (their LogMel front
    end) and, given the data, its normalisation from training statistics. On backbone
    features (train.frozen_backbone) the model to train is the classifier alone."""
    if data is not None and data.frozen_backbone:
        from .frozen import head_for
        return head_for(cfg, data)
    kwargs = dict(cfg.get("model", {}))
    if data is not None and data.preprocessing.get("kind") == "audio":
        kwargs["spec"] = data.preprocessing
        kwargs["num_classes"] = len(data.labels)
    model = build_model(cfg["arch"], **kwargs)
    if data is not None and hasattr(model, "frontend") and getattr(model, "input_stats", True):
        with torch.no_grad():  # dB statistics of up to 256 training clips, spread over the set (it may be
            x = data.train.tensors[0]  # ordered by source and class)
            pick = torch.linspace(0, len(x) - 1, min(256, len(x))).round().long()
            db = model.frontend.db(x[pick]).transpose(0, 1).flatten(1)  # (C, values)
        model.frontend.set_stats(db.mean(1), db.std(1))
    if data is not None and cfg["train"].get("probe_init"):  # on waveforms (cached trunks: head_for)
        from .frozen import probe_init
        probe_init(model, data.train)
    return model


def model_kwargs(cfg: dict, data) -> dict:
    """The builder kwargs a checkpoint stores (audio models: their spec and class count)."""
    kwargs = dict(cfg.get("model", {}))
    if data.preprocessing.get("kind") == "audio":
        kwargs.update(spec=data.preprocessing, num_classes=len(data.labels))
    return kwargs


def device_for(args) -> torch.device:
    # MPS lacks some ops used in training; CUDA or CPU
    dev = pick_device(args.device)
    return dev if dev.type != "mps" else torch.device("cpu")


def output_path(cfg: dict) -> Path:
    return ROOT / cfg.get("output", f"checkpoints/{cfg['task']}/{cfg['name']}.pt")


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
    entries = cfg.get(section) or []
    if not entries:
        print(f"error: the config has no `{section}` section", file=sys.stderr)
        raise SystemExit(2)
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
                           config=public_config(cfg), seed=int(cfg["train"].get("seed", 0)),
                           half=bool(cfg.get("save_half", False)), **extra)


def save_in_place(ckpt: dict, path) -> Path:
    """Rewrite a checkpoint with added figures (atomically) and regenerate its model card."""
    from .model_card import write as write_card
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return write_card(path)


def load_for_cli(args, with_data: bool = True, features: bool = True):
    """(cfg, data) for a command's parsed args; a bad config or missing data ends the
    command with a one-line message and exit code 2. With train.frozen_backbone (and
    `features`), the data are the pretrained backbone's cached features (training.frozen)."""
    from .config import ConfigError, data_dir, load_config
    from .datasets import load_task_data
    try:
        cfg = load_config(args.config, args.overrides)
        data = load_task_data(cfg, data_dir(cfg, args.data_dir), args.download) if with_data else None
    except (ConfigError, FileNotFoundError, KeyError) as exc:
        print(f"error: {str(exc).strip(chr(34))}", file=sys.stderr)
        raise SystemExit(2) from None
    from . import frozen
    if data is not None and features and frozen.enabled(cfg):
        try:
            backbone = build_model(cfg["arch"], **model_kwargs(cfg, data))
            data = frozen.feature_data(cfg, data, backbone, device_for(args))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return cfg, data
