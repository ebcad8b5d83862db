"""The stage-1 mel discriminator of the BiCoR-VAE and its LSGAN losses.

Appendix A.2 of MoMu-Diffusion trains the music VAE with an adversarial term (weight 0.5),
as Make-An-Audio 2's VAE does; the paper does not describe the discriminator. This one is a
multi-scale 2D PatchGAN on the log-mel as a 1-channel image (MelGAN's multi-scale idea on
mels). Its sizes live in VAEConfig (disc_channels, disc_scales, disc_layers) so a preset
names the whole stage-1 setup; docs/bicor_vae.md has the reasons.

Shapes: mel [B, 80, T] natural-log mel -> a list of logits maps [B, 1, F', T'], one per scale.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from momu_models.models.vae import VAEConfig


class PatchDiscriminator(nn.Module):
    """PatchGAN on the mel as a 1-channel image [B, 1, 80, T] -> logits map [B, 1, F', T'].

    Stride-2 5x5 convolutions (ceil halving, so any T >= 1 works), LeakyReLU, no
    normalisation layer (batch statistics would mix padded and real frames)."""

    def __init__(self, channels: int, num_layers: int):
        super().__init__()
        layers = [nn.Conv2d(1, channels, 3, padding=1), nn.LeakyReLU(0.2)]
        c = channels
        for i in range(num_layers):
            c_out = channels * min(2 ** (i + 1), 8)
            layers += [nn.Conv2d(c, c_out, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MelDiscriminator(nn.Module):
    """Multi-scale PatchGAN on log-mels: one PatchDiscriminator per time scale (the mel,
    then average-pooled over time by 2, 4, ...), as MelGAN does for waveforms. Fine scales
    judge transients and harmonics, coarse scales longer texture.

    forward(mel [B, 80, T]) -> list of logits maps, one per scale.
    """

    def __init__(
        self,
        channels: int = 32,
        num_scales: int = 3,
        num_layers: int = 3,
        mel_shift: float = -5.0,
        mel_scale: float = 2.5,
    ):
        super().__init__()
        self.mel_shift, self.mel_scale = mel_shift, mel_scale
        self.scales = nn.ModuleList(PatchDiscriminator(channels, num_layers) for _ in range(num_scales))

    @classmethod
    def from_config(cls, cfg: VAEConfig) -> MelDiscriminator:
        return cls(cfg.disc_channels, cfg.disc_scales, cfg.disc_layers, cfg.mel_shift, cfg.mel_scale)

    def forward(self, mel: torch.Tensor) -> list[torch.Tensor]:
        x = ((mel - self.mel_shift) / self.mel_scale).unsqueeze(1)
        out = []
        for s, d in enumerate(self.scales):
            if s:
                x = F.avg_pool2d(x, (1, 2), ceil_mode=True)
            out.append(d(x))
        return out


def generator_adv_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN generator loss: mean over scales of mean((1 - D(fake))^2)."""
    return sum((1.0 - f.float()).pow(2).mean() for f in fake_logits) / len(fake_logits)


def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN discriminator loss: mean over scales of mean((1 - D(real))^2) + mean(D(fake)^2)."""
    total = sum((1.0 - r.float()).pow(2).mean() + f.float().pow(2).mean() for r, f in zip(real_logits, fake_logits))
    return total / len(real_logits)
