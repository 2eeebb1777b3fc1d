"""The dataset registry: the config's data.dataset (default: its task) names a loader here, and
the schema of its data section (a dataclass of training.schema.DataBase, beside its loader).
A new data set is a loader module plus one line in each table."""
from __future__ import annotations

from typing import Callable

from . import esc50, fsdd, instruments, mnist, vision
from .data_common import TaskData
from .schema import DataBase

LOADERS: dict[str, Callable[..., TaskData]] = {
    "mnist": mnist.mnist,
    "synthetic-digits": mnist.synthetic_digits,
    "esc50": esc50.esc50,
    "synthetic-tones": esc50.synthetic_tones,
    "fsdd": fsdd.fsdd,
    "tiny-imagenet": vision.tiny_imagenet,
    "cub": vision.cub,
    "synthetic-shapes": vision.synthetic_shapes,
    "instruments": instruments.instruments,
}
DATA_SCHEMAS: dict[str, type[DataBase]] = {
    "mnist": mnist.MnistData,
    "synthetic-digits": mnist.SyntheticDigitsData,
    "esc50": esc50.Esc50Data,
    "synthetic-tones": esc50.SyntheticTonesData,
    "fsdd": fsdd.FsddData,
    "tiny-imagenet": vision.TinyImagenetData,
    "cub": vision.ImageData,
    "synthetic-shapes": vision.SyntheticShapesData,
    "instruments": instruments.InstrumentsData,
}
