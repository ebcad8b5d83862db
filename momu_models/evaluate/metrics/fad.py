"""Fréchet Audio Distance with a small registry of audio embedders.

FAD (Kilgour et al., 2019) is the Fréchet distance between Gaussians fitted to the window
embeddings of all generated clips and of all reference clips (every window of every file
pooled into one set per side). Its value depends entirely on the embedder, so every result
carries the embedder's name, e.g. "FAD[vggish]" or "FAD[logmel-stats]".

Embedders (all take mono 16 kHz float audio and return one row per window):

- ``vggish``: VGGish (Hershey et al., 2017), the network the paper used through
  frechet-audio-distance (gudgud96), re-implemented here in torch and loaded from a local
  copy of the torchvggish port's weights (``vggish-10086976.pth``); never downloaded. As in
  frechet-audio-distance's defaults, the embedding is the last linear layer's output without
  its ReLU and without the AudioSet PCA/quantisation post-processing.
- ``logmel-stats``: weight-free, offline: per 0.96 s window, the mean and standard deviation
  over time of each of the 80 log-mel bins of momu_data.features.log_mel (160 values). It
  measures spectral statistics, not learned perceptual quality: not comparable with
  published FAD numbers, useful for regression tracking without downloads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from momu_data import features
from momu_data import timebase as _audio
from momu_models.evaluate.files import load_music
from momu_models.evaluate.metrics.frechet import frechet_from_features

SR = _audio.SR
VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"


class EmbedderError(Exception):
    """An embedder cannot be built or used; the message is a one-line reason."""


# ---- VGGish front end (numpy port of the reference mel_features.py / vggish_input.py) ----

VGGISH_WINDOW_S = 0.025
VGGISH_HOP_S = 0.010
VGGISH_MEL_BANDS = 64
VGGISH_FMIN = 125.0
VGGISH_FMAX = 7500.0
VGGISH_LOG_OFFSET = 0.01
VGGISH_EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames per example, examples do not overlap


def _frame(x: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Frames [n, window, ...] without padding (the reference drops a partial tail)."""
    n = 1 + (x.shape[0] - window) // hop if x.shape[0] >= window else 0
    if n <= 0:
        return np.zeros((0, window) + x.shape[1:], dtype=x.dtype)
    shape = (n, window) + x.shape[1:]
    strides = (x.strides[0] * hop,) + x.strides
    return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)


