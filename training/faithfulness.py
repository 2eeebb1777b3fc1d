"""python -m training.faithfulness --model imagenet:effnet-lite0 [--images 200] [--methods ...]

How faithful each CAM method's maps are over real images (models.faithfulness): for each of the
first N Tiny ImageNet validation images (64 px, shown to the model at its input size) and the
model's predicted class, the deletion and insertion areas (blurred baseline, 20 steps), the ROAD
drops, and the same for a random map at the CAM's resolution (7x7, upsampled as a CAM is) as the
baseline row; then, on the first --sanity images, the cascading-randomisation check (the rank
correlation between the map of the trained model and of the same network with its last 1, 2, 3,
4 blocks re-initialised). Prints a markdown table; writes the figures as JSON (--output).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .config import DEFAULT_DATA_DIR

METHODS = ["GradCAM", "GradCAM++", "XGradCAM", "LayerCAM"]
RANDOM = "random map (7x7)"
# the blocks re-initialised, last first, per architecture (cascading randomisation)
LAST_BLOCKS = {"effnet": ["_blocks.13", "_blocks.14", "_blocks.15", "_conv_head"]}


def tiny_imagenet_val(root: Path, n: int) -> list[Path]:
    folder = root / "tiny-imagenet-200" / "val" / "images"
    if not folder.is_dir():
        raise FileNotFoundError(f"no Tiny ImageNet validation images in {folder}")
    return sorted(folder.glob("*.JPEG"))[:n]


def study(predictor, paths: list[Path], methods: list[str], sanity_images: int, steps: int, log=print) -> dict:
    from models import cam as cam_lib
    from models import faithfulness as fa
    model, layer = predictor.model, predictor.cam_layer
    blocks = LAST_BLOCKS.get(predictor.card.get("arch") or "effnet", LAST_BLOCKS["effnet"])
    rows = {m: {"deletion": [], "insertion": [], "road": []} for m in [*methods, RANDOM]}
    sanity = {m: [] for m in methods}
    start = time.time()
    for i, path in enumerate(paths):
        x = predictor._batch([predictor.load(str(path))])
        grid = tuple(x.shape[-2:])
        _, _, (t,) = cam_lib.compute_cams(model, x, layer, methods[0], None)

        def score(b):
            with torch.inference_mode():
                return model(b).float().softmax(-1)[:, t]

        def cam_of(net, method):
            return cam_lib.upsample(cam_lib.compute_cams(net, x, layer, method, t)[1][0], grid)

        x0, baseline = x[0].cpu(), fa.blurred(x[0].cpu())
        maps = {m: cam_of(model, m) for m in methods}
        maps[RANDOM] = cam_lib.upsample(torch.from_numpy(np.random.default_rng(i).random((7, 7))).float(), grid)
        for m, heat in maps.items():
            r = fa.evaluate(score, x0, heat, baseline, steps)
            rows[m]["deletion"].append(r.deletion_auc)
            rows[m]["insertion"].append(r.insertion_auc)
            rows[m]["road"].append(r.road_drop[20])
        if i < sanity_images:
            for m in methods:
                sanity[m].append(fa.sanity(lambda net, m=m: cam_of(net, m), model, blocks)["correlations"])
        if (i + 1) % 10 == 0 or i + 1 == len(paths):
            log(f"{i + 1}/{len(paths)} images, {time.time() - start:.0f} s", flush=True)
    out = {"images": len(paths), "steps": steps, "blocks": blocks, "methods": {}}
    for m, r in rows.items():
        entry = {k: float(np.mean(v)) for k, v in r.items()}
        if m in sanity and sanity[m]:
            entry["randomisation"] = [float(v) for v in np.mean(np.array(sanity[m]), axis=0)]
        out["methods"][m] = entry
    return out


def table(result: dict) -> str:
    lines = ["| method | deletion area (lower is better) | insertion area (higher is better) | ROAD drop at 20% | "
             "rank correlation with the last 1 / 2 / 3 / 4 blocks re-initialised |", "|---|---|---|---|---|"]
    for m, e in result["methods"].items():
        corr = " / ".join(f"{c:.2f}" for c in e.get("randomisation", [])) or "-"
        lines.append(f"| {m} | {e['deletion']:.3f} | {e['insertion']:.3f} | {e['road']:+.3f} | {corr} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="imagenet:effnet-lite0")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--sanity", type=int, default=50, help="images for the randomisation check")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default="runs/faithfulness-imagenet.json")
    args = parser.parse_args(argv)
    import os
    from models import load_predictor
    from models.errors import ModelUnavailable
    try:
        root = Path(args.data_dir or os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR)
        paths = tiny_imagenet_val(root, args.images)
        predictor = load_predictor(args.model, device="cpu")
    except (FileNotFoundError, ModelUnavailable, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = study(predictor, paths, args.methods, args.sanity, args.steps, log=lambda *a, **k: print(*a, file=sys.stderr, **k))
    result["model"] = predictor.model_id
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(f"{predictor.model_id}, {result['images']} Tiny ImageNet validation images, predicted class; "
          f"randomisation on the first {min(args.sanity, len(paths))}")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
