"""BiCoR-VAE training steps: the losses and one optimisation step of each stage.

Pure torch (appendix A.2 of MoMu-Diffusion): the trainer (train/vae.py) owns data,
schedules, logging and checkpoints, and calls music_stage_step (stage 1: the music VAE
against the mel discriminator) or motion_stage_step (stage 2: the motion VAE with the
rhythmic contrast, music VAE frozen) once per batch. The weights and their reasons are in
docs/bicor_vae.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from momu_models.models.discriminator import MelDiscriminator, discriminator_loss, generator_adv_loss
from momu_models.models.vae import BiCoRVAE, DiagonalGaussian
from momu_models.train.loop import finite_update

# ---------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------


def reconstruction_loss(
    x: torch.Tensor, x_hat: torch.Tensor, mask: torch.Tensor | None = None, time_dim: int = -1
) -> torch.Tensor:
    """Mean absolute error over the valid frames (L1, as the LDM/Make-An-Audio VAEs).

    x, x_hat: same shape with time on `time_dim` (-1 for mels [B, 80, T], 1 for poses
    [B, T, 14, 2]); mask [B, T] bool. Every valid element counts once, so long items weigh
    more than short ones, like unpadded data would.
    """
    err = (x_hat.float() - x.float()).abs()
    if mask is None:
        return err.mean()
    td = time_dim % x.ndim
    shape = [1] * x.ndim
    shape[0], shape[td] = x.shape[0], x.shape[td]
    m = mask.reshape(shape).to(err.dtype)
    per_frame = err.numel() // (x.shape[0] * x.shape[td])
    return (err * m).sum() / (m.sum() * per_frame).clamp(min=1.0)


def kl_loss(posterior: DiagonalGaussian, mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL to N(0, I) per valid latent element, averaged over the batch's valid elements.

    mask: latent-resolution mask [B, T'] (defaults to the posterior's own). Being a mean
    per element, like reconstruction_loss, its weight (1e-5) does not depend on T.
    """
    return posterior.kl(mask).sum() / posterior.num_valid(mask).sum().clamp(min=1.0)


# ---------------------------------------------------------------------------------------
# steps
# ---------------------------------------------------------------------------------------


@dataclass
class StageConfig:
    kl_weight: float = 1e-5  # appendix A.2, both stages
    adv_weight: float = 0.5  # stage 1 GAN weight (appendix A.2)
    contrast_weight: float = 0.2  # stage 2 rhythmic contrast (paper: 1 on its own loss scale; docs/bicor_vae.md)
    adv_start_step: int = 0  # stage 1: no GAN (neither G term nor D update) before this step
    sample_posterior: bool = True  # decode a posterior sample (False: the mean)


def _autocast(spec, device: torch.device):
    """None -> no autocast; a dtype -> torch.autocast on the batch's device with it;
    anything else is taken as a zero-argument factory of a context manager."""
    if spec is None:
        return contextlib.nullcontext()
    if isinstance(spec, torch.dtype):
        return torch.autocast(device_type=device.type, dtype=spec)
    return spec()


def _f(t: torch.Tensor) -> float:
    return float(t.detach())


