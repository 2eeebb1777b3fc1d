"""Model card (checkpoints/<task>/<name>.md), generated from the checkpoint itself."""
from __future__ import annotations

from pathlib import Path

import torch

from models import artifacts as A
from models.registry import ROOT


def _base_lines(ckpt: dict) -> list[str]:
    """Credit and licence of a pretrained base the checkpoint builds on (it stores only what training changed)."""
    base = ckpt.get(A.BASE)
    if not base:
        return []
    from models.pretrained import BASES, FETCH_COMMAND
    known = BASES.get(base.get("name"))
    return [f"Built on the pretrained base `{base.get('name')}` (`{base.get('file')}`, sha256 `{base.get('sha256')}`): "
            f"{known.credit if known else ''}. The checkpoint holds the {base.get('stored_keys')} of the base's "
            f"{base.get('base_keys')} tensors that training changed, and the new output layer; the loader joins them "
            f"to the base (fetch it once with `{FETCH_COMMAND}`).", "",
            "Licence of the base: MIT, Copyright (c) 2022 Florian Schmid; the full notice is in "
            "`LICENSES/EfficientAT-MIT.txt`.", ""]


def render(ckpt: dict, name: str) -> str:
    m, cfg = A.metrics(ckpt), ckpt.get(A.CONFIG) or {}
    lines = [f"# {cfg.get('task', '?')}:{name}", "",
             f"Architecture `{ckpt[A.ARCH]}` {ckpt.get(A.ARCH_KWARGS, {})}; {ckpt.get(A.NUM_PARAMETERS, '?')} parameters; "
             f"labels: {', '.join(ckpt[A.LABELS][:20])}{' ...' if len(ckpt[A.LABELS]) > 20 else ''}.", "",
             *_base_lines(ckpt), "## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {A.fmt(v)} |" for k, v in m.items() if v is not None and not isinstance(v, (dict, list))]
    lines += ["", f"Data: {ckpt.get(A.DATA_DESCRIPTION, '?')}", "",
              f"Training time: {A.training_time(ckpt)}; seed {ckpt.get(A.SEED)}; code version {ckpt.get(A.CODE_VERSION)}.", "",
              "Reproduce:", "", "```", A.reproduce(ckpt), "```", ""]
    if ckpt.get(A.SANITY):
        s = ckpt[A.SANITY]
        lines += [f"First-batch check: initial loss {s['initial_loss']:.3f} vs log(C) {s['log_num_classes']:.3f}"
                  f"{'' if s.get('from_chance', True) else ' (output layer initialised by a probe)'}, "
                  f"gradient norm {s['grad_norm']:.3g}.", ""]
    if ckpt.get(A.BASELINES):
        lines += ["Baselines on the test split: " + ", ".join(
            f"{k} accuracy {v['accuracy']:.4f} / macro-F1 {v['macro_f1']:.4f}" for k, v in ckpt[A.BASELINES].items()), ""]
    hist = ckpt.get(A.HISTORY) or []
    if hist:
        keys = [k for k in hist[0] if k != "epoch"]
        lines += ["## History", "", "| epoch | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        lines += [f"| {h['epoch']} | " + " | ".join(A.fmt(h.get(k, '')) for k in keys) + " |" for h in hist]
        lines.append("")
    for key, split in (("per_class", "test"), ("val_per_class", "validation")):
        report = m.get(key)
        if report:
            lines += [f"## Per-class report ({split})", "", "| class | precision | recall | F1 | support |",
                      "|---|---|---|---|---|"]
            lines += [f"| {r['label']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {int(r['support'])} |"
                      for r in report]
            lines.append("")
    if m.get("faithfulness"):
        f = m["faithfulness"]
        lines += ["## How faithful the CAM methods are", "",
                  f"`python -m training.faithfulness --model {cfg.get('task', '?')}:{name} --card`: {f['described']}, "
                  f"the predicted class, {f['steps']} steps per curve (models/faithfulness.py); the randomisation "
                  f"check on the first {f.get('sanity_inputs', '?')}.", "", table(f), ""]
    if cfg.get("notes"):
        lines += ["## Notes", "", str(cfg["notes"]), ""]
    return "\n".join(lines)


def table(result: dict) -> str:
    """The faithfulness study's figures per CAM method (training.faithfulness)."""
    energy = any("energy" in e for e in result["methods"].values())
    head = ("| method | deletion area (lower is better) | insertion area (higher is better) | ROAD drop at 20% | "
            "rank correlation with the last 1 / 2 / 3 / 4 blocks re-initialised |")
    lines = [head + (" CAM mass inside the box |" if energy else ""), "|---|---|---|---|---|" + ("---|" if energy else "")]
    for m, e in result["methods"].items():
        corr = " / ".join(f"{c:.2f}" for c in e.get("randomisation", [])) or "-"
        cells = [f"{e[k]:.3f}" if k in e else "-" for k in ("deletion", "insertion")]
        road = f"{e['road']:+.3f}" if "road" in e else "-"
        row = f"| {m} | {cells[0]} | {cells[1]} | {road} | {corr} |"
        lines.append(row + (f" {e['energy'] * 100:.1f}% |" if "energy" in e else " - |" if energy else ""))
    return "\n".join(lines)


def write(checkpoint_path: str | Path) -> Path:
    path = Path(checkpoint_path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    out = A.side_file(path.parent, path.stem, "card")
    out.write_text(render(ckpt, path.stem))
    return out


def save_in_place(ckpt: dict, path) -> Path:
    """Rewrite a checkpoint with added figures (atomically) and regenerate its model card."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return write(path)


# --- the README's table of shipped checkpoints, generated from the checkpoints themselves

TABLE_START, TABLE_END = "<!-- checkpoints:start -->", "<!-- checkpoints:end -->"


def checkpoints_table(root: str | Path) -> str:
    """Markdown table: task, model, test accuracy / macro-F1, size, training time, reproduce command."""
    rows = ["| model id | architecture | test accuracy | test macro-F1 | size | training time | reproduce |",
            "|---|---|---|---|---|---|---|"]
    for path in sorted(Path(root).glob("*/*.pt")):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        m = A.metrics(ckpt)
        if not A.is_complete(ckpt):
            continue  # a run still training (saved every epoch) is not shipped
        acc, f1 = m.get("test_accuracy"), m.get("test_macro_f1")
        rows.append(f"| `{path.parent.name}:{path.stem}` | {ckpt[A.ARCH]} | {acc * 100:.2f}% | {f1:.4f} | "
                    f"{path.stat().st_size / 1e6:.1f} MB | {A.train_minutes(ckpt):.0f} min ({ckpt.get(A.TRAIN_DEVICE, '?')}) | "
                    f"`{A.reproduce(ckpt)}` |" if acc is not None else
                    f"| `{path.parent.name}:{path.stem}` | {ckpt[A.ARCH]} | - | - | {path.stat().st_size / 1e6:.1f} MB | - | - |")
    return "\n".join(rows)


def update_readme(readme: str | Path, root: str | Path) -> bool:
    """Rewrite the block between the markers; returns True when it changed."""
    readme = Path(readme)
    text = readme.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    new = text[:start] + "\n" + checkpoints_table(root) + "\n" + text[end:]
    readme.write_text(new)
    return new != text


if __name__ == "__main__":  # python -m training.model_card: refresh the README's checkpoint table
    changed = update_readme(ROOT / "README.md", ROOT / "checkpoints")
    print("README checkpoint table", "updated" if changed else "already up to date")
