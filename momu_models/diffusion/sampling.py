"""Sampling: one direction (``sample``) and joint generation by cross-guidance (``joint_sample``).

- ``sample``: one direction (motion2music or music2motion: the same code, a different model),
  DDIM with classifier-free guidance (guidance.py).
- ``joint_sample``: cross-guidance (eq. 8-9, appendix D). Both models start unconditionally
  (null condition); from DDIM step ``i_c = cross_guidance_start(steps, cross_start)`` on, each
  model is conditioned (with CFG) on the other's latest estimate of the clean latent.
- Both continue past a model's ``max_len`` with overlapping windows (windows.py): each new
  window holds its first frames to the previous result by inpainting at every DDIM step,
  then the overlap is crossfaded (or cut) into the output.
- Temporal editing: ``known`` latents on any frame mask (a prefix to continue, kept ranges,
  keyframes) are held the same way in every window they fall in (q(x_t | known) replaces
  those frames before each DDIM step), and the output equals them exactly there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from momu_models.diffusion.guidance import cross_guidance_start, guided_eps
from momu_models.diffusion.process import Diffusion, Solver
from momu_models.diffusion.windows import WindowCallback, held_frames, sliding_windows, window_slice


def _fixed(
    known: torch.Tensor | None,
    mask: torch.Tensor | None,
    B: int,
    length: int,
    device: torch.device,
    name: str = "known",
) -> tuple[tuple[torch.Tensor, torch.Tensor], list[bool]] | None:
    """((latents [B, C, length], bool mask [B, length]) on `device`, held_frames of the mask)
    from known [1 or B, C, length] and a mask [length] or [1 or B, length]; None when there
    is nothing to hold. The one host-side look at the mask happens here, before any step: a
    mask given on the CPU (as a caller builds it) costs nothing, one on a GPU one read back.
    An all-False mask is kept (it holds nothing; the windows find that out on the host)."""
    if known is None and mask is None:
        return None
    if known is None or mask is None:
        raise ValueError(f"{name} and {name}_mask go together")
    mask = mask.bool()
    if mask.ndim == 1:
        mask = mask[None]
    if known.ndim != 3 or known.shape[-1] != length or mask.shape[-1] != length:
        raise ValueError(f"{name} must be [B, C, {length}] and its mask [{length}] or [B, {length}]")
    held = held_frames(mask)
    # non_blocking: from the host, the copy is queued without waiting for the device
    known = known.to(device, non_blocking=True).expand(B, -1, -1)
    return (known, mask.to(device, non_blocking=True).expand(B, -1)), held


def _device(model: nn.Module, fallback: torch.Tensor | None = None) -> torch.device:
    """Where to sample: the condition's device, else the model's."""
    if fallback is not None:
        return fallback.device
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def sample(
    model: nn.Module,
    cond: torch.Tensor | None,
    length: int | None = None,
    steps: int = 50,
    guidance_scale: float = 3.0,
    generator: torch.Generator | None = None,
    *,
    diffusion: Diffusion | None = None,
    eta: float = 0.0,
    batch_size: int | None = None,
    x_mask: torch.Tensor | None = None,
    overlap: int | None = None,
    blend: str = "crossfade",
    spacing: str = "trailing",
    on_window: WindowCallback | None = None,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    solver: str = "ddim",
    autocast: torch.dtype | None = None,
) -> torch.Tensor:
    """Generate latents [B, out_channels, length] with `model` conditioned on `cond`.

    cond [B, Cc, length]: the other modality's latents, frame-aligned (None: unconditional,
    then batch_size and length are needed). length defaults to cond's. x_mask [B, length]:
    valid frames (shorter samples in a batch); the output is zero beyond them. Longer than
    model.config.max_len: windows of max_len frames overlapping by `overlap` (default
    max_len // 4; see windows.py). known [1 or B, out_channels, length] with known_mask
    [length] or [1 or B, length] (True: fixed): in-painting, the model generates the other
    frames around those, which come back exactly. solver: the update rule of each chain,
    "ddim" or "dpm++2m" (process.Solver). autocast: None runs the network in full precision;
    torch.bfloat16 runs it under autocast while the latents, guidance and solver stay float32
    (guided_eps). Put the model in eval() mode first (its dropout is otherwise active);
    sampling runs without gradients. No step reads anything back from the device.
    """
    cfg = model.config
    diffusion = diffusion or Diffusion.from_config(cfg)
    if cond is not None:
        if length is not None and length != cond.shape[-1]:
            raise ValueError(f"cond has {cond.shape[-1]} frames but length={length}: they must be frame-aligned")
        length, B = cond.shape[-1], cond.shape[0]
    else:
        if length is None or batch_size is None:
            raise ValueError("unconditional sampling needs length and batch_size")
        B = batch_size
    dev = _device(model, cond)
    fixed = _fixed(known, known_mask, B, length, dev)

    def run_window(k, s, e, known, km):
        c, xm = window_slice(cond, s, e), window_slice(x_mask, s, e)

        def eps_fn(x, t, i):
            return guided_eps(model, x, t, c, guidance_scale, x_mask=xm, autocast=autocast)

        return [
            diffusion.ddim_sample(
                eps_fn,
                (B, cfg.out_channels, e - s),
                steps,
                eta,
                generator,
                device=dev,
                known=None if known is None else known[0],
                known_mask=None if km is None else km[0],
                spacing=spacing,
                solver=solver,
            )
        ]

    (x,) = sliding_windows(
        length,
        cfg.max_len,
        overlap,
        blend,
        run_window,
        on_window,
        None if fixed is None else [fixed[0]],
        None if fixed is None else [fixed[1]],
    )
    return x if x_mask is None else x * x_mask[:, None].to(x.dtype)


# --------------------------------------------------------------------------- joint generation


@dataclass
class JointSample:
    motion: torch.Tensor  # [B, C_motion, L]
    music: torch.Tensor  # [B, C_music, L]
    # One entry per window and DDIM step: window, step, t, conditioned (bool), and with
    # return_trace also x0_motion / x0_music, the estimates that step produced.
    trace: list[dict] = field(default_factory=list)


@torch.no_grad()
def _joint_window(
    motion2music: nn.Module,
    music2motion: nn.Module,
    diffusion: Diffusion,
    shape_motion: tuple[int, int, int],
    shape_music: tuple[int, int, int],
    steps: int,
    guidance_scale: tuple[float, float],
    i_c: int,
    eta: float,
    generator: torch.Generator | None,
    device: torch.device,
    x_mask: torch.Tensor | None,
    known: list[torch.Tensor | None] | None,
    known_mask: list[torch.Tensor | None] | None,
    spacing: str,
    trace: list[dict],
    window: int,
    keep_estimates: bool,
    solver: str = "ddim",
    autocast: torch.dtype | None = None,
) -> list[torch.Tensor]:
    k_mo, k_mu = (None, None) if known is None else known
    m_mo, m_mu = (None, None) if known_mask is None else known_mask
    x_mo = torch.randn(shape_motion, generator=generator, device=device)
    x_mu = torch.randn(shape_music, generator=generator, device=device)
    x0_mo = x0_mu = None
    ts = diffusion.ddim_timesteps(steps, spacing)
    chain_mu, chain_mo = Solver(diffusion, solver, eta, generator), Solver(diffusion, solver, eta, generator)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        x_mo = diffusion.replace_known(x_mo, t, k_mo, m_mo, generator)
        x_mu = diffusion.replace_known(x_mu, t, k_mu, m_mu, generator)
        conditioned = i >= i_c
        # Before i_c both models run with the null condition (eq. 8-9); after it, each is
        # guided (eq. 7) by the other's x0 estimate from the previous step (both chains
        # advance in lockstep, so neither modality leads).
        c_mu, c_mo = (x0_mo, x0_mu) if conditioned else (None, None)
        eps_mu = guided_eps(motion2music, x_mu, t, c_mu, guidance_scale[0], x_mask, x_mask, autocast)
        eps_mo = guided_eps(music2motion, x_mo, t, c_mo, guidance_scale[1], x_mask, x_mask, autocast)
        x_mu, x0_mu = chain_mu.step(x_mu, t, t_prev, eps_mu)
        x_mo, x0_mo = chain_mo.step(x_mo, t, t_prev, eps_mo)
        # Known frames (carried over from the previous window, or fixed) are known exactly:
        # condition on them.
        if k_mo is not None:
            x0_mo = torch.where(m_mo[:, None], k_mo, x0_mo)
        if k_mu is not None:
            x0_mu = torch.where(m_mu[:, None], k_mu, x0_mu)
        entry = dict(window=window, step=i, t=t, conditioned=conditioned)
        if keep_estimates:
            entry.update(x0_motion=x0_mo.clone(), x0_music=x0_mu.clone())
        trace.append(entry)
    return [x_mo, x_mu]


@torch.no_grad()
def joint_sample(
    motion2music: nn.Module,
    music2motion: nn.Module,
    length: int,
    steps: int = 50,
    guidance_scale: float | tuple[float, float] = 3.0,
    generator: torch.Generator | None = None,
    *,
    cross_start: float = 0.5,
    batch_size: int = 1,
    diffusion: Diffusion | None = None,
    eta: float = 0.0,
    x_mask: torch.Tensor | None = None,
    overlap: int | None = None,
    blend: str = "crossfade",
    spacing: str = "trailing",
    return_trace: bool = False,
    on_window: WindowCallback | None = None,
    known_motion: torch.Tensor | None = None,
    known_motion_mask: torch.Tensor | None = None,
    known_music: torch.Tensor | None = None,
    known_music_mask: torch.Tensor | None = None,
    solver: str = "ddim",
    autocast: torch.dtype | None = None,
) -> JointSample:
    """Generate frame-aligned motion and music latents together by cross-guidance.

    motion2music generates music conditioned on motion latents; music2motion the reverse.
    Both must share a diffusion process (diffusion defaults to motion2music's config). The
    switch step is cross_guidance_start(steps, cross_start). Longer than the smaller max_len
    of the two models: overlapping windows, each continuing both latents (see sample).
    known_motion / known_music with their masks: frames of either latent to hold fixed (see
    sample; each modality has its own mask, e.g. a kept dance under newly generated music).
    The trace's conditioned flags are always recorded; return_trace adds every step's x0
    estimates (memory: 2 latents per step). autocast: the networks' precision (see sample).
    guidance_scale: one scale for both models, or (motion2music's, music2motion's).
    """
    c_mu, c_mo = motion2music.config, music2motion.config
    scales = (float(guidance_scale),) * 2 if isinstance(guidance_scale, (int, float)) else tuple(guidance_scale)
    if len(scales) != 2:
        raise ValueError(f"guidance_scale: one scale or two (motion2music's, music2motion's), not {guidance_scale!r}")
    if c_mu.num_timesteps != c_mo.num_timesteps:
        raise ValueError("the two models were trained with different numbers of diffusion steps")
    if c_mu.cond_channels != c_mo.out_channels or c_mo.cond_channels != c_mu.out_channels:
        raise ValueError("each model must be conditioned on the latents the other one generates")
    diffusion = diffusion or Diffusion.from_config(c_mu)
    i_c = cross_guidance_start(steps, cross_start)
    dev = _device(motion2music)
    B = batch_size if x_mask is None else x_mask.shape[0]
    trace: list[dict] = []

    def run_window(k, s, e, known, km):
        return _joint_window(
            motion2music,
            music2motion,
            diffusion,
            (B, c_mo.out_channels, e - s),
            (B, c_mu.out_channels, e - s),
            steps,
            scales,
            i_c,
            eta,
            generator,
            dev,
            window_slice(x_mask, s, e),
            known,
            km,
            spacing,
            trace,
            k,
            return_trace,
            solver,
            autocast,
        )

    fixed = [
        _fixed(known_motion, known_motion_mask, B, length, dev, "known_motion"),
        _fixed(known_music, known_music_mask, B, length, dev, "known_music"),
    ]
    none = all(f is None for f in fixed)
    motion, music = sliding_windows(
        length,
        min(c_mu.max_len, c_mo.max_len),
        overlap,
        blend,
        run_window,
        on_window,
        None if none else [None if f is None else f[0] for f in fixed],
        None if none else [None if f is None else f[1] for f in fixed],
    )
    if x_mask is not None:
        m = x_mask[:, None].to(motion.dtype)
        motion, music = motion * m, music * m
    return JointSample(motion, music, trace)
