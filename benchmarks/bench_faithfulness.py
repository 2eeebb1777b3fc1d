"""How long the faithfulness scores of a CAM take on this machine's CPU: prints figures, asserts nothing.

    python benchmarks/bench_faithfulness.py [--model imagenet:effnet-lite0] [--repeats 5] [--steps 20]

For one 224x224 image (scikit-image's cat) and one method: the CAM, deletion and insertion curves
(steps + 1 points each, against a blurred copy) and the ROAD drops at 10/20/50%, as
ImagePredictor.faithfulness computes them; then the same for every gradient method in a row
("compare methods").
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import apply_threads, bench_parser, fmt_ms, fmt_s, timed  # noqa: E402

TARGETS = {"one": "<= 1.5 s", "compare": "<= 5 s"}


def main(argv=None) -> int:
    parser = bench_parser(__doc__, "imagenet:effnet-lite0")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    import torch
    apply_threads(args)
    from demos.common import image_examples
    from models import load_predictor
    from models.faithfulness import GRADIENT_METHODS
    p = load_predictor(args.model, device="cpu")
    cat = next(path for path in image_examples() if path.endswith("chelsea.png"))
    print(f"{p.model_id}, {args.steps} steps per curve, torch threads {torch.get_num_threads()}")
    one = timed(lambda: p.faithfulness(cat, "GradCAM", steps=args.steps), args.repeats)
    print(f"  one method (GradCAM): {fmt_ms(one)}   target {TARGETS['one']}")
    compare = timed(lambda: [p.faithfulness(cat, m, steps=args.steps) for m in GRADIENT_METHODS],
                    max(1, args.repeats // 2))
    print(f"  compare {len(GRADIENT_METHODS)} gradient methods: {fmt_s(compare)}   target {TARGETS['compare']}")
    result, t = p.faithfulness(cat, "GradCAM", steps=args.steps)
    print(f"  GradCAM on the cat ({p.labels[t]}): deletion AUC {result.deletion_auc:.3f}, insertion AUC "
          f"{result.insertion_auc:.3f}, ROAD drop {result.road_drop}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
