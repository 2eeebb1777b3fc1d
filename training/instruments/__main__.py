"""python -m training.instruments render [--config ...] [--data-dir ...]: renders the phrases of
every soundfont in the config once into the cache (see the package's docstring)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import training.instruments as package
from models.errors import cli_main
from training.config import data_dir, load_config
from training.data_common import cache_dir
from training.datasets import load_task_data


@cli_main(subprocess.CalledProcessError)
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.instruments", description=package.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render the phrases of every soundfont in the config (cached)")
    r.add_argument("--config", default="training/configs/instruments.yaml")
    r.add_argument("--data-dir")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    data = load_task_data(cfg, Path(args.data_dir) if args.data_dir else data_dir(cfg))
    print(data.description)
    print(f"cache: {cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
