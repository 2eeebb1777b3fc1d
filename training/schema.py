"""The config schema: each section of training/configs/<task>.yaml as a dataclass, every default
stated here once (a data set's own keys: beside its loader, registered in training/dataset_registry.py).

`check(cls, raw, where, source)` turns a section's mapping into the dataclass: an unknown key, a
missing required one or a value of the wrong type is a one-line ConfigError naming the key and
the file. Code after it reads `cfg["train"]["seed"]`, never `.get("seed", 0)`.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from models.errors import UserError


class ConfigError(UserError, ValueError):
    """A config a user wrote is wrong: the message is one line naming the key and the file."""


def _simple_types(annotation) -> tuple[type, ...]:
    """The plain types a field's annotation allows (int, float, bool, str, list, dict, None);
    () when it allows anything."""
    if annotation is Any:
        return ()
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        out = ()
        for arg in typing.get_args(annotation):
            allowed = _simple_types(arg)
            if not allowed:
                return ()
            out += allowed
        return out
    if annotation is None or annotation is type(None):
        return (type(None),)
    return (origin or annotation,)


def _coerce(value, allowed: tuple[type, ...], key: str, source: str):
    if not allowed or isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed):
        return value
    if int in allowed and isinstance(value, float) and value.is_integer():
        return int(value)  # --set train.epochs=2.0
    if bool in allowed and value in (0, 1) and not isinstance(value, bool):
        return bool(value)  # hflip: 1
    if float in allowed and not isinstance(value, bool):
        try:  # YAML reads 1e-3 as a string and 3 as an int: both are numbers to a float key
            return float(value)
        except (TypeError, ValueError):
            pass
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ConfigError(f"{source}: {key} must be {names}, not {value!r}")


@functools.cache
def hints(cls) -> dict:
    """A schema class's field types (resolved once: the annotations are strings here)."""
    return typing.get_type_hints(cls)


def check(cls, raw, where: str, source: str):
    """`raw` (a mapping or None) as an instance of the dataclass `cls`, defaults filled in."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where or 'the config'} must be a mapping, not {raw!r}")
    types_ = hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(fields))})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: {prefix}{name} is required")
            continue
        value = raw[name]
        sub = types_[name]
        if dataclasses.is_dataclass(sub):
            values[name] = check(sub, value, prefix + name, source)
        else:
            values[name] = _coerce(value, _simple_types(sub), prefix + name, source)
    return cls(**values)


def as_dict(section) -> dict:
    return dataclasses.asdict(section)


def section(cfg: dict, name: str):
    """The config's section `name` ("train", "optim", "scheduler", "lr_finder") as its dataclass:
    typed reads, defaults filled in, for a loaded config or a partial dict a test wrote."""
    cls = hints(Config)[name]
    return check(cls, cfg.get(name), name, cfg.get("_path") or "config")


@dataclass
class Optim:
    lr: float
    name: str = "adamw"              # adamw, adam, sgd or adadelta
    weight_decay: float = 0.0
    momentum: float = 0.9            # sgd only
    pretrained_lr_scale: float | None = None  # pretrained parameters train at lr x this


@dataclass
class Scheduler:
    name: str = "none"               # none, step, onecycle or cosine
    step_size: int = 1
    gamma: float | None = None
    pct_start: float = 0.3


@dataclass
class Train:
    epochs: int | None = None        # required to train (training.engine.fit); other commands do without
    batch_size: int = 64
    seed: int = 0
    select: str = "best"             # best (by the validation metric) or last epoch
    select_metric: str = "accuracy"
    soup: int | None = None          # average the weights of this many runs (seeds seed, seed+1...)
    eval_test: bool = False          # test figures in every epoch's history row (curves only)
    eval_train: bool = False
    # batch augmentation (training.augment.batch_augment); 0 / false: off
    time_shift: float = 0.0
    mixup: float = 0.0
    speed: float = 0.0
    noise: float = 0.0
    eq: float = 0.0
    gain_db: float = 0.0
    hflip: bool = False
    crop_pad: int = 0
    freeze: Any = None               # parameter-name prefixes kept frozen
    ema: float | None = None
    wise: float | None = None        # keep the interpolation start + wise x (trained - start)
    wise_report: list | None = None  # validation accuracy at these interpolations, last 5 epochs
    bn_eval: bool = False
    channels_last: bool = False
    # frozen pretrained backbone (training.frozen)
    probe_init: bool = False
    frozen_backbone: bool = False
    frozen_flip: bool = False
    views: dict | None = None


@dataclass
class LrFinder:
    start: float = 1e-5
    end: float = 10.0
    steps: int = 100


@dataclass
class Grid:
    """training.grid_search's own settings; its other keys are the axes, "section.key": [values]."""
    epochs: int = 2
    val_size: int | None = None      # held out from the training split (a task trained without validation)
    train_subset: int | None = None


@dataclass
class DataBase:
    """Keys every data set takes; a data set's schema adds its own."""
    dataset: str | None = None       # the loader (training/dataset_registry.py); default: the task id
    root: str | None = None          # data root; --data-dir and $DATA_DIR win
    train_subset: int | None = None  # keep the first N training items


@dataclass
class AudioData(DataBase):
    sample_rate: int | None = None   # or in the audio section
    clip_seconds: float | None = None


@dataclass
class Config:
    task: str
    arch: str
    model: dict
    data: dict
    optim: Optim
    train: Train
    name: str | None = None          # default: arch; the checkpoint is checkpoints/<task>/<name>.pt
    audio: dict | None = None        # models.audio_spec.AudioSpec's fields
    scheduler: Scheduler = field(default_factory=Scheduler)
    lr_finder: LrFinder = field(default_factory=LrFinder)
    grid: dict | None = None         # training.grid_search: epochs, val_size, train_subset + "section.key": [values]
    folds: list | None = None        # training.cross_validate: a list of {"section.key": value} overrides
    study: list | None = None        # training.loss_study: runs of {name, output, set}
    output: str | None = None        # default: checkpoints/<task>/<name>.pt
    save_half: bool = False          # store fp16 weights (size)
    notes: Any = None
