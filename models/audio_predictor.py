"""AudioPredictor: a sound model with its front end, windows for long recordings, the
spectrogram CAM, and "what the model heard" (the clip re-synthesised from only the
time-frequency regions the CAM highlights).

    p = load_predictor("esc50")
    p.predict("dog.wav")                          # {label: prob}, averaged over windows
    a = p.analyze("street.wav", method="GradCAM")  # spectrogram, CAM, timeline, heard clip
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from . import cam as cam_lib
from .audio_loading import LoadedAudio, load_audio_report
from .audio_spec import AudioSpec
from .audio_windows import fix_length, is_silent, prepare, windows
from .predictor import Predictor

# Methods that need only gradients at the CAM layer. Left out: the ScoreCAM family masks the
# *input* with upsampled activations, and SmoothGradCAM++ adds noise to it: for a sound
# model the input is the raw waveform, where neither means what it does on an image.
AUDIO_METHODS = ["GradCAM", "GradCAM++", "XGradCAM", "LayerCAM"]
# The sound models' default: it finds the sound in time as often as LayerCAM, and its maps cover the sound
# (LayerCAM's are a few sharp spots); docs/experiments.md (ESC-50, the CAM method)
AUDIO_DEFAULT_METHOD = "GradCAM"
DEFAULT_HOP_SECONDS = None  # window hop for long recordings; None: the clip length (no overlap)
HEARD_FLOOR = 0.0           # mask floor for the re-synthesis: 0 = silence where the CAM is 0
# Windows per forward pass: bounds memory on long recordings (a 5 s window's first conv map
# alone is 4 MB); up to this many, probabilities and CAM come from one forward pass.
WINDOW_BATCH = 16


@contextmanager
def _graph_from(layer: torch.nn.Module):
    """Record autograd only from `layer`'s output on: the gradient CAMs need d(score)/d(activation)
    at that layer and nothing below it, so the front end (STFT, mel) and the early convolutions
    run without a graph and the backward pass is only the head's."""
    handle = layer.register_forward_hook(lambda _m, _i, out: out.detach().requires_grad_(True), prepend=True)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def input_scorer(model: torch.nn.Module, activate, target: int, samples: int):
    """score(batch) -> p(target) for a batch of the model's inputs after its front end (log-mels,
    (B, C, mels, frames)): the model runs on silence with its front end's output replaced by the
    batch. What the faithfulness curves perturb. No CAM may run on `model` while this is open."""
    given = {}
    hook = model.frontend.register_forward_hook(lambda _m, _i, _o: given["x"])
    device = next(model.parameters()).device
    silence = torch.zeros(1, samples, device=device)

    def score(batch: torch.Tensor) -> torch.Tensor:
        given["x"] = batch.to(device)
        with torch.inference_mode():
            return activate(model(silence.expand(len(batch), -1)))[:, target]
    try:
        yield score
    finally:
        hook.remove()


@dataclass
class AudioAnalysis:
    waveform: np.ndarray          # mono, at the model's sample rate
    sample_rate: int
    probs: dict[str, float]       # overall top-k (mean over windows)
    target: str
    target_prob: float
    logmel: np.ndarray            # (n_mels, frames) in dB of the whole recording
    heatmap: np.ndarray           # (n_mels, frames) in [0, 1], same grid as logmel
    times: np.ndarray             # (frames,) seconds
    freqs: np.ndarray             # (n_mels,) Hz
    timeline: list[dict]          # per window: start, end, label, prob
    heard: np.ndarray             # same length as waveform
    silent: bool


