"""The Gaussian diffusion process for latents: schedule, forward noising, loss, DDIM.

Kept apart from the network (as facebookresearch/DiT does): everything here takes a denoiser
as an argument. Conventions:

- steps t = 0 .. T-1 (T = 1000, table 9); x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, with
  abar_t = prod_{s <= t} (1 - beta_s), so even t = 0 adds a little noise;
- schedule "scaled_linear" (default): beta_t linear in sqrt(beta) from 0.00085 to 0.012, the
  latent-diffusion schedule Make-An-Audio 2 trains its 20-channel audio latents with (the same
  table-9 model); "linear": DDPM's beta linear from 1e-4 to 0.02 (pass those ends);
- the network predicts epsilon (eq. 6); the loss is the masked MSE over valid frames;
- DDIM timesteps: "trailing" spacing by default, t_i = round(T - i T / S) - 1 for i = 0..S-1
  (1000 steps, S = 50: 999, 979, ..., 19), so sampling starts at the last training step,
  where x_T is closest to N(0, I), and the final update goes from t = 19 straight to the
  clean latent (abar = 1). "leading" is latent diffusion's "uniform" spacing,
  range(0, T, T // S) + 1 (981, 961, ..., 1), kept for comparison with that code.

Every tensor of random numbers is drawn from the optional ``generator``, which must live on
the same device as the latents.

On a GPU the sampling loop never waits for the device: the timesteps of a chain are Python
ints, so every schedule coefficient of a step is a Python float computed on the host (no
table lookup on the device, no copy to it, no ``.item()``), and the kernels of the next
steps queue up while the GPU works (docs/diffusion.md, "On the GPU"). Training draws one
timestep per sample, a tensor: those look up a copy of the schedule kept on the latents'
device (made once per device and dtype).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn

EpsFn = Callable[[torch.Tensor, int, int], torch.Tensor]  # (x_t, t, step index) -> eps


def make_betas(num_timesteps: int, schedule: str, beta_start: float, beta_end: float) -> torch.Tensor:
    if schedule == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=torch.float64) ** 2
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
    raise ValueError(f"unknown beta schedule {schedule!r}; use 'scaled_linear' or 'linear'")


def randn(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def latent_scale(latents: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """1 / std of VAE latents [B, C, L] over valid frames (mask [B, L]).

    The schedule assumes unit-variance data (latent diffusion's / Make-An-Audio 2's
    scale_by_std): train and sample on latents * scale, decode latents / scale, and store
    the scale with the diffusion checkpoint.
    """
    x = latents if mask is None else latents.transpose(1, 2)[mask.bool()]
    return float(1.0 / x.float().std().clamp(min=1e-8))


class Diffusion:
    def __init__(
        self,
        num_timesteps: int = 1000,
        beta_schedule: str = "scaled_linear",
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
    ):
        self.num_timesteps = num_timesteps
        self.betas = make_betas(num_timesteps, beta_schedule, beta_start, beta_end)
        # float64 on the CPU. Sampling reads it as Python floats (_abar_host), training through
        # a copy on the latents' device and dtype (_abar_table), so no step copies it.
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)
        self._abar_host: list[float] = self.alphas_cumprod.tolist()
        self._abar_tables: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    @classmethod
    def from_config(cls, cfg) -> Diffusion:
        """The process a DiTConfig (or anything with the same four fields) was trained with."""
        return cls(cfg.num_timesteps, cfg.beta_schedule, cfg.beta_start, cfg.beta_end)

    def abar(self, t, like: torch.Tensor) -> torch.Tensor | float:
        """abar_t; t = -1 -> 1 (the clean end of a DDIM chain).

        t a Python int (a sampling step): a Python float, computed on the host. t a tensor
        ([B] steps of a training batch, or 0-dim): a tensor on `like`'s device and dtype,
        broadcastable against `like` [B, ...], looked up in a copy of the schedule kept on
        that device, so no step copies anything between host and device."""
        if not isinstance(t, torch.Tensor):
            t = int(t)
            if t >= self.num_timesteps:
                raise IndexError(f"timestep {t} is out of range for {self.num_timesteps} steps")
            return 1.0 if t < 0 else self._abar_host[t]
        table = self._abar_table(like.device, like.dtype)
        t = t.to(like.device)
        a = torch.where(t >= 0, table[t.clamp(min=0)], table.new_ones(()))
        return a.reshape(a.shape + (1,) * (like.ndim - a.ndim)) if a.ndim else a

    def _abar_table(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """alphas_cumprod on `device` in `dtype`, copied there once (the first training step)."""
        key = (torch.device(device), dtype)
        table = self._abar_tables.get(key)
        if table is None:
            table = self._abar_tables[key] = self.alphas_cumprod.to(device=device, dtype=dtype)
        return table

    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise (eq. 5)."""
        a = self.abar(t, x0)
        if isinstance(a, float):
            return math.sqrt(a) * x0 + math.sqrt(1 - a) * noise
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """The clean latent implied by a noise prediction: (x_t - sqrt(1 - abar) eps) / sqrt(abar)."""
        a = self.abar(t, x_t)
        if isinstance(a, float):
            return (x_t - math.sqrt(1 - a) * eps) / math.sqrt(a)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def training_loss(
        self,
        model: nn.Module,
        x0: torch.Tensor,
        cond: torch.Tensor | None,
        mask: torch.Tensor | None = None,
        p_uncond: float = 0.1,
        generator: torch.Generator | None = None,
        cond_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Epsilon-prediction loss (eq. 6) averaged over valid frames and channels.

        x0 [B, C, L] clean target latents; cond [B, Cc, Lc] the other modality's latents;
        mask [B, L] bool valid frames (cond_mask defaults to it inside the model);
        p_uncond: probability of replacing a sample's condition by the null embedding, which
        trains the unconditional model classifier-free guidance needs (section 4).
        """
        B = x0.shape[0]
        t = torch.randint(0, self.num_timesteps, (B,), generator=generator, device=x0.device)
        noise = randn(x0.shape, generator, x0)
        x_t = self.q_sample(x0, t, noise)
        drop = torch.rand(B, generator=generator, device=x0.device) < p_uncond
        pred = model(x_t, t, cond, cond_mask=cond_mask, x_mask=mask, drop_cond=drop)
        err = (pred - noise) ** 2
        if mask is None:
            return err.mean()
        m = mask.to(err.dtype)[:, None]
        return (err * m).sum() / (m.sum() * err.shape[1]).clamp(min=1.0)

    def ddim_timesteps(self, steps: int = 50, spacing: str = "trailing") -> list[int]:
        """Descending DDIM timesteps (see the module docstring)."""
        T = self.num_timesteps
        if not 1 <= steps <= T:
            raise ValueError(f"DDIM steps must be in 1..{T}, got {steps}")
        if spacing == "trailing":
            ts = [int(round(T - i * T / steps)) - 1 for i in range(steps)]
        elif spacing == "leading":
            ts = [t + 1 for t in range(0, T, T // steps)][:steps][::-1]
            ts = [min(t, T - 1) for t in ts]
        else:
            raise ValueError(f"unknown DDIM spacing {spacing!r}; use 'trailing' or 'leading'")
        return ts

    def ddim_step(
        self,
        x_t: torch.Tensor,
        t: int,
        t_prev: int,
        eps: torch.Tensor,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDIM update x_t -> x_{t_prev} (t_prev = -1: the clean latent).

        Returns (x_prev, x0_hat). eta = 0 is deterministic; eta = 1 matches DDPM's variance.
        With int timesteps (sampling) every coefficient is a Python float (see abar).
        """
        a, a_prev = self.abar(t, x_t), self.abar(t_prev, x_t)
        if isinstance(a, float) and isinstance(a_prev, float):
            x0_hat = (x_t - math.sqrt(1 - a) * eps) / math.sqrt(a)
            sigma = eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
            x_prev = math.sqrt(a_prev) * x0_hat + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        else:
            a, a_prev = (v if isinstance(v, torch.Tensor) else x_t.new_tensor(v) for v in (a, a_prev))
            x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
            sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
            x_prev = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and t_prev >= 0:
            x_prev = x_prev + sigma * randn(x_t.shape, generator, x_t)
        return x_prev, x0_hat

    def replace_known(
        self,
        x_t: torch.Tensor,
        t: int,
        known: torch.Tensor | None,
        known_mask: torch.Tensor | None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Inpainting by replacement (RePaint without resampling, as latent diffusion's DDIM
        `mask` / `x0`): frames where known_mask [B, L] is True are set to a fresh forward
        sample q(x_t | known), so the model denoises the unknown frames around them."""
        if known is None:
            return x_t
        noisy = self.q_sample(known, t, randn(known.shape, generator, known))
        return torch.where(known_mask[:, None].bool(), noisy, x_t)

    @torch.no_grad()
    def ddim_sample(
        self,
        eps_fn: EpsFn,
        shape: tuple[int, ...],
        steps: int = 50,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        x_T: torch.Tensor | None = None,
        device: torch.device | str | None = None,
        known: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
        spacing: str = "trailing",
        solver: str = "ddim",
    ) -> torch.Tensor:
        """Run DDIM (or another Solver: "dpm++2m") from x_T ~ N(0, I) (or the given x_T) to a
        clean latent.

        eps_fn(x_t, t, i) returns the (guided) noise prediction at DDIM step i (timestep t).
        known / known_mask: frames to hold to a known latent (see replace_known); the returned
        latent there is the model's own final estimate, not the known values, so callers can
        blend the two.
        """
        if x_T is None:
            if device is None:
                device = known.device if known is not None else "cpu"
            x = torch.randn(shape, generator=generator, device=device)
        else:
            x = x_T
        ts = self.ddim_timesteps(steps, spacing)
        chain = Solver(self, solver, eta, generator)
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            x = self.replace_known(x, t, known, known_mask, generator)
            x, _ = chain.step(x, t, t_prev, eps_fn(x, t, i))
        return x


# --------------------------------------------------------------------------- solvers

SOLVERS = ("ddim", "dpm++2m")


class Solver:
    """The update rule of a sampling chain, one per chain (a multistep rule keeps history):
    step(x_t, t, t_prev, eps) -> (x_{t_prev}, x0_hat), over Diffusion.ddim_timesteps.

    - "ddim": Diffusion.ddim_step (eta as given).
    - "dpm++2m": DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", algorithm 2; the
      multistep data-prediction solver of k-diffusion / diffusers), deterministic. In
      lambda = log(alpha / sigma) it integrates the x0 prediction exactly for a linear
      interpolation of the last two predictions, so it reaches DDIM's quality in about half
      the steps. The first step and the last (to the clean latent, sigma = 0) are first order,
      which is DDIM's update.
    """

    def __init__(self, diffusion: Diffusion, kind: str = "ddim", eta: float = 0.0, generator=None):
        if kind not in SOLVERS:
            raise ValueError(f"unknown solver {kind!r}; use {' or '.join(SOLVERS)}")
        if kind != "ddim" and eta != 0:
            raise ValueError(f"eta > 0 needs the ddim solver, not {kind}")
        self.diffusion, self.kind, self.eta, self.generator = diffusion, kind, eta, generator
        self._last: tuple[torch.Tensor, float] | None = None  # previous x0 prediction and its step h

    def step(self, x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "ddim":
            return self.diffusion.ddim_step(x_t, t, t_prev, eps, self.eta, self.generator)
        # Python floats throughout (t, t_prev are ints): no tensor is read back to the host.
        a, a_prev = self.diffusion.abar(int(t), x_t), self.diffusion.abar(int(t_prev), x_t)
        x0 = (x_t - math.sqrt(1 - a) * eps) / math.sqrt(a)
        if t_prev < 0:  # sigma = 0: the chain ends at the prediction
            return x0, x0
        lam = 0.5 * (math.log(a) - math.log1p(-a))
        lam_prev = 0.5 * (math.log(a_prev) - math.log1p(-a_prev))
        h = lam_prev - lam
        d0 = x0
        if self._last is not None:
            x0_last, h_last = self._last
            r = h_last / h
            d0 = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_last
        self._last = (x0, h)
        sigma_ratio = math.sqrt((1 - a_prev) / (1 - a))
        x_prev = sigma_ratio * x_t + (math.sqrt(a_prev) * -math.expm1(-h)) * d0
        return x_prev, x0
