"""`load_task_data(cfg, root)` -> TaskData(train, val, test, labels, preprocessing): the config's
data set, by its loader in training/dataset_registry.py (each loader lives in a module of its own
and takes (root, cfg, download))."""
from __future__ import annotations

from pathlib import Path

import torch

from .config import dataset_name, resolve_data
from .data_common import TaskData, take
from .dataset_registry import LOADERS


def load_task_data(cfg: dict, root: Path, download: bool = False) -> TaskData:
    """The config's data set; its data, train and audio sections are validated and their defaults
    filled in first (in place: an unknown data set or key is a one-line ConfigError)."""
    resolve_data(cfg)
    data = LOADERS[dataset_name(cfg)](Path(root), cfg, download=download)
    subset = cfg["data"]["train_subset"]
    if subset:
        data.train = take(data.train, torch.arange(min(int(subset), len(data.train))))
    return data
