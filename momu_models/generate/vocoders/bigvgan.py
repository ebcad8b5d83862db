"""BigVGAN (Lee et al. 2022; v1 and v2 releases): NVIDIA's own `bigvgan` package builds the generator,
from a local release folder (config.json + bigvgan_generator.pt); MoMu never downloads weights.

We build `bigvgan.BigVGAN` from config.json and load the weights ourselves instead of calling
`BigVGAN.from_pretrained(folder)`: bigvgan 2.4.1's `from_pretrained` fails with
huggingface_hub >= 1.0 (its `_from_pretrained` still requires the removed `proxies` and
`resume_download` arguments), treats any string that is not a folder as a hub id to download,
unpickles with torch's default `weights_only` and prints to stdout. Our path reads the same two
files with `torch.load(weights_only=True)`, folds weight norm as `remove_weight_norm` does, and
turns every problem into a one-line `VocoderError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

import torch.nn as nn

from momu_models.generate.vocoders.base import VocoderError
from momu_models.generate.vocoders.neural import GANVocoder, load_generator_weights, read_generator_state

log = logging.getLogger(__name__)

# Keys NVIDIA's configs always carry; the defaults are those of the v2 releases, for hand-written configs.
BIGVGAN_CONFIG_DEFAULTS = {"resblock": "1", "activation": "snakebeta", "snake_logscale": True}


def build_bigvgan(h: dict) -> nn.Module:
    """NVIDIA's BigVGAN generator for config `h`, weight norm removed (the inference network), random weights."""
    try:
        import bigvgan  # heavy (huggingface_hub, librosa, matplotlib) and optional: only for --vocoder bigvgan
        from bigvgan.env import AttrDict
    except ImportError as e:
        raise VocoderError(f"bigvgan needs NVIDIA's 'bigvgan' package: pip install bigvgan ({e})") from None
    h = {**BIGVGAN_CONFIG_DEFAULTS, **h}
    h["resblock"] = str(h["resblock"])
    if h["activation"] not in ("snake", "snakebeta"):
        raise VocoderError(f"BigVGAN config: unknown activation {h['activation']!r} (expected snake or snakebeta)")
    if h["resblock"] not in ("1", "2"):
        raise VocoderError(f"BigVGAN config: unknown resblock {h['resblock']!r} (expected 1 or 2)")
    with warnings.catch_warnings():
        # The package wraps its convolutions in torch.nn.utils.weight_norm, which torch deprecates;
        # nothing a MoMu user can act on, and the wrappers are removed just below.
        warnings.filterwarnings("ignore", message=".*weight_norm.*is deprecated", category=FutureWarning)
        gen = bigvgan.BigVGAN(AttrDict(h), use_cuda_kernel=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the package prints "Removing weight norm..."
        gen.remove_weight_norm()
    if printed.getvalue().strip():
        log.debug("bigvgan: %s", printed.getvalue().strip())
    return gen


class BigVGANVocoder(GANVocoder):
    """BigVGAN from a local NVIDIA release folder (config.json + bigvgan_generator.pt); never downloads.

    `checkpoint` is the folder (or the .pt file inside it); `config` overrides config.json keys,
    or, without a checkpoint, builds a randomly initialised generator (for tests and to try a config).
    """

    name = "bigvgan"

    def __init__(
        self, checkpoint: str | None = None, device="cpu", offset: float | str = "auto", config: dict | None = None
    ):
        if config is not None and checkpoint is None:
            h = dict(config)
            gen = build_bigvgan(h)
            self.checkpoint = None
        else:
            if checkpoint is None:
                raise VocoderError(
                    "bigvgan needs checkpoint=PATH to a local BigVGAN folder (config.json + "
                    "bigvgan_generator.pt, e.g. a clone of nvidia/bigvgan_v2_22khz_80band_fmax8k_256x); "
                    "MoMu never downloads weights"
                )
            path = Path(checkpoint)
            if not path.exists():
                raise VocoderError(
                    f"no BigVGAN checkpoint folder {path}: pass a local folder with config.json and "
                    "bigvgan_generator.pt (MoMu never downloads weights)"
                )
            folder = path if path.is_dir() else path.parent
            weights = path if path.is_file() else folder / "bigvgan_generator.pt"
            cfg_path = folder / "config.json"
            if not weights.is_file() or not cfg_path.is_file():
                raise VocoderError(
                    f"BigVGAN checkpoint folder {folder} needs config.json and bigvgan_generator.pt "
                    "(a local folder: MoMu never downloads weights)"
                )
            h = json.loads(cfg_path.read_text())
            if config:
                h.update(config)
            gen = build_bigvgan(h)
            load_generator_weights(gen, read_generator_state(weights), f"BigVGAN checkpoint {weights}")
            self.checkpoint = str(weights)
        super().__init__(gen, h, device, offset)
