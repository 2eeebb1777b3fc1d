"""python -m training.wise --config C [--set ...] --checkpoint RUN.pt [RUN2.pt ...] --alpha A --output OUT.pt

A finished run's WiSE-FT interpolation after the fact (training.weights.interpolate): the start the
trainer began from (the config's model, built as training.train builds it: same seed, output layer
from the probe) and the run's final weights, mixed at --alpha. Several runs (the same recipe, other
seeds): their mean weights are the end point (a model soup, training.weights.average), so --alpha 1
gives the soup that `train.soup` would have kept. Scores it on the config's validation
split and writes it as a checkpoint; e.g. the fold-4 selection run of a recipe with `train.wise`, for
training.calibrate to fit the temperature on (--fit-on). --alpha 1 gives back the run's own weights.
"""
from __future__ import annotations

import sys

from models.checkpoint import load_checkpoint, model_from_checkpoint
from models.errors import cli_main

from .common import device_for, load_for_cli, write_checkpoint
from .config import ConfigError, common_parser
from .engine import evaluate, seed_everything
from .model_setup import build
from .schema import section
from .weights import average, interpolate


@cli_main()
def main(argv=None) -> int:
    parser = common_parser(__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, nargs="+",
                        help="the run whose final weights are the end point (several: their mean)")
    parser.add_argument("--alpha", type=float, required=True, help="share of the trained weights, in (0, 1]")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    if not 0.0 < args.alpha <= 1.0:
        raise ConfigError(f"--alpha must be in (0, 1], got {args.alpha}")
    end = average([model_from_checkpoint(load_checkpoint(c)).state_dict() for c in args.checkpoint])
    cfg, data = load_for_cli(args)
    seed_everything(section(cfg, "train").seed)
    model = build(cfg, data)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(interpolate(start, end, args.alpha))
    device = device_for(args)
    val = evaluate(model.to(device), data.val, len(data.labels), device) if len(data.val) else None
    cfg["output"] = args.output
    metrics = {"val_accuracy": val["accuracy"] if val else None, "val_f1": val["macro_f1"] if val else None,
               "wise_alpha": args.alpha, "wise_of": " ".join(map(str, args.checkpoint)), "complete": True}
    path = write_checkpoint(cfg, {k: v.cpu() for k, v in model.state_dict().items()}, data, metrics=metrics,
                            history=[], extra={"reproduce": " ".join(["python -m training.wise", *sys.argv[1:]])})
    print(f"saved {path}: alpha {args.alpha:g} of {' + '.join(map(str, args.checkpoint))}"
          + (f"; validation accuracy {val['accuracy']:.4f}" if val else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
