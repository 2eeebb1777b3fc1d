"""python -m training.faithfulness --model imagenet:effnet-lite0|cub:effnet-lite0|esc50 [--images N] [--methods ...]

How faithful each CAM method's maps are over real data (models.faithfulness), for the model's
predicted class of each input:
- imagenet: the first N Tiny ImageNet validation images (64 px, shown at the model's input size),
  removed pixels from a blurred copy;
- cub: N CUB test images spread evenly over the test list (every class), blurred copy; also the
  energy-based pointing game (Wang et al. 2020): the share of the map's mass inside the bird's box,
  for the map of the true class, next to a centred Gaussian's share (the centre baseline) and a
  random map's;
- esc50: the fold-5 clips (N of them), on the model's log-mel input, removed cells set to the
  clip's noise floor.
Per method: the deletion and insertion areas (20 steps), the ROAD drop at 20%, and the same for a
random map at the CAM's resolution (upsampled as a CAM is) as the baseline row; then, on the first
--sanity inputs, the cascading-randomisation check (the rank correlation between the map of the
trained model and of the same network with its last 1, 2, 3, 4 blocks re-initialised). Prints a
markdown table; writes the figures as JSON (--output) and, with --card, into the checkpoint's
metrics and model card.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from models import artifacts as A
from models.faithfulness import GRADIENT_METHODS as METHODS

from models.errors import as_user_error, cli_main

from .config import DEFAULT_DATA_DIR
from .model_card import save_in_place, table

RANDOM = "random map"
CENTRE = "centre (Gaussian)"
# the blocks re-initialised, last first, per architecture (cascading randomisation)
LAST_BLOCKS = {"effnet": ["_blocks.13", "_blocks.14", "_blocks.15", "_conv_head"],
               "audio-mn": ["features.13", "features.14", "features.15", "features.16"]}


@dataclass
class Probe:
    """One input as the study sees it: the model's input (x), the space the curves perturb (space:
    the same tensor for an image, the log-mel after the front end for a sound), its baseline, the
    scorer of perturbed copies (a context: sound models score through a hook), and for CUB the box
    of the bird on the model's grid and the true class."""
    x: torch.Tensor
    space: torch.Tensor
    baseline: torch.Tensor
    scorer: Callable
    box: tuple | None = None
    true: int | None = None
    extra: dict = field(default_factory=dict)


def tiny_imagenet_val(root: Path, n: int) -> list[Path]:
    folder = root / "tiny-imagenet-200" / "val" / "images"
    if not folder.is_dir():
        raise FileNotFoundError(f"no Tiny ImageNet validation images in {folder}")
    return sorted(folder.glob("*.JPEG"))[:n]


def cub_test(root: Path, n: int, labels: list[str]) -> list[tuple[Path, int, tuple]]:
    """n test images spread evenly over the official test list: (path, class index, box x, y, w, h)."""
    from .vision import cub_folder, read_cub
    table = read_cub(cub_folder(root))
    index = {name: i for i, name in enumerate(labels)}
    items = [(p, index[table["names"][k]], box) for p, k, box, train
             in zip(table["paths"], table["labels"], table["boxes"], table["is_train"]) if not train]
    picks = np.linspace(0, len(items) - 1, min(n, len(items))).round().astype(int)
    return [items[i] for i in picks]


def esc50_fold(root: Path, n: int, fold: int = 5) -> list[Path]:
    from .esc50 import read_esc50_meta
    folder = root / "esc50"
    rows, _ = read_esc50_meta(folder)
    return [folder / "audio" / r["filename"] for r in rows if int(r["fold"]) == fold][:n]


def image_probe(predictor, path, box=None, true=None) -> Probe:
    from models import faithfulness as fa
    image = predictor.load(str(path))
    x = predictor._batch([image])
    size = x.shape[-1]
    grid_box = None
    if box is not None:  # the image is resized whole onto the model's square grid
        sx, sy = size / image.width, size / image.height
        grid_box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)

    def scorer(t):
        def score(b):
            with torch.inference_mode():
                return predictor.model(b).float().softmax(-1)[:, t]
        return nullcontext(score)
    return Probe(x, x[0].cpu(), fa.blurred(x[0].cpu()), scorer, grid_box, true)


def sound_probe(predictor, path) -> Probe:
    from models import faithfulness as fa
    from models.audio_predictor import input_scorer
    win = predictor._windows(predictor.load(path))[0][:1]  # an ESC-50 clip is one window
    x = torch.from_numpy(win).to(predictor.device)
    with torch.inference_mode():
        spec = predictor.model.frontend(x)[0].cpu()
    return Probe(x, spec, fa.noise_floor(spec),
                 lambda t: input_scorer(predictor.model, predictor.activate, t, win.shape[1]))


def energy_in_box(heat: np.ndarray, box: tuple) -> float:
    """Share of the map's mass inside the box (x, y, w, h on the map's grid; cells whose centre is in)."""
    h, w = heat.shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    inside = (xs >= box[0]) & (xs <= box[0] + box[2]) & (ys >= box[1]) & (ys <= box[1] + box[3])
    total = float(heat.sum())
    return float(heat[inside].sum() / total) if total > 0 else 0.0