class AudioPredictor(Predictor):
    modality = "audio"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec: AudioSpec

    def load_report(self, x) -> LoadedAudio:
        """The waveform the model analyses, with the loader's notes on it (a file read only in
        part, clipping): for a UI to show beside the result."""
        loaded = load_audio_report(x, self.spec.sample_rate)
        return replace(loaded, waveform=prepare(loaded.waveform, self.spec))

    def load(self, x) -> np.ndarray:
        return self.load_report(x).waveform

    def _windows(self, y: np.ndarray, hop_seconds: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        hop = max(1, int(round((hop_seconds or DEFAULT_HOP_SECONDS or self.spec.clip_seconds) * self.spec.sample_rate)))
        return windows(y, self.spec.clip_samples, hop, self.spec.sample_rate)

    def _window_probs(self, wins: np.ndarray) -> np.ndarray:
        out = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(wins), WINDOW_BATCH):
                out.append(self.activate(self.model(torch.from_numpy(wins[i: i + WINDOW_BATCH]).to(self.device))))
        return torch.cat(out).cpu().numpy()

    def _window_cams(self, wins: np.ndarray, method: str, target: int | None) -> tuple[np.ndarray, torch.Tensor, int]:
        """(probs per window (W, K), unnormalised CAMs (W, h, w) >= 0 for one class, that class). With no target
        the class is the overall top-1; when all windows fit in one batch the same forward pass
        gives the probabilities and the CAM."""
        probs_w = None
        if target is None and len(wins) > WINDOW_BATCH:
            probs_w = self._window_probs(wins)
            target = int(probs_w.mean(0).argmax())
        names = cam_lib.layer_names(self.cam_layer)  # the graph starts at the earliest CAM layer
        layer = self.model.get_submodule(names[0])
        probs, cams = [], []
        with self._lock, torch.inference_mode(False), torch.enable_grad(), _graph_from(layer), \
                cam_lib.cam_extractor(self.model, self.cam_layer, method) as extractor:
            for i in range(0, len(wins), WINDOW_BATCH):
                logits = self.model(torch.from_numpy(wins[i: i + WINDOW_BATCH]).to(self.device))
                p = self.activate(logits.detach())
                t = int(p.mean(0).argmax()) if target is None else target
                # unnormalised: one scale for all windows of a recording, so a window without the
                # sound does not get a map as bright as the one with it (analyze normalises the whole)
                cam = cam_lib.fuse_layers(extractor(class_idx=[t] * len(p), scores=logits, normalized=False))
                probs.append(p)
                cams.append(torch.nan_to_num(cam.detach().float(), nan=0.0, posinf=0.0).clamp_(min=0))
        if probs_w is None:
            probs_w = torch.cat(probs).cpu().numpy()
        return probs_w, torch.cat(cams), t

    def predict_probs(self, inputs: list, hop_seconds: float | None = None) -> np.ndarray:
        """(N, K): each input's class probabilities, averaged over its windows."""
        return np.stack([self._window_probs(self._windows(self.load(x), hop_seconds)[0]).mean(0) for x in inputs])

    def features(self, y: np.ndarray) -> np.ndarray:
        """Log-mel (n_mels, frames) in dB, or the model's own log (before normalisation), of a whole waveform."""
        with torch.inference_mode():
            mel = self.model.frontend.mel(torch.from_numpy(y)[None].to(self.device))
            db = self.model.frontend.compress(mel.unsqueeze(1))
        return db[0, 0].cpu().numpy()

    def faithfulness(self, x, method: str = AUDIO_DEFAULT_METHOD, target=None, steps: int | None = None):
        """How faithful the CAM of one window and class is (models.faithfulness), on the model's own
        input (its log-mel after the front end): deletion and insertion curves with removed cells set
        to the clip's noise floor, ROAD drops. The window is the one where the class is most likely
        (a clip of the model's length is one window). Returns (Faithfulness, the class id)."""
        from . import faithfulness as fa
        if method not in AUDIO_METHODS:
            raise ValueError(f"{method} is not available for sound models; choose one of {AUDIO_METHODS}")
        wins, _ = self._windows(self.load(x))
        t = self.target_index(target)
        if len(wins) > 1:
            probs_w = self._window_probs(wins)
            t = int(probs_w.mean(0).argmax()) if t is None else t
            wins = wins[int(probs_w[:, t].argmax())][None]
        win = wins[:1]
        _, cams, t = self._window_cams(win, method, t)
        with self._lock:
            with torch.inference_mode():
                spec = self.model.frontend(torch.from_numpy(win).to(self.device))[0].cpu()
            cam = cams[0] / cams[0].max() if cams[0].max() > 0 else cams[0]
            heat = cam_lib.upsample(cam, tuple(spec.shape[-2:]))
            with input_scorer(self.model, self.activate, t, win.shape[1]) as score:
                result = fa.evaluate(score, spec, heat, fa.noise_floor(spec), steps or fa.DEFAULT_STEPS)
        return result, t

    def explain(self, x, method: str = AUDIO_DEFAULT_METHOD, target=None) -> np.ndarray:
        """CAM on the recording's log-mel grid (n_mels, frames), values in [0, 1]."""
        return self.analyze(x, method, target).heatmap

    def analyze(self, x, method: str = AUDIO_DEFAULT_METHOD, target=None, top_k: int = 5,
                hop_seconds: float | None = None) -> AudioAnalysis:
        if method not in AUDIO_METHODS:
            raise ValueError(f"{method} is not available for sound models; choose one of {AUDIO_METHODS}")
        y = self.load(x)
        wins, starts = self._windows(y, hop_seconds)
        probs_w, cams, t = self._window_cams(wins, method, self.target_index(target))
        overall = probs_w.mean(0)
        padded = fix_length(y, max(len(y), self.spec.clip_samples))
        logmel = self.features(padded)
        # the whole recording's grid, as the front end makes it; each window's CAM is placed at its frames
        # (from its start, which need not be a multiple of the hop: the last window may end with the
        # recording), overlaps averaged
        frames_total, per_window = logmel.shape[1], self.spec.frames
        acc = np.zeros((self.spec.n_mels, frames_total + per_window), np.float32)
        count = np.zeros_like(acc)
        ups = F.interpolate(cams[:, None], size=(self.spec.n_mels, per_window), mode="bilinear",
                            align_corners=False)[:, 0].clamp(min=0).cpu().numpy()
        # each window's CAM weighted by its probability of the class: a window where the class is
        # absent still has a CAM normalised to 1 somewhere, which must not outshine the event
        for up, start, weight in zip(ups, starts, probs_w[:, t]):
            f0 = int(round(start * self.spec.sample_rate / self.spec.hop_length))
            acc[:, f0: f0 + per_window] += up * float(weight)
            count[:, f0: f0 + per_window] += 1
        heat = (acc / np.maximum(count, 1))[:, :frames_total]
        if heat.max() > 0:
            heat = heat / heat.max()
        from .logmel import spectrogram_axes
        times, freqs = spectrogram_axes(self.spec, frames_total)
        timeline = [{"start": float(s), "end": float(s + self.spec.clip_seconds),
                     "label": self.labels[int(p.argmax())], "prob": float(p.max())} for s, p in zip(starts, probs_w)]
        return AudioAnalysis(waveform=y, sample_rate=self.spec.sample_rate, probs=self._topk(overall, top_k),
                             target=self.labels[t], target_prob=float(overall[t]), logmel=logmel, heatmap=heat,
                             times=times, freqs=freqs, timeline=timeline, heard=self.resynthesize(y, heat),
                             silent=is_silent(y))

    def resynthesize(self, y: np.ndarray, heat: np.ndarray, floor: float = HEARD_FLOOR) -> np.ndarray:
        """Keep only the time-frequency regions the CAM highlights: the mel-grid CAM is spread
        back onto the STFT bins through the mel filterbank, multiplies the magnitude (phase
        kept), and the inverse STFT gives a clip of the input's length."""
        spec = self.spec
        fb = self.model.frontend.filterbank.detach().cpu().numpy()           # (n_freqs, n_mels)
        weights = fb / np.maximum(fb.sum(1, keepdims=True), 1e-8)           # each STFT bin: mean of its mels
        window = torch.hann_window(spec.n_fft)
        wave = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        stft = torch.stft(wave, spec.n_fft, spec.hop_length, window=window, center=True, return_complex=True)
        frames = min(stft.shape[1], heat.shape[1])
        mask = weights @ heat[:, :frames]                                   # (n_freqs, frames)
        mask = floor + (1 - floor) * np.clip(mask, 0, 1)
        return _istft(stft[:, :frames].numpy() * mask.astype(np.float32), window.numpy(), spec.hop_length, len(y))


