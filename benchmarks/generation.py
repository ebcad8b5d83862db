"""Latency of a 30 s joint generation (each preset's default sampler as momu-generate uses
it: 50 DDIM steps for paper, 12 DPM-Solver++ steps for small/tiny; guidance, both DiTs by
cross-guidance, VAE decode, vocoder, rendering) per preset, with the share of each stage.
Random weights: the time does not depend on what the models learned."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import append_results, peak_rss_mb
from momu_data.timebase import FPS
from momu_models.diffusion.sampling import joint_sample
from momu_models.generate.length import parse_length
from momu_models.generate.outputs import write_outputs
from momu_models.generate.pipeline import CPU_SOLVER, CPU_STEPS, PAPER_SOLVER, PAPER_STEPS
from momu_models.generate.vocoders import get_vocoder
from momu_models.models.dit import DiT, make_config
from momu_models.models.vae import PRESETS, BiCoRVAE


def run(
    device: str = "cpu",
    presets=("tiny", "small", "paper"),
    seconds: float = 30.0,
    steps: int | None = None,
    vocoder: str = "auto",
    measured_steps: dict | None = None,
    solver: str | None = None,
) -> str:
    """steps / solver: None = the preset's default (pipeline: paper 50 DDIM, else 12
    DPM-Solver++). measured_steps: {preset: n} runs that preset's diffusion with n steps and
    scales the time to `steps` (every step costs the same: a fixed-length sequence, and the
    switch to cross-guidance stays at the same fraction of the steps), for presets too slow
    to run 50 steps on a CPU. The row says so."""
    measured_steps = measured_steps or {}
    dev = torch.device(device)
    voc = get_vocoder(vocoder, device=device)
    rows = []
    frames = parse_length(f"{seconds:g}s", FPS)
    for name in presets:
        vae = BiCoRVAE(PRESETS[name]).to(dev).eval()
        m2mu, mu2m = DiT(make_config(name)).to(dev).eval(), DiT(make_config(name)).to(dev).eval()
        L = vae.latent_length(frames)
        g = torch.Generator(device=dev).manual_seed(0)
        times = {}
        k = steps or (PAPER_STEPS if name == "paper" else CPU_STEPS)
        sol = solver or (PAPER_SOLVER if name == "paper" else CPU_SOLVER)
        t = time.perf_counter()
        n = measured_steps.get(name, k)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            js = joint_sample(m2mu, mu2m, L, n, 3.0, g, cross_start=0.5, solver=sol)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        label = f"diffusion (2 DiTs x {k} {sol} steps x CFG)"
        if n != k:
            label += f", measured {n} steps x {k / n:g}"
        times[label] = (time.perf_counter() - t) * k / n
        t = time.perf_counter()
        with torch.no_grad():
            mel = vae.decode_music(js.music.float(), frames).float().cpu().numpy()[0]
            pose = vae.decode_motion(js.motion.float(), frames).float().cpu().numpy()[0]
        times["VAE decode"] = time.perf_counter() - t
        t = time.perf_counter()
        wav = voc(np.clip(mel, -11.5, 3.0))
        times[f"vocoder ({voc.name})"] = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as td:
            t = time.perf_counter()
            write_outputs(Path(td), "bench", np.clip(pose, -5, 5), wav)
            times["render mp4 + plot + files"] = time.perf_counter() - t
        total = sum(times.values())
        windows = "" if L <= m2mu.config.max_len else f", {L} latent frames in windows of {m2mu.config.max_len}"
        rows.append((f"{name}: {seconds:g} s joint sample{windows}", f"{total:.1f} s total"))
        for k, v in times.items():
            rows.append((f"  {name}: {k}", f"{v:.1f} s ({v / total:.0%})"))
    rows.append(("peak memory (process)", f"{peak_rss_mb():.0f} MB"))
    sampler = f"{steps} steps" if steps else "each preset's default sampler"
    return append_results(f"{seconds:g} s joint generation ({device}, {sampler})", rows)