def centre_map(shape: tuple[int, int]) -> np.ndarray:
    """The centre baseline as a map: a Gaussian at the centre, a quarter of each side wide."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    return np.exp(-0.5 * (((xs - w / 2) / (w / 4)) ** 2 + ((ys - h / 2) / (h / 4)) ** 2)).astype(np.float32)


def study(predictor, probes: list[Callable[[], Probe]], methods: list[str], sanity_images: int, steps: int,
          log=print) -> dict:
    from models import cam as cam_lib
    from models import faithfulness as fa
    model, layer = predictor.model, predictor.cam_layer
    arch = (predictor.card.get("config") or {}).get("arch") or "effnet"
    if arch not in LAST_BLOCKS:
        raise ValueError(f"no blocks to re-initialise are known for {arch}: add them to LAST_BLOCKS")
    blocks = LAST_BLOCKS[arch]
    rows = {m: {"deletion": [], "insertion": [], "road": [], "energy": []} for m in [*methods, RANDOM]}
    rows[CENTRE] = {"energy": []}
    sanity = {m: [] for m in methods}
    start = time.time()
    for i, make in enumerate(probes):
        p = make()
        grid = tuple(p.space.shape[-2:])

        def cam_of(net, method, t):
            _, cams, _ = cam_lib.compute_cams(net, p.x, layer, method, t)
            cam = cams[0].float()
            return cam_lib.upsample(cam / cam.max() if cam.max() > 0 else cam, grid), tuple(cam.shape)

        with torch.inference_mode():
            t = int(predictor.activate(model(p.x))[0].argmax())
        maps, cam_shape = {}, None
        for m in methods:
            maps[m], cam_shape = cam_of(model, m, t)
        rng = np.random.default_rng(i)
        maps[RANDOM] = cam_lib.upsample(torch.from_numpy(rng.random(cam_shape)).float(), grid)
        with p.scorer(t) as score:
            for m, heat in maps.items():
                r = fa.evaluate(score, p.space, heat, p.baseline, steps)
                rows[m]["deletion"].append(r.deletion_auc)
                rows[m]["insertion"].append(r.insertion_auc)
                rows[m]["road"].append(r.road_drop[20])
        if p.box is not None:  # the true class's map, wherever it is: the bird, not the guess
            for m in methods:
                heat = maps[m] if p.true == t else cam_of(model, m, p.true)[0]
                rows[m]["energy"].append(energy_in_box(heat, p.box))
            rows[RANDOM]["energy"].append(energy_in_box(maps[RANDOM], p.box))
            rows[CENTRE]["energy"].append(energy_in_box(centre_map(grid), p.box))
        if i < sanity_images:
            for m in methods:
                sanity[m].append(fa.sanity(lambda net, m=m: cam_of(net, m, t)[0], model, blocks)["correlations"])
        if (i + 1) % 10 == 0 or i + 1 == len(probes):
            log(f"{i + 1}/{len(probes)} inputs, {time.time() - start:.0f} s", flush=True)
    out = {"inputs": len(probes), "steps": steps, "blocks": blocks, "sanity_inputs": min(sanity_images, len(probes)),
           "methods": {}}
    for m, r in rows.items():
        entry = {k: float(np.mean(v)) for k, v in r.items() if v}
        if m in sanity and sanity[m]:
            entry["randomisation"] = [float(v) for v in np.mean(np.array(sanity[m]), axis=0)]
        if entry:
            out["methods"][m] = entry
    return out


def inputs_for(predictor, root: Path, n: int) -> tuple[list[Callable[[], Probe]], str]:
    """The study's inputs for the model's task, each made when it is reached; and their description."""
    task = predictor.model_id.split(":")[0]
    if task == "cub":
        items = cub_test(root, n, predictor.labels)
        return ([lambda it=it: image_probe(predictor, it[0], it[2], it[1]) for it in items],
                f"{len(items)} CUB test images (spread over the test list)")
    if task == "esc50":
        paths = esc50_fold(root, n)
        return [lambda p=p: sound_probe(predictor, p) for p in paths], f"{len(paths)} ESC-50 fold-5 clips"
    paths = tiny_imagenet_val(root, n)
    return [lambda p=p: image_probe(predictor, p) for p in paths], f"{len(paths)} Tiny ImageNet validation images"


@cli_main()
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="imagenet:effnet-lite0")
    parser.add_argument("--images", type=int, default=200, help="inputs (images or clips)")
    parser.add_argument("--sanity", type=int, default=50, help="inputs for the randomisation check")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None, help="JSON of the figures (default runs/faithfulness-<task>.json)")
    parser.add_argument("--card", action="store_true", help="also write the figures into the checkpoint and its card")
    args = parser.parse_args(argv)
    import os
    from models import load_predictor
    root = Path(args.data_dir or os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR)
    with as_user_error(KeyError, ValueError):  # an unknown model, a data folder that is not the task's
        predictor = load_predictor(args.model, device="cpu")
        probes, described = inputs_for(predictor, root, args.images)
    result = study(predictor, probes, args.methods, args.sanity, args.steps,
                   log=lambda *a, **k: print(*a, file=sys.stderr, **k))
    result.update(model=predictor.model_id, described=described)
    output = Path(args.output or f"runs/faithfulness-{predictor.model_id.split(':')[0]}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1))
    print(f"{predictor.model_id}, {described}, predicted class; randomisation on the first "
          f"{min(args.sanity, len(probes))}")
    print(table(result))
    if args.card:
        from models.registry import parse_model_id
        task, entry = parse_model_id(predictor.model_id)
        record(task.checkpoint_path(entry.name), result)
    return 0


def record(path, result: dict) -> Path:
    """The figures into the checkpoint's metrics (`faithfulness`) and its model card (returned)."""
    from models.checkpoint import load_checkpoint
    ckpt = load_checkpoint(path)
    ckpt[A.METRICS]["faithfulness"] = {k: result[k] for k in ("described", "steps", "sanity_inputs", "methods")}
    card = save_in_place(ckpt, path)
    print(f"wrote {path} and {card}")
    return card


if __name__ == "__main__":
    sys.exit(main())
