"""Guidance: classifier-free guidance (eq. 7) and when cross-guidance starts (eq. 8-9).

- ``guided_eps``: eq. 7, eps = eps(x_t, t, null) + s * (eps(x_t, t, c) - eps(x_t, t, null)),
  the same as Make-An-Audio's s * eps_cond + (1 - s) * eps_uncond: s = 1 is the conditional
  model, s = 0 the unconditional one, s > 1 pushes further toward the condition.
- ``cross_guidance_start``: the first DDIM step at which each model of a joint generation
  is conditioned on the other's latest clean-latent estimate (appendix D); the sampler that
  runs it is ``joint_sample`` in sampling.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def guided_eps(
    model: nn.Module,
    x_t: torch.Tensor,
    t: int | torch.Tensor,
    cond: torch.Tensor | None,
    guidance_scale: float,
    x_mask: torch.Tensor | None = None,
    cond_mask: torch.Tensor | None = None,
    autocast: torch.dtype | None = None,
) -> torch.Tensor:
    """Classifier-free guided noise prediction (eq. 7). cond None: the unconditional model.

    Every tensor it makes is made on x_t's device (no host-to-device copy per step).
    autocast: None runs the network in x_t's precision; a dtype (torch.bfloat16 on a GPU)
    runs it under torch.autocast with that dtype, its output cast back to x_t's dtype, so
    the guidance arithmetic and the solver stay in full precision."""
    B = x_t.shape[0]
    if isinstance(t, torch.Tensor):
        t = t.to(x_t.device).expand(B)
    else:
        t = torch.full((B,), t, device=x_t.device)
    if cond is None:
        return _network(model, autocast, x_t, t, None, cond_mask=cond_mask, x_mask=x_mask)
    if guidance_scale == 1:  # only the conditional term survives: skip the null pass
        return _network(model, autocast, x_t, t, cond, cond_mask=cond_mask, x_mask=x_mask)
    if guidance_scale == 0:  # only the unconditional term survives
        drop = torch.ones(B, dtype=torch.bool, device=x_t.device)
        return _network(model, autocast, x_t, t, cond, cond_mask=cond_mask, x_mask=x_mask, drop_cond=drop)

    def two(m):
        return None if m is None else torch.cat([m, m])

    # One batched pass: the first half sees the condition, the second half the null embedding.
    drop = torch.arange(2 * B, device=x_t.device) >= B
    eps_c, eps_u = _network(
        model, autocast, two(x_t), two(t), two(cond), cond_mask=two(cond_mask), x_mask=two(x_mask), drop_cond=drop
    ).chunk(2)
    return eps_u + guidance_scale * (eps_c - eps_u)


def _network(model: nn.Module, autocast: torch.dtype | None, x_t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """model(x_t, ...), under torch.autocast(autocast) if given, in x_t's dtype."""
    if autocast is None:
        return model(x_t, *args, **kwargs)
    with torch.autocast(x_t.device.type, dtype=autocast):
        eps = model(x_t, *args, **kwargs)
    return eps.to(x_t.dtype)


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
