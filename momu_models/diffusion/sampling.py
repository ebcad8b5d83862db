"""Sampling: classifier-free guidance, cross-guidance joint generation, long sequences.

- ``guided_eps``: eq. 7, eps = eps(x_t, t, null) + s * (eps(x_t, t, c) - eps(x_t, t, null)),
  the same as Make-An-Audio's s * eps_cond + (1 - s) * eps_uncond: s = 1 is the conditional
  model, s = 0 the unconditional one, s > 1 pushes further toward the condition.
- ``sample``: one direction (motion2music or music2motion: the same code, a different model).
- ``joint_sample``: cross-guidance (eq. 8-9, appendix D). Both models start unconditionally
  (null condition); from DDIM step ``i_c = cross_guidance_start(steps, cross_start)`` on, each
  model is conditioned (with CFG) on the other's latest estimate of the clean latent.
- Both continue past a model's ``max_len`` with overlapping windows (``window_starts``): each
  new window holds its first frames to the previous result by inpainting at every DDIM step,
  then the overlap is crossfaded (or cut) into the output.
- ``parse_length``: "30s", "1:30", "750", "750f" -> latent frames, for the CLI.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from momu_models.diffusion.process import Diffusion


# --------------------------------------------------------------------------- lengths

_LENGTH_HELP = "use frames ('750' or '750f'), seconds ('30s', '2.5s') or [h:]mm:ss ('1:30', '0:07.5')"


def parse_length(spec: str | int, fps: float) -> int:
    """A generation length as latent frames. fps: latent frames per second.

    "750" or "750f": frames; "30s" / "2.5s": seconds; "1:30", "01:30.5", "1:02:03": clock
    time (minutes and seconds fields below 60). Seconds are rounded to the nearest frame,
    halves up (Python's round() would send 37.5 and 38.5 frames both to 38).
    """
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    if isinstance(spec, bool) or not isinstance(spec, (int, str)):
        raise ValueError(f"length must be a string or an int, got {spec!r}")
    if isinstance(spec, int):
        if spec < 1:
            raise ValueError(f"length must be at least 1 frame, got {spec}")
        return spec
    s = spec.strip().lower()
    if not s:
        raise ValueError(f"empty length; {_LENGTH_HELP}")
    if m := re.fullmatch(r"(\d+)\s*f?", s):
        frames = int(m.group(1))
        if frames < 1:
            raise ValueError(f"length must be at least 1 frame, got {spec!r}")
        return frames
    if re.fullmatch(r"\d*\.\d*", s):
        raise ValueError(f"{spec!r}: frames must be whole; for seconds write '{s}s'")
    if m := re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*s", s):
        seconds = float(m.group(1))
    elif m := re.fullmatch(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)", s):
        hours, minutes, secs = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
        if secs >= 60 or (m.group(1) is not None and minutes >= 60):
            raise ValueError(f"{spec!r}: minutes and seconds fields must be below 60")
        seconds = 3600 * hours + 60 * minutes + secs
    else:
        raise ValueError(f"cannot parse length {spec!r}; {_LENGTH_HELP}")
    frames = int(math.floor(seconds * fps + 0.5))
    if frames < 1:
        raise ValueError(f"length {spec!r} is under one frame at {fps} frames/s")
    return frames


# --------------------------------------------------------------------------- guidance

def _device(model: nn.Module, fallback: torch.Tensor | None = None) -> torch.device:
    if fallback is not None:
        return fallback.device
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def guided_eps(
    model: nn.Module,
    x_t: torch.Tensor,
    t: int | torch.Tensor,
    cond: torch.Tensor | None,
    guidance_scale: float,
    x_mask: torch.Tensor | None = None,
    cond_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Classifier-free guided noise prediction (eq. 7). cond None: the unconditional model."""
    B = x_t.shape[0]
    t = torch.as_tensor(t, device=x_t.device).expand(B)
    if cond is None:
        return model(x_t, t, None, cond_mask=cond_mask, x_mask=x_mask)
    if guidance_scale == 1:  # only the conditional term survives: skip the null pass
        return model(x_t, t, cond, cond_mask=cond_mask, x_mask=x_mask)
    if guidance_scale == 0:  # only the unconditional term survives
        drop = torch.ones(B, dtype=torch.bool, device=x_t.device)
        return model(x_t, t, cond, cond_mask=cond_mask, x_mask=x_mask, drop_cond=drop)

    def two(m):
        return None if m is None else torch.cat([m, m])

    # One batched pass: the first half sees the condition, the second half the null embedding.
    drop = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)]).to(x_t.device)
    eps_c, eps_u = model(two(x_t), two(t), two(cond), cond_mask=two(cond_mask), x_mask=two(x_mask),
                         drop_cond=drop).chunk(2)
    return eps_u + guidance_scale * (eps_c - eps_u)


