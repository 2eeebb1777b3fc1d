"""python -m training.baselines --config training/configs/<task>.yaml

Majority-class and uniform-random scores on the test split: the floor any model must beat.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from models.artifacts import side_file

from models.errors import cli_main

from .common import artifacts_dir, load_for_cli
from .config import common_parser
from .metrics import confusion_matrix, summary
from .schema import section


def baselines(train_labels: np.ndarray, test_labels: np.ndarray, num_classes: int, seed: int = 0) -> dict:
    majority = int(np.bincount(train_labels, minlength=num_classes).argmax())
    rng = np.random.default_rng(seed)
    preds = {"majority": np.full_like(test_labels, majority), "uniform_random": rng.integers(0, num_classes, len(test_labels))}
    return {name: summary(confusion_matrix(test_labels, p, num_classes)) for name, p in preds.items()}


@cli_main()
def main(argv=None) -> int:
    args = common_parser(__doc__.splitlines()[0]).parse_args(argv)
    cfg, data = load_for_cli(args)
    result = baselines(data.train.tensors[1].numpy(), data.test.tensors[1].numpy(), len(data.labels),
                       section(cfg, "train").seed)
    side_file(artifacts_dir(cfg), cfg["name"], "baselines").write_text(json.dumps(result, indent=1))
    for name, m in result.items():
        print(f"{name:15s} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
