"""Task configs: YAML files under training/configs/, with `--set key.sub=value` overrides."""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
from pathlib import Path

import yaml

from . import schema
from .schema import ConfigError  # noqa: F401  (re-exported: callers catch it from here)

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# the sections a "section.key" override (--set, grid, folds, study) may name
OVERRIDABLE = ("model", "data", "optim", "train", "audio", "scheduler", "lr_finder")


def set_dotted(cfg: dict, key: str, value) -> None:
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def get_dotted(cfg: dict, key: str, default=None):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def dataset_name(cfg: dict) -> str:
    """The config's data set: data.dataset, or its task when the config names none."""
    return (cfg.get("data") or {}).get("dataset") or cfg.get("task")


def _data_schema(cfg: dict):
    from .dataset_registry import DATA_SCHEMAS, LOADERS
    name = dataset_name(cfg)
    if name not in LOADERS:
        raise ConfigError(f"{cfg.get('_path', 'config')}: unknown dataset {name!r}; known: {', '.join(sorted(LOADERS))}")
    return DATA_SCHEMAS[name]  # every data set has one (tests/test_structure.py)


def _audio_keys() -> set[str]:
    from models.audio_spec import AudioSpec
    return {f.name for f in dataclasses.fields(AudioSpec)}


def _section_keys(cfg: dict, section: str) -> set[str] | None:
    """The keys a section takes; None: any (the model section's are its architecture's kwargs)."""
    if section == "data":
        return {f.name for f in dataclasses.fields(_data_schema(cfg))}
    if section == "audio":
        return _audio_keys()
    cls = schema.hints(schema.Config).get(section)
    return {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else None


def _check_override_key(cfg: dict, key: str, where: str, source: str) -> None:
    """A dotted key of a grid, fold or study must name a key the config schema knows."""
    section, _, rest = key.partition(".")
    if section not in OVERRIDABLE or not rest:
        raise ConfigError(f"{source}: {where} names {key!r}; it must be <section>.<key>, section one of {OVERRIDABLE}")
    known = _section_keys(cfg, section)
    if known is not None and rest.split(".")[0] not in known:
        raise ConfigError(f"{source}: {where} names unknown key {section}.{rest.split('.')[0]}")


def resolve(cfg: dict, source: str | None = None) -> dict:
    """Validate `cfg` against the schema (training/schema.py) and fill in every default, in place;
    the same dict back. Idempotent: entry points that take a config dict (tests, studies) call it too."""
    source = source or cfg.get("_path") or "config"
    private = {k: v for k, v in cfg.items() if k.startswith("_")}
    top = schema.check(schema.Config, {k: v for k, v in cfg.items() if not k.startswith("_")}, "", source)
    if top.grid is not None:
        axes = {k: v for k, v in top.grid.items() if "." in k}
        for key in axes:
            _check_override_key(cfg, key, "grid", source)
        settings = schema.check(schema.Grid, {k: v for k, v in top.grid.items() if k not in axes}, "grid", source)
        top.grid = {**schema.as_dict(settings), **axes}
    for i, fold in enumerate(top.folds or []):
        for key in fold:
            _check_override_key(cfg, key, f"folds[{i}]", source)
    for i, run in enumerate(top.study or []):
        for key in (run.get("set") or {}):
            _check_override_key(cfg, key, f"study[{i}].set", source)
    top.name = top.name or top.arch
    resolved = schema.as_dict(top)
    cfg.clear()
    cfg.update(resolved, **private)
    return resolve_data(cfg, source)


def resolve_data(cfg: dict, source: str | None = None) -> dict:
    """The part of `resolve` a data loader needs (data, train and audio sections), in place: what
    training.datasets.load_task_data calls, so a test may hand it just {task, data}."""
    source = source or cfg.get("_path") or "config"
    cfg["data"] = schema.as_dict(schema.check(_data_schema(cfg), cfg.get("data"), "data", source))
    cfg["train"] = schema.as_dict(schema.check(schema.Train, cfg.get("train"), "train", source))
    cfg["audio"] = cfg.get("audio")
    if cfg["audio"] is not None:
        unknown = sorted(set(cfg["audio"]) - _audio_keys())
        if unknown:
            raise ConfigError(f"{source}: unknown key audio.{unknown[0]} (known: {', '.join(sorted(_audio_keys()))})")
    return cfg


def resolve_stored(config: dict, source: str) -> dict:
    """A copy of the config a checkpoint stores, resolved: a run from before the schema stored only
    the keys its file named, and gets the defaults it trained with."""
    return resolve(copy.deepcopy(dict(config or {})), source)


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config {path} not found")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"config {path} must be a mapping")
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        set_dotted(cfg, key.strip(), yaml.safe_load(raw))
    cfg["_path"] = str(path)
    return resolve(cfg, str(path))


def data_dir(cfg: dict, cli_value: str | None = None) -> Path:
    """--data-dir wins, then DATA_DIR, then ../shared/data beside the checkout."""
    return Path(cli_value or os.environ.get("DATA_DIR") or cfg.get("data", {}).get("root") or DEFAULT_DATA_DIR)


def common_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="training/configs/<task>.yaml")
    parser.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or ../shared/data)")
    parser.add_argument("--download", action="store_true", help="download the data set if it is missing")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=2")
    parser.add_argument("--device", default=None)
    return parser


def copy_cfg(cfg: dict) -> dict:
    return copy.deepcopy(cfg)