def music_stage_step(
    model: BiCoRVAE,
    disc: MelDiscriminator,
    batch: dict,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    cfg: StageConfig | None = None,
    *,
    step: int = 0,
    autocast=None,
    grad_clip: float | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One stage-1 update: the music VAE (generator) first, then the discriminator.

    Generator loss: L1 + kl_weight * KL + adv_weight * LSGAN(D(mel_hat)); discriminator
    loss: LSGAN(D(mel), D(mel_hat.detach())). With a mask, padded frames of the
    reconstruction are replaced by the input's before D sees them, so D gets no signal
    there. opt_g should hold model.stage_parameters(1), opt_d disc.parameters().
    An update whose loss or gradient is not finite is skipped (train/loop.py finite_update);
    out["skipped"] counts the skipped updates of this step (0, 1 or 2).
    """
    cfg = cfg or StageConfig()
    mel, mask = batch["mel"], batch.get("mask")
    T = mel.shape[-1]
    use_adv = cfg.adv_weight > 0 and step >= cfg.adv_start_step
    model.music.train()
    disc.train()

    # generator update; D's weights get no gradient from it
    disc.requires_grad_(False)
    with _autocast(autocast, mel.device):
        post = model.encode_music(mel, mask)
        z = post.sample(generator) if cfg.sample_posterior else post.mean
        mel_hat = model.decode_music(z, T, post.mask).float()
    rec = reconstruction_loss(mel, mel_hat, mask)
    kl = kl_loss(post)
    loss = rec + cfg.kl_weight * kl
    fake = mel_hat if mask is None else torch.where(mask[:, None, :], mel_hat, mel)
    g_adv = torch.zeros((), device=mel.device)
    if use_adv:
        with _autocast(autocast, mel.device):
            g_adv = generator_adv_loss(disc(fake))
        loss = loss + cfg.adv_weight * g_adv
    applied, gnorm = finite_update(loss, opt_g, grad_clip)
    disc.requires_grad_(True)

    out = {"loss": _f(loss), "rec": _f(rec), "kl": _f(kl), "g_adv": _f(g_adv), "skipped": float(not applied)}
    if grad_clip is not None:
        out["grad_norm"] = gnorm
    if use_adv:
        with _autocast(autocast, mel.device):
            d_loss = discriminator_loss(disc(mel), disc(fake.detach()))
        applied, dnorm = finite_update(d_loss, opt_d, grad_clip)
        out["skipped"] += float(not applied)
        out["d_loss"] = _f(d_loss)
        if grad_clip is not None:
            out["d_grad_norm"] = dnorm
    return out


def motion_stage_step(
    model: BiCoRVAE,
    batch: dict,
    opt: torch.optim.Optimizer,
    cfg: StageConfig | None = None,
    *,
    autocast=None,
    grad_clip: float | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One stage-2 update of the motion VAE: L1 + kl_weight * KL + contrast_weight * the
    rhythmic contrastive loss between the motion and (frozen) music posterior means.

    The music VAE runs in eval mode under no_grad, so its parameters cannot change even if
    opt holds them. opt should hold model.stage_parameters(2). An update whose loss or
    gradient is not finite is skipped; out["skipped"] is 1.0 then (0.0 otherwise).
    """
    cfg = cfg or StageConfig()
    mel, pose, amp, mask = batch["mel"], batch["pose"], batch["amp"], batch.get("mask")
    T = pose.shape[1]
    if mel.shape[-1] != T or amp.shape[-1] != T:
        raise ValueError(
            f"mel {tuple(mel.shape)}, pose {tuple(pose.shape)} and amp {tuple(amp.shape)} must share the frame axis"
        )
    model.music.eval()
    model.motion.train()
    model.contrast.train()
    with torch.no_grad(), _autocast(autocast, mel.device):
        music_latent = model.encode_music(mel, mask).mean.float()
    with _autocast(autocast, pose.device):
        post = model.encode_motion(pose, mask)
        z = post.sample(generator) if cfg.sample_posterior else post.mean
        pose_hat = model.decode_motion(z, T, post.mask).float()
    rec = reconstruction_loss(pose, pose_hat, mask, time_dim=1)
    kl = kl_loss(post)
    con = model.contrast(post.mean.float(), music_latent, amp, model.factor, mask, generator)
    loss = rec + cfg.kl_weight * kl + cfg.contrast_weight * con
    applied, norm = finite_update(loss, opt, grad_clip)
    out = {
        "loss": _f(loss),
        "rec": _f(rec),
        "kl": _f(kl),
        "contrast": _f(con),
        "temperature": _f(model.contrast.temperature),
        "skipped": float(not applied),
    }
    if grad_clip is not None:
        out["grad_norm"] = norm
    return out