def _istft(stft: np.ndarray, window: np.ndarray, hop: int, length: int) -> np.ndarray:
    """torch.istft(center=True, length=length) as numpy overlap-add: the same result, but
    torch's CPU istft (unfold_backward) took 100+ ms on a 5 s clip here (busy 2-core CPU),
    longer than the model; this takes about 5 ms.
    Frames are cut in hop-sized pieces, so the overlap-add is ceil(n_fft / hop) vector adds."""
    n_fft, count = len(window), stft.shape[1]
    frames = np.fft.irfft(stft.T, n=n_fft, axis=1).astype(np.float32) * window      # (frames, n_fft)
    pieces = -(-n_fft // hop)
    padded = np.zeros((count, pieces * hop), np.float32)
    padded[:, :n_fft] = frames
    win_sq = np.zeros(pieces * hop, np.float32)
    win_sq[:n_fft] = window ** 2
    out = np.zeros((count + pieces - 1) * hop, np.float32)
    envelope = np.zeros_like(out)
    for j in range(pieces):
        part = slice(j * hop, (j + 1) * hop)
        out[j * hop: j * hop + count * hop] += padded[:, part].reshape(-1)
        envelope[j * hop: j * hop + count * hop] += np.tile(win_sq[part], count)
    start = n_fft // 2  # center=True padded n_fft // 2 samples before the first frame
    out, envelope = out[start: start + length], envelope[start: start + length]
    out = out / np.where(envelope > 1e-11, envelope, 1.0)
    return np.pad(out, (0, length - len(out))).astype(np.float32, copy=False)