# --------------------------------------------------------------------------- long sequences

def window_starts(total: int, window: int, overlap: int) -> list[int]:
    """Start frames of the windows covering [0, total): hop = window - overlap; the last
    window is moved back to end exactly at `total`, so every window is full length (the
    lengths the model was trained on) and overlaps its predecessor by at least `overlap`."""
    if window < 1:
        raise ValueError(f"window must be positive, got {window}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window={window}), got {overlap}")
    starts = [0]
    while starts[-1] + window < total:
        starts.append(min(starts[-1] + window - overlap, total - window))
    return starts


def blend_overlap(prev: torch.Tensor, new: torch.Tensor, blend: str) -> torch.Tensor:
    """Join the previous result and a new window over their n shared frames (last axis).

    crossfade: linear, the new window's weight rising (j + 1) / (n + 1) so both ends keep a
    little of the other and neither seam is a jump; cut: previous frames up to the middle of
    the overlap, the new window's after it.
    """
    n = prev.shape[-1]
    if blend == "crossfade":
        w = torch.arange(1, n + 1, device=prev.device, dtype=prev.dtype) / (n + 1)
        return (1 - w) * prev + w * new
    if blend == "cut":
        out = prev.clone()
        out[..., n // 2:] = new[..., n // 2:]
        return out
    raise ValueError(f"unknown blend {blend!r}; use 'crossfade' or 'cut'")


WindowFn = Callable[[int, int, int, list | None, torch.Tensor | None], list[torch.Tensor]]
WindowCallback = Callable[[int, int, int, list[torch.Tensor]], None]


def _sliding(
    total: int,
    window: int,
    overlap: int | None,
    blend: str,
    run_window: WindowFn,
    on_window: WindowCallback | None,
) -> list[torch.Tensor]:
    """Generate [.., total] outputs (one per modality) window by window.

    run_window(k, start, end, known, known_mask) returns window k's latents; `known` are the
    output so far over the window's frames (None for the first window), of which only the
    first ones, marked by known_mask [B, end - start], are already generated.
    on_window(start, end, n_known, latents) sees each window's own result before blending.
    """
    if total < 1:
        raise ValueError(f"length must be at least 1 frame, got {total}")
    if overlap is None:
        overlap = window // 4
    outs: list[torch.Tensor] = []
    prev_end = 0
    for k, s in enumerate(window_starts(total, window, overlap)):
        e = min(s + window, total)
        n_known = prev_end - s if k else 0
        if n_known > 0:
            known = [o[..., s:e] for o in outs]
            km = (torch.arange(e - s, device=outs[0].device) < n_known).expand(outs[0].shape[0], -1)
            res = run_window(k, s, e, known, km)
        else:
            res = run_window(k, s, e, None, None)
        if on_window is not None:
            on_window(s, e, n_known, res)
        if not outs:
            outs = [r.new_zeros(r.shape[:-1] + (total,)) for r in res]
        for o, r in zip(outs, res):
            if n_known > 0:
                o[..., s:prev_end] = blend_overlap(o[..., s:prev_end], r[..., :n_known], blend)
            o[..., s + n_known:e] = r[..., n_known:]
        prev_end = e
    return outs


def _window(m: torch.Tensor | None, s: int, e: int) -> torch.Tensor | None:
    return None if m is None else m[..., s:e]


# --------------------------------------------------------------------------- one direction

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
) -> torch.Tensor:
    """Generate latents [B, out_channels, length] with `model` conditioned on `cond`.

    cond [B, Cc, length]: the other modality's latents, frame-aligned (None: unconditional,
    then batch_size and length are needed). length defaults to cond's. x_mask [B, length]:
    valid frames (shorter samples in a batch); the output is zero beyond them. Longer than
    model.config.max_len: windows of max_len frames overlapping by `overlap` (default
    max_len // 4); see _sliding / blend_overlap. Put the model in eval() mode first (its
    dropout is otherwise active); sampling runs without gradients.
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

    def run_window(k, s, e, known, km):
        c, xm = _window(cond, s, e), _window(x_mask, s, e)

        def eps_fn(x, t, i):
            return guided_eps(model, x, t, c, guidance_scale, x_mask=xm)

        return [diffusion.ddim_sample(eps_fn, (B, cfg.out_channels, e - s), steps, eta, generator, device=dev,
                                      known=None if known is None else known[0], known_mask=km, spacing=spacing)]

    (x,) = _sliding(length, cfg.max_len, overlap, blend, run_window, on_window)
    return x if x_mask is None else x * x_mask[:, None].to(x.dtype)


# --------------------------------------------------------------------------- joint generation

def cross_guidance_start(steps: int, cross_start: float) -> int:
    """Index i_c of the first conditioned DDIM step (0-based, in sampling order).

    i_c = cross_start * steps rounded half up, at least 1: steps 0 .. i_c - 1 are unconditional, steps
    i_c .. steps - 1 are conditioned on the other model's clean-latent estimate from the step
    before, which does not exist before step 0 has run. cross_start = 1: never conditioned
    (two independent unconditional samples). With the trailing spacing, 50 steps and
    cross_start 0.5, steps 0-24 (t = 999 .. 519) are unconditional and step 25 (t = 499,
    T_c = T/2) is the first conditioned one.
    """
    if not 0.0 <= cross_start <= 1.0:
        raise ValueError(f"cross_start must be in [0, 1], got {cross_start}")
    return max(1, int(math.floor(cross_start * steps + 0.5)))


@dataclass
class JointSample:
    motion: torch.Tensor                 # [B, C_motion, L]
    music: torch.Tensor                  # [B, C_music, L]
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
    guidance_scale: float,
    i_c: int,
    eta: float,
    generator: torch.Generator | None,
    device: torch.device,
    x_mask: torch.Tensor | None,
    known: list[torch.Tensor] | None,
    known_mask: torch.Tensor | None,
    spacing: str,
    trace: list[dict],
    window: int,
    keep_estimates: bool,
) -> list[torch.Tensor]:
    k_mo, k_mu = (None, None) if known is None else known
    x_mo = torch.randn(shape_motion, generator=generator, device=device)
    x_mu = torch.randn(shape_music, generator=generator, device=device)
    x0_mo = x0_mu = None
    ts = diffusion.ddim_timesteps(steps, spacing)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        x_mo = diffusion.replace_known(x_mo, t, k_mo, known_mask, generator)
        x_mu = diffusion.replace_known(x_mu, t, k_mu, known_mask, generator)
        conditioned = i >= i_c
        # Before i_c both models run with the null condition (eq. 8-9); after it, each is
        # guided (eq. 7) by the other's x0 estimate from the previous step (both chains
        # advance in lockstep, so neither modality leads).
        eps_mu = guided_eps(motion2music, x_mu, t, x0_mo if conditioned else None, guidance_scale, x_mask, x_mask)
        eps_mo = guided_eps(music2motion, x_mo, t, x0_mu if conditioned else None, guidance_scale, x_mask, x_mask)
        x_mu, x0_mu = diffusion.ddim_step(x_mu, t, t_prev, eps_mu, eta, generator)
        x_mo, x0_mo = diffusion.ddim_step(x_mo, t, t_prev, eps_mo, eta, generator)
        if known is not None:
            # Frames carried over from the previous window are known exactly: condition on them.
            x0_mo = torch.where(known_mask[:, None], k_mo, x0_mo)
            x0_mu = torch.where(known_mask[:, None], k_mu, x0_mu)
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
    guidance_scale: float = 3.0,
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
) -> JointSample:
    """Generate frame-aligned motion and music latents together by cross-guidance.

    motion2music generates music conditioned on motion latents; music2motion the reverse.
    Both must share a diffusion process (diffusion defaults to motion2music's config). The
    switch step is cross_guidance_start(steps, cross_start). Longer than the smaller max_len
    of the two models: overlapping windows, each continuing both latents (see sample).
    The trace's conditioned flags are always recorded; return_trace adds every step's x0
    estimates (memory: 2 latents per step).
    """
    c_mu, c_mo = motion2music.config, music2motion.config
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
            motion2music, music2motion, diffusion, (B, c_mo.out_channels, e - s), (B, c_mu.out_channels, e - s),
            steps, guidance_scale, i_c, eta, generator, dev, _window(x_mask, s, e), known, km, spacing,
            trace, k, return_trace,
        )

    motion, music = _sliding(length, min(c_mu.max_len, c_mo.max_len), overlap, blend, run_window, on_window)
    if x_mask is not None:
        m = x_mask[:, None].to(motion.dtype)
        motion, music = motion * m, music * m
    return JointSample(motion, music, trace)
