"""Command line: python -m models.predict --model MODEL_ID [--top K] FILE...

Prints one JSON object per file: {"file": ..., "top": [[label, prob], ...]}.
A file that cannot be read gets a one-line message on stderr; the exit code is then 2
(after the good files were printed).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import InputError, cli_main, one_line
from .factory import load_predictor
from .registry import model_ids


@cli_main()
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.predict", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="imagenet", help=f"model id, one of: {', '.join(model_ids())}")
    parser.add_argument("--top", type=int, default=5, help="number of labels to print (default 5)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    # one line per bad file: the loaders log a decoder's own words (a server keeps them), left out here
    logging.getLogger("models").setLevel(logging.ERROR)

    predictor = load_predictor(args.model, args.device)  # unknown: UnknownModel; untrained: ModelUnavailable
    failed = False
    for path in args.files:
        try:
            top = predictor.predict(path, top_k=max(1, args.top))
        except InputError as exc:
            print(f"error: {path}: {one_line(exc)}", file=sys.stderr)
            failed = True
            continue
        print(json.dumps({"file": path, "top": [[label, round(p, 6)] for label, p in top.items()]}), flush=True)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
