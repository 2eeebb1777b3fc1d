"""The artifact schema: what a checkpoint holds, the files written beside it, and how its figures
read. Every writer (models.checkpoint, the trainer, the study commands) and every reader (model
card, Training tab, the app's model panels, benchmarks) names fields and files through here.
"""
from __future__ import annotations

from pathlib import Path

# --- checkpoint fields (a dict of tensors and plain containers: torch.load(..., weights_only=True))
# written by models.checkpoint.save_checkpoint for every model:
STATE_DICT, ARCH, ARCH_KWARGS, LABELS, PREPROCESSING = "state_dict", "arch", "arch_kwargs", "labels", "preprocessing"
METRICS, HISTORY, CONFIG, SEED, CODE_VERSION = "metrics", "history", "config", "seed", "code_version"
BASE = "base"                      # the pretrained base a checkpoint stores only the changes to (models.pretrained)
# added by the trainer (training.train) and the commands that score a checkpoint afterwards:
REPRODUCE = "reproduce"            # the command line that made it
TRAIN_SECONDS, TRAIN_DEVICE = "train_seconds", "train_device"
DATA_DESCRIPTION = "data_description"
NUM_PARAMETERS = "num_parameters"
SANITY = "sanity"                  # the first-batch check
BASELINES = "baselines"            # training.baselines on the test split
CONFUSION_MATRIX = "confusion_matrix"
# keys of METRICS: test_accuracy, test_macro_f1, test_loss, best_epoch, val_accuracy, val_f1, split,
# complete (False while a run is still training), per_class, val_per_class (training.evaluate),
# temperature and ece_* (training.calibrate), pointing_game* (training.pointing_game), faithfulness.

# --- files beside checkpoints/<task>/<name>.pt, by kind; {name} is the checkpoint's stem
SIDE_FILES = {
    "card": "{name}.md",                           # training.model_card
    "lr_finder": "{name}_lr_finder.json",          # training.lr_finder
    "lr_finder_plot": "{name}_lr_finder.png",
    "grid": "{name}_grid.md",                      # training.grid_search
    "grid_table": "{name}_grid.csv",
    "baselines": "{name}_baselines.json",          # training.baselines
    "cv": "{name}_cv.json",                        # training.cross_validate
    "confusion": "{name}_confusion.csv",           # training.evaluate
    "confusion_plot": "{name}_confusion.png",
    "comparison": "comparison_{name}.md",          # training.compare ({name}: the comparison's)
    "comparison_data": "comparison_{name}.json",
    "loss_study": "loss_study.json",               # training.loss_study (one per task folder)
}
COMPARISON_PREFIX = "comparison_"


def side_file(folder: str | Path, name: str, kind: str) -> Path:
    """The path of a side file: side_file("checkpoints/mnist", "cnn", "lr_finder")."""
    return Path(folder) / SIDE_FILES[kind].format(name=name)


def metrics(ckpt: dict) -> dict:
    return ckpt.get(METRICS) or {}


def is_complete(ckpt: dict) -> bool:
    """False for a run still training (the trainer saves every epoch): not shipped, not promoted."""
    return bool(metrics(ckpt).get("complete", True))


def train_minutes(ckpt: dict) -> float:
    return ckpt.get(TRAIN_SECONDS, 0) / 60


def training_time(ckpt: dict) -> str:
    return f"{train_minutes(ckpt):.1f} min on {ckpt.get(TRAIN_DEVICE, '?')}"


def reproduce(ckpt: dict) -> str:
    return ckpt.get(REPRODUCE, "?")


def test_score(m: dict, bold: bool = False) -> str | None:
    """"test accuracy 93.0%, macro-F1 0.929": the headline the app's model panels show; None untested."""
    acc = m.get("test_accuracy")
    if not isinstance(acc, float):
        return None
    star = "**" if bold else ""
    return f"test accuracy {star}{acc * 100:.1f}%{star}, macro-F1 {m.get('test_macro_f1', float('nan')):.3f}"


def pointing_game(m: dict, bold: bool = False) -> str | None:
    """The CAM pointing game's headline (models scored on boxes: CUB, ESC-50 scenes)."""
    if m.get("pointing_game") is None:
        return None
    star = "**" if bold else ""
    return (f"CAM pointing game on the test boxes: {star}{m['pointing_game'] * 100:.1f}%{star} "
            f"({m.get('pointing_game_method', '')}; centre baseline {m.get('pointing_game_centre_baseline', 0) * 100:.1f}%)")


def fmt(value) -> str:
    """A figure in a table: floats to 4 decimals."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)
