"""BigVGAN (Lee et al. 2022; v1 and v2 releases): NVIDIA's own `bigvgan` package builds the generator,
from a local release folder; MoMu never downloads weights. Two release layouts load:

- NVIDIA's (GitHub / Hugging Face): config.json + bigvgan_generator.pt;
- Make-An-Audio's 16 kHz BigVGAN, the one the paper's latent-diffusion lineage decodes with
  (Make-An-Audio, Make-An-Audio 2 and AudioLCM ship it as `useful_ckpts/bigvgan/`; MMAudio
  redistributes the weights as `ext_weights/best_netG.pt`): args.yml, the YAML training
  arguments (generator keys only, no mel settings), + best_netG.pt, {"generator": the
  weight-normed v1 state dict}. Its mel is Make-An-Audio's (16 kHz, n_fft 1024, hop 256, win
  1024, 80 bands 0-8 kHz: `MAKE_AN_AUDIO_MEL`), which is ours (appendix B.2), so the adapter
  passes our mel through unchanged but for the frame-centre resampling.

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
# The mel a config must describe (sampling_rate, hop_size, num_mels; n_fft, win_size, fmin, fmax
# default as MelAdapter says); Make-An-Audio's args.yml has none of them: they are these
# (Make-An-Audio preprocess/mel_spec.py), filled in for the keys it lacks.
MEL_KEYS = ("sampling_rate", "hop_size", "num_mels")
MAKE_AN_AUDIO_MEL = {
    "sampling_rate": 16000,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "num_mels": 80,
    "fmin": 0,
    "fmax": 8000,
}
# Release layouts: (config file, generator file), in the order they are looked for.
RELEASES = (("config.json", "bigvgan_generator.pt"), ("args.yml", "best_netG.pt"))


def find_release(path: Path) -> tuple[Path, Path]:
    """(config file, generator file) of a release folder, or of a generator file named
    directly (the config beside it: its own layout's first, else the other's)."""
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        for cfg_name, weights_name in RELEASES:
            if (folder / cfg_name).is_file() and (folder / weights_name).is_file():
                return folder / cfg_name, folder / weights_name
    else:
        own = [c for c, w in RELEASES if w == path.name]
        for cfg_name in [*own, *(c for c, _ in RELEASES)]:
            if (folder / cfg_name).is_file():
                return folder / cfg_name, path
    layouts = " or ".join(f"{c} + {w}" for c, w in RELEASES)
    raise VocoderError(
        f"BigVGAN checkpoint folder {folder} needs {layouts} (a local folder: MoMu never downloads weights)"
    )


def read_release_config(path: Path) -> dict:
    """A release's generator config: config.json (NVIDIA) or args.yml (Make-An-Audio, YAML; the
    mel keys it lacks are MAKE_AN_AUDIO_MEL's). Problems are one-line VocoderErrors naming the file."""
    try:
        text = path.read_text()
    except OSError as e:
        raise VocoderError(f"cannot read BigVGAN config {path}: {e.strerror or e}") from None
    if path.suffix in (".yml", ".yaml"):
        import yaml  # PyYAML: part of the vocoder extra (and a dependency of bigvgan's huggingface_hub)

        try:
            h = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise VocoderError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if isinstance(h, dict):
            missing = {k: v for k, v in MAKE_AN_AUDIO_MEL.items() if k not in h}
            if missing:
                log.info("%s names no %s: using Make-An-Audio's 16 kHz mel", path, ", ".join(missing))
            h = {**missing, **h}
    else:
        try:
            h = json.loads(text)
        except json.JSONDecodeError as e:
            raise VocoderError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(h, dict):
        raise VocoderError(f"BigVGAN config {path} must hold one mapping of settings, not {type(h).__name__}")
    lacking = [k for k in MEL_KEYS if k not in h]
    if lacking:
        raise VocoderError(f"BigVGAN config {path} lacks {', '.join(lacking)} (the mel it was trained on)")
    return h


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
    """BigVGAN from a local release folder (NVIDIA's config.json + bigvgan_generator.pt, or
    Make-An-Audio's args.yml + best_netG.pt); never downloads.

    `checkpoint` is the folder (or the .pt file inside it); `config` overrides the release's config
    keys, or, without a checkpoint, builds a randomly initialised generator (for tests and to try a config).
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
                    "bigvgan_generator.pt, e.g. a clone of nvidia/bigvgan_v2_22khz_80band_fmax8k_256x, or "
                    "Make-An-Audio's useful_ckpts/bigvgan: args.yml + best_netG.pt); MoMu never downloads weights"
                )
            path = Path(checkpoint)
            if not path.exists():
                raise VocoderError(
                    f"no BigVGAN checkpoint folder {path}: pass a local folder with config.json + "
                    "bigvgan_generator.pt or args.yml + best_netG.pt (MoMu never downloads weights)"
                )
            cfg_path, weights = find_release(path)
            h = read_release_config(cfg_path)
            if config:
                h.update(config)
            gen = build_bigvgan(h)
            load_generator_weights(gen, read_generator_state(weights), f"BigVGAN checkpoint {weights}")
            self.checkpoint = str(weights)
        super().__init__(gen, h, device, offset)