def _hz_to_mel_htk(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def vggish_mel_matrix(
    n_spec_bins: int,
    sr: int = SR,
    n_mels: int = VGGISH_MEL_BANDS,
    fmin: float = VGGISH_FMIN,
    fmax: float = VGGISH_FMAX,
) -> np.ndarray:
    """[n_spec_bins, n_mels] triangular filters in HTK mel, as the reference builds them
    (triangles in the mel domain, unnormalised, the DC bin zeroed)."""
    spec_mel = _hz_to_mel_htk(np.linspace(0.0, sr / 2.0, n_spec_bins))
    edges = np.linspace(_hz_to_mel_htk(fmin), _hz_to_mel_htk(fmax), n_mels + 2)
    w = np.empty((n_spec_bins, n_mels))
    for i in range(n_mels):
        lo, c, hi = edges[i : i + 3]
        w[:, i] = np.maximum(0.0, np.minimum((spec_mel - lo) / (c - lo), (hi - spec_mel) / (hi - c)))
    w[0, :] = 0.0
    return w


def vggish_log_mel(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Log-mel [frames, 64]: 25 ms periodic-Hann frames every 10 ms, |FFT| (512 points),
    64 HTK mel bands over 125-7500 Hz, log(mel + 0.01)."""
    if sr != SR:
        raise ValueError(f"VGGish expects {SR} Hz audio, got {sr} Hz; resample first")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    win = int(round(sr * VGGISH_WINDOW_S))
    hop = int(round(sr * VGGISH_HOP_S))
    n_fft = 2 ** int(np.ceil(np.log2(win)))
    frames = _frame(y, win, hop)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    mag = np.abs(np.fft.rfft(frames * window, n_fft))
    mel = mag @ vggish_mel_matrix(mag.shape[1], sr)
    return np.log(mel + VGGISH_LOG_OFFSET)


def vggish_examples(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Non-overlapping 0.96 s log-mel patches [n, 1, 96, 64] (float32); audio shorter
    than 0.975 s gives none."""
    lm = vggish_log_mel(y, sr)
    ex = _frame(lm, VGGISH_EXAMPLE_FRAMES, VGGISH_EXAMPLE_FRAMES)
    return np.ascontiguousarray(ex[:, None], dtype=np.float32)


# ---- VGGish network ---------------------------------------------------------------------


def _torch():
    import torch

    return torch


def build_vggish(final_relu: bool = False):
    """The VGGish network with the torchvggish port's module layout (so its state dict loads
    as is): features = conv64-pool-conv128-pool-conv256x2-pool-conv512x2-pool,
    embeddings = 12288 -> 4096 -> 4096 -> 128. Input [n, 1, 96, 64] -> output [n, 128]."""
    torch = _torch()
    nn = torch.nn

    class VGGish(nn.Module):
        def __init__(self):
            super().__init__()
            layers: list = []
            c_in = 1
            for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
                if v == "M":
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                else:
                    layers += [nn.Conv2d(c_in, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                    c_in = v
            self.features = nn.Sequential(*layers)
            emb: list = [
                nn.Linear(512 * 4 * 6, 4096),
                nn.ReLU(True),
                nn.Linear(4096, 4096),
                nn.ReLU(True),
                nn.Linear(4096, 128),
            ]
            if final_relu:
                emb.append(nn.ReLU(True))
            self.embeddings = nn.Sequential(*emb)

        def forward(self, x):
            x = self.features(x)  # [n, 512, 6, 4]
            # The weights come from TensorFlow, which flattens channels-last: [n, 6, 4, 512].
            x = x.permute(0, 2, 3, 1).contiguous().flatten(1)
            return self.embeddings(x)

    return VGGish()


def _map_vggish_keys(sd: dict) -> dict:
    """Accept the torchvggish file as is, a torchaudio VGGish state dict
    (features_network / embedding_network), a wrapped {"state_dict": ...} and "module."
    prefixes; drop the PCA post-processor's tensors, which FAD does not use."""
    for wrap in ("state_dict", "model"):
        if isinstance(sd.get(wrap), dict):
            sd = sd[wrap]
    out = {}
    for k, v in sd.items():
        if k.startswith("module."):
            k = k[len("module.") :]
        if k.startswith(("pproc.", "_pca")) or "pca_" in k:
            continue
        k = k.replace("features_network.", "features.").replace("embedding_network.", "embeddings.")
        out[k] = v
    return out


def load_vggish(weights, final_relu: bool = False, device: str = "cpu"):
    """VGGish in eval mode with weights from a local file (never downloads)."""
    torch = _torch()
    if weights is None:
        raise EmbedderError(
            f"the vggish embedder needs --vggish-weights PATH (vggish-10086976.pth from {VGGISH_URL}); "
            "momu never downloads weights"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise EmbedderError(f"VGGish weights not found: {path} (download vggish-10086976.pth from {VGGISH_URL})")
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or non-tensor pickles
        raise EmbedderError(f"cannot load VGGish weights {path}: {type(e).__name__}: {e}") from None
    if not isinstance(sd, dict):
        raise EmbedderError(f"{path} is not a state dict (got {type(sd).__name__})")
    model = build_vggish(final_relu)
    missing, unexpected = [], []
    try:
        res = model.load_state_dict(_map_vggish_keys(sd), strict=False)
        missing, unexpected = list(res.missing_keys), list(res.unexpected_keys)
    except RuntimeError as e:  # shape mismatches
        raise EmbedderError(f"{path} does not fit VGGish: {str(e).splitlines()[0]}") from None
    if missing or unexpected:
        raise EmbedderError(f"{path} does not fit VGGish: missing {missing[:4]}, unexpected {unexpected[:4]}")
    return model.to(device).eval()


# ---- embedders --------------------------------------------------------------------------


class Embedder(ABC):
    """Audio -> window embeddings [n, dim]; ``name`` labels every result it produces."""

    name: str = ""
    dim: int = 0

    @abstractmethod
    def embed(self, y: np.ndarray, sr: int = SR) -> np.ndarray:
        """Window embeddings [n, dim] of mono audio at sr (n may be 0 for short audio)."""


class VGGishEmbedder(Embedder):
    name = "vggish"
    dim = 128

    def __init__(self, weights=None, model=None, device: str = "cpu", batch: int = 64):
        # model lets tests and callers pass an already built network (e.g. random init).
        self.model = model if model is not None else load_vggish(weights, device=device)
        self.device = device
        self.batch = batch

    def embed(self, y: np.ndarray, sr: int = SR) -> np.ndarray:
        torch = _torch()
        ex = vggish_examples(y, sr)
        if ex.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        outs = []
        with torch.inference_mode():
            for i in range(0, ex.shape[0], self.batch):
                xb = torch.from_numpy(ex[i : i + self.batch]).to(self.device)
                outs.append(self.model(xb).float().cpu().numpy())
        return np.concatenate(outs, axis=0)


class LogMelStatsEmbedder(Embedder):
    name = "logmel-stats"
    dim = 2 * _audio.N_MELS
    WINDOW_FRAMES = int(round(0.96 * _audio.FPS))  # 60 mel frames = 0.96 s, like VGGish

    def embed(self, y: np.ndarray, sr: int = SR) -> np.ndarray:
        lm = features.log_mel(np.asarray(y, dtype=np.float32), sr).T  # [F, 80]
        win = _frame(lm, self.WINDOW_FRAMES, self.WINDOW_FRAMES)  # [n, 60, 80]
        if win.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([win.mean(axis=1), win.std(axis=1)], axis=1).astype(np.float32)


EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    "logmel-stats": lambda **kw: LogMelStatsEmbedder(),
    "vggish": lambda vggish_weights=None, device="cpu", **kw: VGGishEmbedder(vggish_weights, device=device),
}
DEFAULT_EMBEDDER = "logmel-stats"


def get_embedder(name: str = DEFAULT_EMBEDDER, **kwargs) -> Embedder:
    """Build a registered embedder; kwargs: vggish_weights (path), device."""
    if name not in EMBEDDERS:
        raise EmbedderError(f"unknown embedder {name!r}; choose one of {sorted(EMBEDDERS)}")
    return EMBEDDERS[name](**kwargs)


def metric_name(embedder: Embedder | str) -> str:
    """The label every FAD value travels with: FAD[<embedder>]."""
    return f"FAD[{embedder if isinstance(embedder, str) else embedder.name}]"


# ---- FAD --------------------------------------------------------------------------------


def embed_files(paths, embedder: Embedder, loader=None) -> tuple[np.ndarray, list[int]]:
    """Pooled window embeddings [sum n_i, dim] of files, and the window count per file.

    A file too short for one window (0.96 s) is an error rather than silently skipped:
    dropping clips changes the statistics that FAD compares.
    """
    loader = loader or load_music
    rows, counts, short = [], [], []
    for p in paths:
        e = embedder.embed(loader(p), SR)
        counts.append(int(e.shape[0]))
        if e.shape[0] == 0:
            short.append(str(p))
        rows.append(e)
    if short:
        raise EmbedderError(
            f"shorter than one 0.96 s window: {', '.join(short[:5])}"
            + (f" (+{len(short) - 5} more)" if len(short) > 5 else "")
        )
    if not rows:
        return np.zeros((0, embedder.dim), dtype=np.float32), counts
    return np.concatenate(rows, axis=0), counts


def fad_from_embeddings(generated: np.ndarray, reference: np.ndarray, embedder: Embedder | str) -> dict:
    """FAD of two pooled embedding sets, labelled with the embedder."""
    name = metric_name(embedder)
    value = frechet_from_features(generated, reference)
    dim = int(np.asarray(generated).shape[1])
    return {
        "metric": name,
        "embedder": name[4:-1],
        name: value,
        "value": value,
        "dim": dim,
        "n_generated_windows": int(len(generated)),
        "n_reference_windows": int(len(reference)),
        # Fewer windows than dimensions leaves a covariance rank-deficient: the number is
        # then dominated by the eps regularisation and should not be trusted.
        "rank_deficient": bool(min(len(generated), len(reference)) <= dim),
    }


def fad_from_files(generated_paths, reference_paths, embedder: Embedder, loader=None) -> dict:
    """FAD between two sets of audio files (16 kHz mono after decoding)."""
    g, g_counts = embed_files(generated_paths, embedder, loader)
    r, r_counts = embed_files(reference_paths, embedder, loader)
    out = fad_from_embeddings(g, r, embedder)
    out["n_generated_files"] = len(g_counts)
    out["n_reference_files"] = len(r_counts)
    return out


def clip_embedding(y: np.ndarray, embedder: Embedder, sr: int = SR) -> np.ndarray:
    """One vector per clip: the mean of its window embeddings (for diversity scores)."""
    e = embedder.embed(y, sr)
    if e.shape[0] == 0:
        raise EmbedderError("clip shorter than one 0.96 s window")
    return e.mean(axis=0)
