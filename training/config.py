"""Task configs: YAML files under training/configs/, with `--set key.sub=value` overrides."""
from __future__ import annotations

import argparse
import copy
import os
from pathlib import Path

import yaml

REQUIRED = ("task", "arch", "model", "data", "optim", "train")
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


class ConfigError(ValueError):
    pass


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
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ConfigError(f"config {path} lacks {missing}")
    cfg.setdefault("name", cfg["arch"])
    cfg["_path"] = str(path)
    return cfg


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
