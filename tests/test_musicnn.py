"""musicnn in PyTorch: the TensorFlow checkpoint reader, the port against the original's outputs,
the features it expects, and the audio-musicnn model through the trainer's builder."""
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from models.tf_checkpoint import CheckpointFormatError, load_tf_checkpoint, read_index

pytestmark = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                                reason="the musicnn wheel is not installed (make venv installs it)")
REFERENCE = Path(__file__).parent / "data" / "musicnn_tf_reference.npz"


def reference_inputs() -> np.ndarray:
    """The inputs the TensorFlow reference was computed on (tests/data/musicnn_tf_reference.py)."""
    path = Path(__file__).parent / "data" / "musicnn_tf_reference.py"
    spec = importlib.util.spec_from_file_location("musicnn_tf_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.inputs()


def test_the_checkpoint_reader_finds_every_musicnn_variable_with_its_shape():
    from models.musicnn import weights_dir
    prefix = str(weights_dir()) + "/"
    index = read_index(prefix)
    assert len(index) > 100  # with the Adam slots
    w = load_tf_checkpoint(prefix)
    assert not any("Adam" in k for k in w)
    assert w["conv2d/kernel"].shape == (7, 38, 1, 204) and w["conv2d_1/kernel"].shape == (7, 67, 1, 204)
    assert w["dense_1/kernel"].shape == (200, 50)
    assert sum(v.size for v in w.values()) == 792079
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in w.values())


def test_a_file_that_is_not_a_checkpoint_index_is_refused(tmp_path):
    (tmp_path / "x.index").write_bytes(b"not a table" * 10)
    with pytest.raises(CheckpointFormatError, match="not a TensorFlow checkpoint index"):
        read_index(tmp_path / "x")
    (tmp_path / "y.index").write_bytes(b"\0" * 40 + struct.pack("<Q", 0xDB4775248B80FB57))
    with pytest.raises(CheckpointFormatError):
        read_index(tmp_path / "y")


def test_the_port_gives_tensorflow_musicnns_outputs():
    from models.musicnn import pretrained_musicnn
    ref = np.load(REFERENCE)
    net = pretrained_musicnn()
    x = torch.from_numpy(reference_inputs()).transpose(1, 2)[:, None]  # (B, 1, mels, frames)
    with torch.no_grad():
        logits = net(x).numpy()
        pooled = net.features(x).numpy()
    np.testing.assert_allclose(logits, ref["logits"], atol=1e-3)
    np.testing.assert_allclose(pooled[:, 0::2], ref["max_pool"].reshape(2, -1), atol=1e-3)
    np.testing.assert_allclose(pooled[:, 1::2], ref["mean_pool"].reshape(2, -1), atol=1e-3)
    assert np.abs(logits[0] - logits[1]).max() > 1.0  # the two inputs are told apart


def test_the_front_end_computes_librosas_features_for_musicnn():
    """musicnn was trained on librosa's Slaney mels, log10(1 + 10000 power): the model's own
    front end gives the same numbers."""
    import librosa

    from models.architectures import MUSICNN_SPEC
    from models.audio_spec import AudioSpec
    from models.logmel import LogMel
    sr = 16000
    t = np.arange(3 * sr) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-t) + 0.01 * np.random.default_rng(1).standard_normal(len(t)))
    y = y.astype(np.float32)
    spec = AudioSpec.from_dict({**MUSICNN_SPEC, "clip_seconds": 3.0})
    ours = LogMel.from_spec(spec).db(torch.from_numpy(y)[None])[0, 0].numpy()
    mel = librosa.feature.melspectrogram(y=y, sr=sr, hop_length=256, n_fft=512, n_mels=96, pad_mode="reflect")
    theirs = np.log10(10000 * mel + 1)
    assert ours.shape == theirs.shape == (96, 188)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_audio_musicnn_builds_pretrained_for_new_labels_and_refuses_other_features():
    from models.architectures import MUSICNN_SPEC, build_model
    spec = {"kind": "audio", "clip_seconds": 4.0, **MUSICNN_SPEC}
    model = build_model("audio-musicnn", spec=spec, num_classes=4, pretrained=True, dropout=0.3).eval()
    assert model.body.classifier.out_features == 4 and model.body.dropout.p == 0.3
    assert not model.input_stats
    with torch.no_grad():
        out = model(torch.randn(2, 4 * 16000) * 0.1)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="n_mels"):
        build_model("audio-musicnn", spec={**spec, "n_mels": 64}, num_classes=4, pretrained=True)
    with pytest.raises(ValueError, match="audio.mel_scale"):
        build_model("audio-musicnn", spec={**spec, "mel_scale": "bark"}, num_classes=4, pretrained=True)
    with pytest.raises(ValueError, match="audio.log"):
        build_model("audio-musicnn", spec={**spec, "log": "cubic"}, num_classes=4, pretrained=True)


@pytest.mark.parametrize("mel_scale", ["htk", "slaney"])
def test_the_plots_frequency_axis_is_where_each_mel_filter_peaks(mel_scale):
    from models.audio_spec import AudioSpec
    from models.logmel import LogMel, spectrogram_axes
    spec = AudioSpec(sample_rate=16000, clip_seconds=1.0, n_mels=96, n_fft=512, hop_length=256, mel_scale=mel_scale)
    fb = LogMel.from_spec(spec).mel.mel_scale.fb.numpy()  # (n_freqs, n_mels)
    _, freqs = spectrogram_axes(spec, 10)
    peaks = fb.argmax(0) * spec.sample_rate / spec.n_fft
    bin_hz = spec.sample_rate / spec.n_fft
    assert np.all(np.abs(peaks - freqs) <= bin_hz)
    assert spec.log_unit == "dB" and AudioSpec(16000, 1.0, log="log10p").log_unit.startswith("log10")
