"""python -m training.pointing_game --config training/configs/<cub|esc50-mn04>.yaml --checkpoint PATH [--methods ...]

For a sound model (ESC-50) the audio pointing game of training.sound_pointing instead.

CAM localisation on the CUB test images, by the pointing game (Zhang et al., 2016): a hit
when the maximum of the true class's CAM falls inside the bird's box (bounding_boxes.txt).
Prints the hit rate of each CAM method next to the centre baseline (always pointing at the
image centre) and writes them into the checkpoint's metrics and model card; the headline
`pointing_game` is the best method's, named in `pointing_game_method`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models import artifacts as A
from models.architectures import architecture
from models.cam import DEFAULT_METHOD, METHODS, layer_names
from models.checkpoint import load_checkpoint, model_from_checkpoint
from models.errors import as_user_error, cli_main
from models.image_frontend import ImageSpec, load_image
from models.predictor import ImagePredictor

from .common import device_for
from .config import common_parser, data_dir, load_config
from .model_card import save_in_place
from .vision import cub_folder, read_cub


def inside(point: tuple[float, float], box: tuple[float, float, float, float], tolerance: float = 0.0) -> bool:
    """point (x, y) in pixels; box (x, y, width, height) as bounding_boxes.txt gives it."""
    x, y = point
    bx, by, bw, bh = box
    return bx - tolerance <= x <= bx + bw + tolerance and by - tolerance <= y <= by + bh + tolerance


def peak(heatmap: np.ndarray) -> tuple[float, float]:
    """(x, y) of the heatmap's maximum (pixel centres)."""
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return int(col) + 0.5, int(row) + 0.5


def pointing_game(predictor: ImagePredictor, items: list[tuple[Path, int, tuple]], method: str,
                  batch_size: int = 16, tolerance: float = 15.0) -> dict:
    """items: (image path, true class index, box). Hit rates of the CAM peak and of the centre."""
    hits = hits_tol = centre = 0
    for start in tqdm(range(0, len(items), batch_size), desc="pointing game", disable=not sys.stderr.isatty()):
        chunk = items[start: start + batch_size]
        images = [load_image(p) for p, _, _ in chunk]
        _, heatmaps, _ = predictor.explain_batch(images, method, [k for _, k, _ in chunk])
        for img, heat, (_, _, box) in zip(images, heatmaps, chunk):
            assert heat.shape == (img.height, img.width)
            p = peak(heat)
            hits += inside(p, box)
            hits_tol += inside(p, box, tolerance)
            centre += inside((img.width / 2, img.height / 2), box)
    n = max(len(items), 1)
    return {"pointing_game": float(hits / n), f"pointing_game_tol{tolerance:g}px": float(hits_tol / n),
            "pointing_game_centre_baseline": float(centre / n), "pointing_game_images": len(items),
            "pointing_game_method": method}


@cli_main()
def main(argv=None) -> int:
    parser = common_parser(__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--methods", nargs="+", default=[DEFAULT_METHOD, "GradCAM++"],
                        choices=list(dict.fromkeys([*METHODS, "XGradCAM", "LayerCAM"])))
    parser.add_argument("--limit", type=int, default=0, help="only the first N test images")
    args = parser.parse_args(argv)
    with as_user_error(KeyError, ValueError):  # a checkpoint, config or data folder that is not what it should be
        ckpt = load_checkpoint(args.checkpoint)
        cfg = load_config(args.config, args.overrides)
        table = None if ckpt["preprocessing"].get("kind") == "audio" else read_cub(cub_folder(data_dir(cfg, args.data_dir)))
    if table is None:
        return sound_main(args, cfg, ckpt)
    index = {name: i for i, name in enumerate(ckpt["labels"])}
    items = [(p, index[table["names"][k]], box) for p, k, box, train
             in zip(table["paths"], table["labels"], table["boxes"], table["is_train"]) if not train]
    items = items[: args.limit] if args.limit else items
    predictor = ImagePredictor(Path(args.checkpoint).stem, model_from_checkpoint(ckpt), ckpt["labels"],
                               ImageSpec.from_dict(ckpt["preprocessing"]), architecture(ckpt["arch"]).cam_layer, device_for(args))
    results = {}
    for method in args.methods:
        r = results[method] = pointing_game(predictor, items, method)
        tol = next(k for k in r if k.startswith("pointing_game_tol"))
        print(f"pointing game ({method}, {len(items)} test images): {r['pointing_game'] * 100:.1f}% "
              f"(within {tol[len('pointing_game_tol'):]}: {r[tol] * 100:.1f}%); centre baseline "
              f"{r['pointing_game_centre_baseline'] * 100:.1f}%", flush=True)
    return record(ckpt, args.checkpoint, results, predictor.cam_layer)


def sound_main(args, cfg: dict, ckpt: dict) -> int:
    """The audio pointing game (training.sound_pointing) on the config's test split."""
    from models.audio_spec import AudioSpec
    from models.audio_predictor import AUDIO_METHODS, AudioPredictor
    from .datasets import load_task_data
    from . import sound_pointing
    methods = [m for m in args.methods if m in AUDIO_METHODS] or AUDIO_METHODS
    data = load_task_data(cfg, data_dir(cfg, args.data_dir))
    waves, targets = data.test.tensors[0].numpy(), data.test.tensors[1].tolist()
    if args.limit:
        waves, targets = waves[: args.limit], targets[: args.limit]
    predictor = AudioPredictor(Path(args.checkpoint).stem, model_from_checkpoint(ckpt), ckpt["labels"],
                               AudioSpec.from_dict(ckpt["preprocessing"]), architecture(ckpt["arch"]).cam_layer, device_for(args))
    results = {}
    for method in methods:
        r = results[method] = sound_pointing.play(predictor, list(waves), targets, method)
        print(f"audio pointing game ({method}, {len(targets)} test clips, event 1 s in 10 s): "
              f"{r['pointing_game'] * 100:.1f}%; random baseline {r['pointing_game_random_baseline'] * 100:.1f}% "
              f"(expected 10%)", flush=True)
    return record(ckpt, args.checkpoint, results, predictor.cam_layer)


def record(ckpt: dict, path, results: dict, layer) -> int:
    """The best method's figures (and each method's hit rate, and the CAM layer(s) they were made
    at) into the checkpoint and its card."""
    best = max(results, key=lambda m: results[m]["pointing_game"])
    metrics = ckpt[A.METRICS]
    for key in [k for k in metrics if k.startswith("pointing_game")]:  # a rerun replaces every earlier figure
        del metrics[key]
    metrics.update(results[best])
    metrics["pointing_game_cam_layers"] = " x ".join(layer_names(layer))
    for method, r in results.items():
        metrics[f"pointing_game {method}"] = r["pointing_game"]
    card = save_in_place(ckpt, path)
    print(f"best: {best} ({results[best]['pointing_game'] * 100:.1f}%); wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
