"""Training throughput of the BiCoR-VAE stages and the DiT, per preset, on random batches
of the shard format (timing only: the numbers do not depend on the data's content)."""

from __future__ import annotations

import time
from functools import partial

import torch

from benchmarks.common import append_results, peak_rss_mb
from momu_models.diffusion.process import Diffusion
from momu_models.models.discriminator import MelDiscriminator
from momu_models.models.dit import DiT, make_config
from momu_models.models.parameters import count_parameters
from momu_models.models.vae import PRESETS, BiCoRVAE
from momu_models.train.vae_steps import motion_stage_step, music_stage_step


def _batch(B: int, T: int, device) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "mel": (torch.randn(B, 80, T, generator=g) * 2 - 5).to(device),
        "pose": torch.randn(B, T, 14, 2, generator=g).to(device),
        "amp": torch.rand(B, T, generator=g).to(device),
        "mask": torch.ones(B, T, dtype=torch.bool, device=device),
    }


def _time(fn, warmup: int, steps: int, device) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def vae_rows(device, presets=("tiny", "small", "paper"), seconds: float = 4.0) -> list[tuple[str, str]]:
    rows = []
    T = int(seconds * 62.5) // 2 * 2
    for name in presets:
        B = 8 if name != "paper" else (8 if device.type == "cuda" else 1)
        steps = 3 if name == "paper" and device.type == "cpu" else 10
        cfg = PRESETS[name]
        model = BiCoRVAE(cfg).to(device)
        disc = MelDiscriminator.from_config(cfg).to(device)
        og = torch.optim.AdamW(model.stage_parameters(1), 2e-4)
        od = torch.optim.AdamW(disc.parameters(), 2e-4)
        om = torch.optim.AdamW(model.stage_parameters(2), 2e-4)
        b = _batch(B, T, device)
        ac = torch.bfloat16 if device.type == "cuda" else None
        s1 = _time(partial(music_stage_step, model, disc, b, og, od, autocast=ac), 1, steps, device)
        s2 = _time(partial(motion_stage_step, model, b, om, autocast=ac), 1, steps, device)
        lat = T // model.factor
        rows.append(
            (
                f"VAE {name} ({count_parameters(model) / 1e6:.2f} M), stage 1, batch {B} x {seconds:g} s",
                f"{B / s1:.1f} clips/s, {B * lat / s1:.0f} latent frames/s ({s1 * 1000:.0f} ms/step)",
            )
        )
        rows.append(
            (
                f"VAE {name}, stage 2, batch {B} x {seconds:g} s",
                f"{B / s2:.1f} clips/s, {B * lat / s2:.0f} latent frames/s ({s2 * 1000:.0f} ms/step)",
            )
        )
    return rows


def dit_rows(device, presets=("tiny", "small", "paper")) -> list[tuple[str, str]]:
    rows = []
    for name in presets:
        cfg = make_config(name)
        L = cfg.max_len
        B = 8 if name != "paper" else (8 if device.type == "cuda" else 1)
        steps = 3 if name == "paper" and device.type == "cpu" else 10
        model = DiT(cfg).to(device)
        diff = Diffusion.from_config(cfg)
        opt = torch.optim.AdamW(model.parameters(), 1e-4)
        x0 = torch.randn(B, 20, L, device=device)
        c = torch.randn(B, 20, L, device=device)

        def step(model=model, diff=diff, x0=x0, c=c, opt=opt):  # bound now: timed inside this iteration
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = diff.training_loss(model, x0, c)
            opt.zero_grad()
            loss.backward()
            opt.step()

        s = _time(step, 1, steps, device)
        rows.append(
            (
                f"DiT {name} ({model.num_params() / 1e6:.2f} M), batch {B} x {L} latent frames ({L / 31.25:.1f} s)",
                f"{B / s:.1f} clips/s, {B * L / s:.0f} latent frames/s ({s * 1000:.0f} ms/step)",
            )
        )
    return rows


def run(device: str = "cpu", presets=("tiny", "small", "paper")) -> str:
    dev = torch.device(device)
    rows = vae_rows(dev, presets) + dit_rows(dev, presets)
    rows.append(
        (
            "peak memory (process)",
            f"{peak_rss_mb():.0f} MB"
            + (f", GPU {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if dev.type == "cuda" else ""),
        )
    )
    return append_results(f"Training throughput ({device}, {torch.get_num_threads()} threads)", rows)
