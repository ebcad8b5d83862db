"""The one prepared GPU check: `python -m benchmarks gpu [--out DIR] [--tiny] [--budget S] [--device D]`
(`make gpu-check`; docs/gpu.md says what each figure means and how to run it on a GPU machine).

Five sections, written to DIR/gpu_check.json and DIR/gpu_check.md (atomically) after each one
and after each measurement inside one, so that a run stopped by its timeout still leaves
what it measured:

1. environment: versions, the device, the optional packages found, the bf16 peak that model
   FLOP utilisation (MFU) is computed against;
2. cuda_tests: `pytest -m cuda tests/cuda` in a subprocess (they skip without a GPU);
3. throughput: training steps of BiCoR-VAE stage 1, stage 2 and the DiT (bf16 autocast on
   CUDA, fused AdamW, as the trainers step) at the largest batch that fits, plus the frozen
   VAE's encoding of a DiT batch (the diffusion trainer encodes every batch);
4. latency: a 30 s joint generation (50 DDIM steps, guidance 3, cross-guidance) per stage,
   eager and with bf16 autocast, torch.compile and CUDA graphs;
5. projection: the paper's schedules on an AIST++-sized set from the measured rates.

Every section looks at the time left first (--budget, default 330 s: the whole check with
its tests fits in 6 minutes on one H200) and records "skipped: budget" instead of running
over. --tiny (the CPU test, tests/test_gpu_check.py) uses the tiny presets, batches of 2 and 4
and a 1.5 s generation with 3 steps. Random weights throughout: the timings do not depend on what a model learned.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import importlib.metadata as md
import importlib.util
import math
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import machine
from momu_data.io import write_bytes, write_json
from momu_data.timebase import FPS
from momu_models.diffusion.guidance import cross_guidance_start
from momu_models.diffusion.process import Diffusion
from momu_models.diffusion.sampling import joint_sample
from momu_models.generate.length import parse_length
from momu_models.generate.vocoders import GriffinLimVocoder
from momu_models.models.discriminator import MelDiscriminator
from momu_models.models.dit import DiT, make_config
from momu_models.models.vae import PRESETS as VAE_PRESETS
from momu_models.models.vae import BiCoRVAE
from momu_models.train.diffusion import encode_pair
from momu_models.train.loop import crop_frames, finite_update
from momu_models.train.optim import adamw, is_fused
from momu_models.train.vae_steps import motion_stage_step, music_stage_step

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("environment", "cuda_tests", "throughput", "latency", "projection")
DEFAULT_BUDGET = 330.0

# bf16 dense matrix peak of this project's H200, measured: an 8192^3 bf16 product through
# torch ran at 769-798 TFLOP/s on random data (the datasheet's ~990 is not reached).
H200_BF16_PEAK = 790e12

# The paper's schedules (appendix A.2, B.3) on the LORIS benchmark's AIST++ subset (appendix B.1).
AISTPP = {"clips": 1881, "clip_seconds": 25.0, "train_fraction": 0.9}
PAPER_SCHEDULE = {"vae_epochs": 300, "dit_epochs": 200, "dit_tasks": 2}

# Optional or carried packages worth knowing about on a GPU box: import name -> distribution.
PACKAGES = {
    "webdataset": "webdataset",
    "braceexpand": "braceexpand",
    "librosa": "librosa",
    "soundfile": "soundfile",
    "soxr": "soxr",
    "audioread": "audioread",
    "pooch": "pooch",
    "pyarrow": "pyarrow",
    "scipy": "scipy",
    "safetensors": "safetensors",
    "matplotlib": "matplotlib",
    "tensorboard": "tensorboard",
    "numba": "numba",
    "triton": "triton",
    "pytest": "pytest",
    "av": "av",
    "cv2": "opencv-python-headless",
    "mediapipe": "mediapipe",
    "dask": "dask",
    "ai_edge_litert": "ai-edge-litert",
}


@dataclass(frozen=True)
class Settings:
    """What a run measures: the GPU run (paper presets) or the CPU test (--tiny)."""

    preset: str
    vae_crop_seconds: float  # VAE training crops (TrainArgs.crop_seconds: 4 s)
    dit_clip_seconds: float  # DiT training sequences: a whole AIST++ clip (shorter than max_len)
    batch_start: int
    batch_cap: int
    gen_seconds: float
    gen_steps: int
    compile: bool
    timed_steps: int  # at most, per throughput measurement
    gen_runs: int  # timed generations per latency variant (the best is kept), after a first one


def settings(tiny: bool, compile: bool | None = None) -> Settings:
    if tiny:
        return Settings("tiny", 1.0, 25.0, 2, 4, 1.5, 3, bool(compile), 3, 1)
    return Settings("paper", 4.0, AISTPP["clip_seconds"], 8, 512, 30.0, 50, compile is not False, 20, 2)


# ----------------------------------------------------------------------------- utilities


class Budget:
    """The check's deadline: every section asks what is left before it starts."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.seconds - self.elapsed()


def skipped_budget(need: float, left: float) -> str:
    return f"skipped: budget (needs about {need:.0f} s, {max(left, 0):.0f} s left)"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def free(dev: torch.device) -> None:
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def one_line(e: BaseException, limit: int = 240) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:limit]


def count_flops(fn) -> tuple[int, object]:
    """(FLOPs, fn's result) of fn() as torch.utils.flop_counter counts them: matrix products,
    convolutions and attention, forward and backward (a multiply-add is 2 FLOPs); the
    element-wise work (norms, activations, the optimiser) is not counted, as MFU conventions have it."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return int(counter.get_total_flops()), out


def sig(v, digits: int = 4):
    """Floats to `digits` significant digits (other values unchanged), for the report."""
    if isinstance(v, float) and v != 0 and math.isfinite(v):
        return round(v, digits - 1 - int(math.floor(math.log10(abs(v)))))
    return v


def mfu(flops_per_s: float | None, peak: float | None) -> float | None:
    if flops_per_s is None or not peak:
        return None
    return flops_per_s / peak


def is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return True
    msg = str(e)
    return "out of memory" in msg or "ALLOC_FAILED" in msg


# ----------------------------------------------------------------------------- 1. environment


def measure_matmul_peak(dev: torch.device, n: int = 8192, reps: int = 50) -> float:
    """bf16 FLOP/s of an n^3 matrix product on random data (3 warm-ups, mean of `reps`)."""
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(dev)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(dev)
    dt = (time.perf_counter() - t) / reps
    del a, b
    free(dev)
    return 2 * n**3 / dt


def environment(dev: torch.device, peak_tflops: float | None) -> dict:
    env: dict = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
    }
    packages = {}
    for mod, dist in PACKAGES.items():
        try:
            found = importlib.util.find_spec(mod) is not None
        except ImportError:  # a finder that hides it (tests/conftest.py, MOMU_HIDE_OPTIONAL)
            found = False
        if not found:
            packages[mod] = None
            continue
        try:
            packages[mod] = md.version(dist)
        except md.PackageNotFoundError:
            packages[mod] = "found"
    env["packages"] = packages
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        env.update(
            device_name=p.name,
            capability=f"{p.major}.{p.minor}",
            multiprocessors=p.multi_processor_count,
            memory_gib=round(p.total_memory / 2**30, 1),
            bf16_supported=torch.cuda.is_bf16_supported(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
            sdpa_flash=torch.backends.cuda.flash_sdp_enabled(),
            sdpa_mem_efficient=torch.backends.cuda.mem_efficient_sdp_enabled(),
        )
        try:
            measured = measure_matmul_peak(dev)
            env["matmul_bf16_tflops_measured"] = round(measured / 1e12, 1)
        except RuntimeError as e:  # e.g. a GPU without bf16 matrix units
            measured = None
            env["matmul_bf16_tflops_measured"] = f"error: {one_line(e)}"
        if peak_tflops:
            peak, source = peak_tflops * 1e12, "--peak-tflops"
        elif "H200" in p.name:
            peak, source = H200_BF16_PEAK, "this project's H200, measured (8192^3 bf16 product, random data)"
        elif measured:
            peak, source = measured, "measured here (8192^3 bf16 product, random data)"
        else:
            peak, source = None, "none: the bf16 product failed (--peak-tflops sets one)"
        env["bf16_peak_tflops"] = None if peak is None else round(peak / 1e12, 1)
        env["peak_source"] = source
    else:
        env["device_name"] = machine()["cpu"] or platform.processor()
        if peak_tflops:
            env["bf16_peak_tflops"] = peak_tflops
            env["peak_source"] = "--peak-tflops"
        else:
            env["bf16_peak_tflops"] = None
            env["mfu_note"] = "MFU is null on the CPU: no bf16 matrix peak is known for it (--peak-tflops sets one)"
    return env


def peak_flops(env: dict) -> float | None:
    p = env.get("bf16_peak_tflops")
    return None if p is None else float(p) * 1e12


# ----------------------------------------------------------------------------- 2. CUDA tests


def junit_summary(path: Path) -> dict:
    """Counts and one-line reasons from a pytest --junitxml file."""
    tree = ET.parse(path)
    out = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": [], "skip_reasons": [], "tests": []}
    for case in tree.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        outcome, why = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
                why = (child.get("message") or (child.text or "")).strip().splitlines()
                why = why[0][:300] if why else ""
                break
        out[outcome] += 1
        out["tests"].append({"test": name, "outcome": outcome.rstrip("s") if outcome == "errors" else outcome})
        if outcome in ("failed", "errors"):
            out["failures"].append(f"{name}: {why}")
        elif outcome == "skipped" and why not in out["skip_reasons"]:
            out["skip_reasons"].append(why)
    return out


def run_cuda_tests(out_dir: Path, timeout: float) -> dict:
    """`pytest -m cuda tests/cuda` in a subprocess with the repository on PYTHONPATH (the
    package need not be installed), its junit XML and log in out_dir."""
    if importlib.util.find_spec("pytest") is None:
        return {"status": "error: pytest is not installed"}
    xml, log = out_dir / "cuda_tests.xml", out_dir / "cuda_tests.log"
    xml.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONUNBUFFERED", "1")
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "tests/cuda", "-q", "-rfEs", "-p", "no:cacheprovider"]
    cmd += [f"--junitxml={xml}"]
    t = time.perf_counter()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = None
    res: dict = {"command": " ".join(cmd[1:]), "seconds": round(time.perf_counter() - t, 1), "log": log.name}
    if rc is None:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        return {**res, "status": f"error: timed out after {timeout:.0f} s", "log_tail": tail}
    if not xml.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        return {**res, "status": f"error: pytest exited {rc} without a report", "log_tail": tail}
    res.update(junit_summary(xml), exit_code=rc, junit=xml.name)
    ok = res["failed"] == 0 and res["errors"] == 0 and rc in (0, 5)  # 5: nothing collected
    res["status"] = "ok" if ok else "failed"
    return res


# ----------------------------------------------------------------------------- 3. throughput


def random_batch(B: int, T: int, dev: torch.device) -> dict:
    """A batch in the loader's format (timing only: the content does not matter)."""
    g = torch.Generator().manual_seed(0)
    return {
        "mel": (torch.randn(B, 80, T, generator=g) * 2 - 5).to(dev),
        "pose": torch.randn(B, T, 14, 2, generator=g).to(dev),
        "amp": torch.rand(B, T, generator=g).to(dev),
        "mask": torch.ones(B, T, dtype=torch.bool, device=dev),
    }


class Workload:
    """One kind of training (or encoding) step at a given batch size."""

    name = ""
    sample = ""
    token = ""
    opts: list = []

    def __init__(self, preset: str, dev: torch.device, frames: int):
        self.dev, self.frames = dev, frames
        self.autocast = torch.bfloat16 if dev.type == "cuda" else None

    @property
    def tokens_per_sample(self) -> int:
        return self.frames // 2

    def batch(self, B: int) -> dict:
        return random_batch(B, self.frames, self.dev)

    def step(self, batch: dict) -> None:
        raise NotImplementedError

    def release(self) -> None:
        """Drop the gradients (after an out-of-memory step, before the next size)."""


class VAEStage1(Workload):
    name = "vae_stage1"

    def __init__(self, preset, dev, frames):
        super().__init__(preset, dev, frames)
        cfg = VAE_PRESETS[preset]
        self.model = BiCoRVAE(cfg).to(dev)
        self.disc = MelDiscriminator.from_config(cfg).to(dev)
        # as train/vae.py builds them: the adversarial stage's betas (0.5, 0.9)
        self.opt_g = adamw(self.model.stage_parameters(1), lr=2e-4, betas=(0.5, 0.9))
        self.opt_d = adamw(self.disc.parameters(), lr=2e-4, betas=(0.5, 0.9))
        self.opts = [self.opt_g, self.opt_d]
        self.params = sum(p.numel() for p in self.model.stage_parameters(1)) + sum(
            p.numel() for p in self.disc.parameters()
        )

    def step(self, batch):
        music_stage_step(self.model, self.disc, batch, self.opt_g, self.opt_d, autocast=self.autocast, grad_clip=1.0)

    def release(self):
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)


class VAEStage2(Workload):
    name = "vae_stage2"

    def __init__(self, preset, dev, frames):
        super().__init__(preset, dev, frames)
        self.model = BiCoRVAE(VAE_PRESETS[preset]).to(dev)
        self.opt = adamw(self.model.stage_parameters(2), lr=2e-4)
        self.opts = [self.opt]
        self.params = sum(p.numel() for p in self.model.stage_parameters(2))

    def step(self, batch):
        motion_stage_step(self.model, batch, self.opt, autocast=self.autocast, grad_clip=1.0)

    def release(self):
        self.opt.zero_grad(set_to_none=True)


class DiTStep(Workload):
    """A diffusion training step on latents, as train/diffusion.py takes it after encoding."""

    name = "dit"

    def __init__(self, preset, dev, frames):
        super().__init__(preset, dev, frames)
        self.cfg = make_config(preset)
        self.L = min(self.cfg.max_len, -(-frames // 2))
        self.model = DiT(self.cfg).to(dev)
        self.diffusion = Diffusion.from_config(self.cfg)
        self.opt = adamw(self.model.parameters(), lr=1.6e-5, weight_decay=0.0)  # the paper preset's
        self.opts = [self.opt]
        self.gen = torch.Generator(device=dev).manual_seed(0)
        self.params = self.model.num_params()

    @property
    def tokens_per_sample(self) -> int:
        return self.L

    def batch(self, B):
        g = torch.Generator().manual_seed(0)
        C = self.cfg.in_channels
        return {
            "x0": torch.randn(B, C, self.L, generator=g).to(self.dev),
            "cond": torch.randn(B, self.cfg.cond_channels, self.L, generator=g).to(self.dev),
            "mask": torch.ones(B, self.L, dtype=torch.bool, device=self.dev),
        }

    def step(self, batch):
        self.model.train()
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.autocast is not None):
            loss = self.diffusion.training_loss(self.model, batch["x0"], batch["cond"], batch["mask"], 0.1, self.gen)
        finite_update(loss, self.opt, 1.0)

    def release(self):
        self.opt.zero_grad(set_to_none=True)


class DiTEncode(Workload):
    """The frozen VAE's encoding of a DiT batch (music and motion posterior means), which
    the diffusion trainer runs before every step (train/diffusion.py encode_pair, under the
    trainer's autocast)."""

    name = "dit_encode"

    def __init__(self, preset, dev, frames):
        super().__init__(preset, dev, frames)
        self.vae = BiCoRVAE(VAE_PRESETS[preset]).to(dev).eval().requires_grad_(False)
        self.params = sum(p.numel() for p in self.vae.music.encoder.parameters()) + sum(
            p.numel() for p in self.vae.motion.encoder.parameters()
        )

    def step(self, batch):
        encode_pair(self.vae, batch, {"music": 1.0, "motion": 1.0}, self.autocast)


def try_batch(w: Workload, B: int) -> tuple[float | None, str]:
    """Two steps at batch B (the second timed): (step seconds, "") or (None, why not)."""
    dev = w.dev
    batch = None
    try:
        batch = w.batch(B)
        w.step(batch)
        sync(dev)
        t = time.perf_counter()
        w.step(batch)
        sync(dev)
        return time.perf_counter() - t, ""
    except RuntimeError as e:  # torch.cuda.OutOfMemoryError is one
        why = "out of memory" if is_oom(e) else one_line(e)
    del batch
    w.release()
    free(dev)
    return None, why


def largest_batch(w: Workload, start: int, cap: int, deadline: float) -> tuple[int | None, list[dict]]:
    """Double the batch from `start` until a step fails (out of memory), `cap` is passed or
    the deadline comes; if `start` itself fails, halve it until one fits. Returns the
    largest batch that ran and every trial."""
    trials: list[dict] = []
    best, B, down = None, start, False
    while 1 <= B <= cap:
        if time.perf_counter() > deadline:
            trials.append({"batch": B, "result": "not tried: time share used"})
            break
        t, why = try_batch(w, B)
        trials.append({"batch": B, "step_ms": sig(t * 1000)} if t is not None else {"batch": B, "result": why})
        if t is not None:
            best = B
            if down:
                break
            B *= 2
        elif best is None and B > 1:
            B, down = B // 2, True
        else:
            break
    return best, trials


def time_steps(w: Workload, B: int, seconds: float, peak: float | None, most: int = 20) -> dict:
    """At batch B: one step under FlopCounterMode (its FLOPs), one warm-up, one step to size
    the run, then as many timed steps as fit in `seconds` (3 to `most`)."""
    dev = w.dev
    t0 = time.perf_counter()
    batch = w.batch(B)
    flops, _ = count_flops(lambda: w.step(batch))
    w.step(batch)
    sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t = time.perf_counter()
    w.step(batch)
    sync(dev)
    one = time.perf_counter() - t
    n = int(max(3, min(most, (seconds - (time.perf_counter() - t0)) / max(one, 1e-6))))
    t = time.perf_counter()
    for _ in range(n):
        w.step(batch)
    sync(dev)
    step_s = (time.perf_counter() - t) / n
    u = mfu(flops / step_s, peak)
    return dict(
        status="ok",
        batch=B,
        timed_steps=n,
        step_ms=sig(step_s * 1000),
        samples_per_s=sig(B / step_s),
        tokens_per_s=sig(B * w.tokens_per_sample / step_s),
        flops_per_step=flops,
        tflops_per_s=sig(flops / step_s / 1e12),
        mfu=sig(u),
        peak_memory_gib=round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None,
    )


def measure_workload(w: Workload, start: int, cap: int, seconds: float, peak: float | None, most: int = 20) -> dict:
    """Largest batch (growth gets 60 % of `seconds`), then FLOPs of one step counted with
    FlopCounterMode, one more warm-up and as many timed steps as fit (3 to `most`)."""
    t0 = time.perf_counter()
    B, trials = largest_batch(w, start, cap, t0 + 0.6 * seconds)
    res: dict = {"params": w.params, "sample": w.sample, "token": w.token, "tokens_per_sample": w.tokens_per_sample}
    res["trials"] = trials
    if B is None:
        res["status"] = "error: no batch size ran (" + "; ".join(t.get("result", "") for t in trials) + ")"
        return res
    try:
        res.update(time_steps(w, B, seconds - (time.perf_counter() - t0), peak, most))
    except RuntimeError as e:  # e.g. out of memory at the largest batch once fragmented
        res["status"] = f"error at batch {B}: {'out of memory' if is_oom(e) else one_line(e)}"
    if res["status"] != "ok":
        w.release()
        free(w.dev)
        return res
    if isinstance(w, DiTStep):
        res["transformer_tokens_per_s"] = sig(B * (1 + 2 * w.L) / (res["step_ms"] / 1000))
    return res


def workloads(s: Settings, dev: torch.device) -> list[tuple[str, type, int, str, str]]:
    vae_frames = crop_frames(argparse.Namespace(crop_seconds=s.vae_crop_seconds), 2)
    dit_frames = int(s.dit_clip_seconds * FPS)
    dit_frames -= dit_frames % 2
    vae_sample = f"one {s.vae_crop_seconds:g} s crop ({vae_frames} mel frames), the VAE trainer's crop"
    dit_len = min(make_config(s.preset).max_len, dit_frames // 2)
    dit_frames = 2 * dit_len  # what the diffusion trainer crops: at most max_len latent frames
    dit_sample = (
        f"one {s.dit_clip_seconds:g} s clip ({dit_frames} mel frames, {dit_len} latent frames; the preset's "
        f"crop is max_len {make_config(s.preset).max_len} latent frames, so an AIST++ clip is taken whole"
        if dit_len < make_config(s.preset).max_len
        else f"one crop of max_len {dit_len} latent frames ({dit_len * 2} mel frames)"
    )
    return [
        ("vae_stage1", VAEStage1, vae_frames, vae_sample, "latent frame (2 mel frames)"),
        ("vae_stage2", VAEStage2, vae_frames, vae_sample, "latent frame (2 mel frames)"),
        ("dit", DiTStep, dit_frames, dit_sample, "latent frame of the generated modality (the sequence has 1 + 2 L)"),
        ("dit_encode", DiTEncode, dit_frames, dit_sample, "latent frame (2 mel frames)"),
    ]


# relative time shares inside the throughput section (the encoding is forward-only)
WORKLOAD_SHARES = {"vae_stage1": 1.0, "vae_stage2": 1.0, "dit": 1.2, "dit_encode": 0.4}


def throughput(s: Settings, dev: torch.device, seconds: float, peak, min_part: float, save, out: dict) -> None:
    """Fill `out` (already in the report, so each save() shows what is measured so far)."""
    out["autocast"] = "bf16" if dev.type == "cuda" else "none (CPU)"
    t_end = time.perf_counter() + seconds
    specs = workloads(s, dev)
    dit_batch = None
    for i, (name, cls, frames, sample, token) in enumerate(specs):
        left = t_end - time.perf_counter()
        share = left * WORKLOAD_SHARES[name] / sum(WORKLOAD_SHARES[n] for n, *_ in specs[i:])
        if share < min_part:
            out[name] = {"status": skipped_budget(min_part, share)}
            save()
            continue
        w = None
        try:
            w = cls(s.preset, dev, frames)
            w.sample, w.token = sample, token
            cap = s.batch_cap if name != "dit_encode" or dit_batch is None else dit_batch
            out[name] = measure_workload(w, min(s.batch_start, cap), cap, share, peak, s.timed_steps)
            if w.opts:
                out["optimizer"] = "AdamW (momu_models.train.optim), " + (
                    "fused" if all(is_fused(o) for o in w.opts) else "not fused"
                )
            if name == "dit" and out[name].get("batch"):
                dit_batch = out[name]["batch"]
        except Exception as e:  # recorded; the next workload runs
            out[name] = {"status": f"error: {one_line(e)}"}
        del w
        free(dev)
        save()
    if dit_batch and out.get("dit_encode", {}).get("status") == "ok":
        enc = out["dit_encode"]
        out["dit_encode"]["note"] = (
            f"timed at batch {enc['batch']} (the DiT's largest is {dit_batch}), autocast as the trainer's"
        )
    out["status"] = "ok"


# ----------------------------------------------------------------------------- 4. latency


class Cloned(nn.Module):
    """A compiled DiT whose outputs are copied out of CUDA-graph memory at once (a graph
    replay overwrites its last outputs); keeps the DiT's config for the samplers."""

    def __init__(self, compiled: nn.Module, config, graphs: bool):
        super().__init__()
        self.inner, self.config, self.graphs = compiled, config, graphs

    def forward(self, *args, **kwargs):
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
        return self.inner(*args, **kwargs).clone()


def compile_counters() -> dict:
    """torch.compile's own counts so far: graphs compiled, graph breaks (with their first
    reasons) and CUDA-graph skips (a variant that asked for CUDA graphs but ran without)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    return {
        "graphs": int(counters["stats"]["unique_graphs"]),
        "graph_breaks": int(sum(counters["graph_break"].values())),
        "graph_break_reasons": [str(r)[:160] for r in list(counters["graph_break"])[:3]],
        "cudagraph_skips": int(counters["inductor"]["cudagraph_skips"]),
    }


def forward_census(models) -> tuple[dict, list]:
    """Count each DiT forward pass by batch size (forward pre-hooks)."""
    census: dict = {}

    def hook(module, args, kwargs):
        x = args[0] if args else kwargs["x_t"]
        census[int(x.shape[0])] = census.get(int(x.shape[0]), 0) + 1

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in models]
    return census, handles


def generate_once(vae, m2mu, mu2m, frames, steps, vocoder, dev, autocast: bool, count: bool = False) -> dict:
    """One joint generation timed per stage (synchronised at each stage's end)."""
    L = vae.latent_length(frames)
    g = torch.Generator(device=dev).manual_seed(0)
    ac = torch.autocast(dev.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    res: dict = {}
    sync(dev)
    t = time.perf_counter()
    with ac:
        if count:
            flops, js = count_flops(lambda: joint_sample(m2mu, mu2m, L, steps, 3.0, g, cross_start=0.5, solver="ddim"))
            res["dit_flops"] = flops
        else:
            js = joint_sample(m2mu, mu2m, L, steps, 3.0, g, cross_start=0.5, solver="ddim")
    sync(dev)
    res["sampling_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad(), ac:
        mel = vae.decode_music(js.music.float(), frames).float().cpu().numpy()[0]
        pose = vae.decode_motion(js.motion.float(), frames).float().cpu().numpy()[0]
    res["decode_s"] = time.perf_counter() - t
    t = time.perf_counter()
    wav = vocoder(np.clip(mel, -11.5, 3.0))
    sync(dev)
    res["vocoder_s"] = time.perf_counter() - t
    res["total_s"] = res["sampling_s"] + res["decode_s"] + res["vocoder_s"]
    res["finite"] = bool(np.isfinite(pose).all() and np.isfinite(wav).all())
    return res


# (name, autocast, compile mode or None, seconds needed before starting on a GPU)
VARIANTS = (
    ("eager fp32", False, None, 10.0),
    ("eager bf16 autocast", True, None, 8.0),
    ("torch.compile (default) + bf16", True, "default", 60.0),
    ("CUDA graphs (compile reduce-overhead) + bf16", True, "reduce-overhead", 60.0),
)


def latency(s: Settings, dev: torch.device, seconds: float, peak, scale_need: float, save, out: dict) -> None:
    """Fill `out` (already in the report) variant by variant."""
    frames = parse_length(f"{s.gen_seconds:g}s", FPS)
    # inference only: no parameter needs a gradient (and FlopCounterMode's module tracker
    # trips over views of parameters that do, made under no_grad)
    torch.manual_seed(0)
    vae = BiCoRVAE(VAE_PRESETS[s.preset]).to(dev).eval().requires_grad_(False)
    m2mu = DiT(make_config(s.preset)).to(dev).eval().requires_grad_(False)
    mu2m = DiT(make_config(s.preset)).to(dev).eval().requires_grad_(False)
    L = vae.latent_length(frames)
    i_c = cross_guidance_start(s.gen_steps, 0.5)  # the first conditioned step (0-based)
    out.update(
        {
            "preset": s.preset,
            "length_s": s.gen_seconds,
            "frames": frames,
            "latent_frames": L,
            "windows": "one" if L <= m2mu.config.max_len else f"sliding windows of {m2mu.config.max_len}",
            "sampler": f"{s.gen_steps} DDIM steps, guidance 3, cross-guidance from step {i_c}",
            "vocoder": "Griffin-Lim (torch engine, 32 iterations) on the device",
            "variants": {},
        }
    )
    vocoder = GriffinLimVocoder(device=dev)
    t_end = time.perf_counter() + seconds
    for name, autocast, mode, need in VARIANTS:
        need *= scale_need
        left = t_end - time.perf_counter()
        if mode is not None and not s.compile:
            why = "--tiny runs no torch.compile unless --compile is given" if s.preset == "tiny" else "--no-compile"
            out["variants"][name] = {"status": f"skipped: {why}"}
            continue
        if mode == "reduce-overhead" and dev.type != "cuda":
            out["variants"][name] = {"status": "skipped: CUDA graphs need a CUDA device"}
            continue
        if left < need:
            out["variants"][name] = {"status": skipped_budget(need, left)}
            save()
            continue
        try:
            a, b = m2mu, mu2m
            if mode is not None:
                torch.compiler.reset()
                counted = compile_counters()
                graphs = mode == "reduce-overhead"
                a = Cloned(torch.compile(m2mu, mode=mode, dynamic=False), m2mu.config, graphs)
                b = Cloned(torch.compile(mu2m, mode=mode, dynamic=False), mu2m.config, graphs)
            first = name == VARIANTS[0][0]
            census, handles = forward_census([m2mu, mu2m]) if first else ({}, [])
            t = time.perf_counter()
            count = mode is None and "dit_flops" not in out
            try:
                warm = generate_once(vae, a, b, frames, s.gen_steps, vocoder, dev, autocast, count=count)
            finally:
                for h in handles:
                    h.remove()
            warm_s = time.perf_counter() - t
            runs = [generate_once(vae, a, b, frames, s.gen_steps, vocoder, dev, autocast) for _ in range(s.gen_runs)]
            res = min(runs, key=lambda r: r["total_s"])  # the best of gen_runs timed runs after the first
            res["timed_runs"] = len(runs)
            res["first_run_s"] = warm_s
            if mode is not None:
                now = compile_counters()
                res["compile"] = {
                    k: (v - counted.get(k, 0)) if isinstance(v, int) else [r for r in v if r not in counted.get(k, [])]
                    for k, v in now.items()
                }
            flops = warm.get("dit_flops") or out.get("dit_flops")
            if flops:
                out.setdefault("dit_flops", flops)
                res["dit_tflops_per_s"] = flops / res["sampling_s"] / 1e12
                u = mfu(flops / res["sampling_s"], peak)
                res["utilisation"] = None if u is None else round(u, 4)
            out["variants"][name] = {"status": "ok", **{k: sig(v) for k, v in res.items()}}
            if mode == "reduce-overhead" and res["compile"].get("cudagraph_skips"):
                out["variants"][name]["note"] = "inductor skipped CUDA graphs for some graphs (cudagraph_skips)"
            if first:
                out["dit_forward_passes"] = {f"batch {k}": v for k, v in sorted(census.items())}
                out["guidance_batched"] = any(k == 2 for k in census)
                out["guidance_note"] = (
                    "classifier-free guidance runs the conditional and the null-condition pass as one batch of 2 "
                    "(momu_models.diffusion.guidance.guided_eps); the unconditional steps before cross-guidance "
                    "need one pass of batch 1"
                )
        except Exception as e:  # recorded; the next variant runs
            out["variants"][name] = {"status": f"error: {one_line(e)}"}
        free(dev)
        save()
    ok = [v for v in out["variants"].values() if v.get("status") == "ok"]
    if ok:
        best = min(ok, key=lambda v: v["total_s"])
        out["best_total_s"] = best["total_s"]
        out["meets_1s_target"] = best["total_s"] <= 1.0 if s.preset == "paper" else None
        out["best_variant"] = next(k for k, v in out["variants"].items() if v is best)
    del vae, m2mu, mu2m
    if s.compile:
        torch.compiler.reset()
    free(dev)
    out["status"] = "ok"


# ----------------------------------------------------------------------------- 5. projection


def project_schedule(
    rates: dict,
    clips: int = AISTPP["clips"],
    train_fraction: float = AISTPP["train_fraction"],
    vae_epochs: int = PAPER_SCHEDULE["vae_epochs"],
    dit_epochs: int = PAPER_SCHEDULE["dit_epochs"],
    dit_tasks: int = PAPER_SCHEDULE["dit_tasks"],
) -> dict:
    """Projected wall time of the paper's schedules from measured step times.

    rates: {"vae_stage1": {"batch", "step_s"}, "vae_stage2": {...}, "dit": {"batch", "step_s",
    "encode_s" (the VAE's encoding of that batch; 0 if unknown)}}; a missing entry is left out.
    An epoch is one pass over the train split, one random crop per clip (our loader's
    RandomCrop), so it has `train clips` samples, and the trainers turn epochs into steps as
    momu-train does: steps = round(epochs x (train clips // batch)) (train/args.py apply_epochs).
    """
    train = int(round(clips * train_fraction))
    out: dict = {
        "train_clips": train,
        "samples_per_epoch": f"{clips} clips x {train_fraction:g} (the paper's split) = {train} train clips; "
        "one random crop of each per epoch",
        "parts": {},
    }
    total = 0.0
    for name, epochs, times in (
        ("vae_stage1", vae_epochs, 1),
        ("vae_stage2", vae_epochs, 1),
        ("dit", dit_epochs, dit_tasks),
    ):
        r = rates.get(name)
        if not r:
            continue
        B, step_s = int(r["batch"]), float(r["step_s"]) + float(r.get("encode_s", 0.0))
        per_epoch = train // B
        steps = max(1, int(round(epochs * per_epoch)))
        seconds = steps * step_s * times
        step_text = f"{float(r['step_s']):.4g} s" + (
            f" + {float(r['encode_s']):.4g} s VAE encoding" if r.get("encode_s") else ""
        )
        arithmetic = f"{epochs} epochs x ({train} // {B} = {per_epoch} steps) = {steps} steps x {step_text}"
        if times > 1:
            arithmetic += f" x {times} tasks"
        arithmetic += f" = {seconds:.0f} s"
        out["parts"][name] = {"batch": B, "steps": steps, "seconds": sig(seconds, 6), "arithmetic": arithmetic}
        total += seconds
    out["total_s"] = sig(total, 6)
    out["total_h"] = sig(total / 3600)
    return out


def projection(throughput_res: dict | None) -> dict:
    if not throughput_res or throughput_res.get("status", "").startswith("skipped"):
        return {"status": "skipped: no measured rates (the throughput section did not run)"}
    rates = {}
    for name in ("vae_stage1", "vae_stage2", "dit"):
        r = throughput_res.get(name, {})
        if r.get("status") == "ok":
            rates[name] = {"batch": r["batch"], "step_s": r["step_ms"] / 1000}
    enc = throughput_res.get("dit_encode", {})
    if "dit" in rates and enc.get("status") == "ok":
        # the encoding was timed at its own batch: scale per sample to the DiT's
        rates["dit"]["encode_s"] = enc["step_ms"] / 1000 / enc["batch"] * rates["dit"]["batch"]
    if not rates:
        return {"status": "skipped: no measured rates (every throughput measurement failed or was skipped)"}
    out = {"status": "ok", **project_schedule(rates)}
    missing = [n for n in ("vae_stage1", "vae_stage2", "dit") if n not in rates]
    if missing:
        out["status"] = "partial: no rate for " + ", ".join(missing)
    dit = out["parts"].get("dit")
    if dit and dit["steps"] < 10000:
        out["warmup_note"] = (
            f"at batch {dit['batch']} one DiT run has {dit['steps']} steps, fewer than the paper's 10,000 warm-up "
            "steps: the paper's schedule implies a small global batch (docs/reproduce.md); this is the time at "
            "the measured batch, not a validated recipe"
        )
    out["paper"] = "paper: BiCoR-VAE about 12 h, each DiT about 2 days, on 8 RTX 4090s (appendix A.2, B.3)"
    return out


# ----------------------------------------------------------------------------- report


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def markdown(report: dict) -> str:
    m, sec = report["machine"], report["sections"]
    env = sec.get("environment", {})
    lines = [
        "# GPU check",
        "",
        f"Machine: {env.get('device_name', m.get('gpu'))} ({report['settings']['device']}); CPU {m['cpu']}, "
        f"{m['cores']} cores, {m['memory']}; torch {env.get('torch', torch.__version__)}, CUDA {env.get('cuda')}, "
        f"numpy {env.get('numpy', np.__version__)}. {report['started']}; budget {report['budget_s']:g} s, "
        f"used {report['elapsed_s']:.0f} s; settings: {report['settings']['preset']} presets.",
        "",
        "## 1. Environment",
        "",
        "| item | value |",
        "|---|---|",
    ]
    for k, v in env.items():
        if k == "packages":
            v = ", ".join(f"{p} {ver}" if ver else f"{p} missing" for p, ver in v.items())
        lines.append(f"| {k} | {_fmt(v)} |")
    t = sec.get("cuda_tests", {})
    lines += ["", "## 2. CUDA tests (`pytest -m cuda tests/cuda`)", "", f"Status: {t.get('status', '-')}."]
    if t.get("log_tail"):
        lines += ["", "Last lines of the log:", "", "```", *t["log_tail"], "```"]
    if "tests" in t:
        lines[-1] += f" {t['passed']} passed, {t['failed']} failed, {t['errors']} errors, {t['skipped']} skipped"
        lines[-1] += f" in {t['seconds']} s."
        lines += ["", "| test | outcome |", "|---|---|"]
        lines += [f"| {c['test']} | {c['outcome']} |" for c in t["tests"]]
        if t["failures"]:
            lines += ["", "Failures:"] + [f"- {f}" for f in t["failures"]]
        if t["skip_reasons"]:
            lines += ["", "Skipped: " + "; ".join(t["skip_reasons"])]
    th = sec.get("throughput", {})
    lines += [
        "",
        "## 3. Training throughput (largest batch that fits, after warm-up)",
        "",
        f"Status: {th.get('status', '-')}. Autocast {th.get('autocast', '-')}, {th.get('optimizer', '-')}; "
        "FLOPs counted by torch.utils.flop_counter (matrix products, convolutions, attention; forward + backward).",
        "",
        "| step | batch | ms/step | samples/s | tokens/s | peak GiB | GFLOP/step | TFLOP/s | MFU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for name in ("vae_stage1", "vae_stage2", "dit", "dit_encode"):
        r = th.get(name)
        if r is None:
            continue
        if r.get("status") != "ok":
            lines.append(f"| {name} | {r.get('status')} | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {r['batch']} | {_fmt(r['step_ms'])} | {_fmt(r['samples_per_s'])} | {_fmt(r['tokens_per_s'])} "
            f"| {_fmt(r['peak_memory_gib'])} | {_fmt(r['flops_per_step'] / 1e9)} | {_fmt(r['tflops_per_s'])} "
            f"| {pct(r['mfu'])} |"
        )
        trials = ", ".join(f"{x['batch']}: {x.get('step_ms', x.get('result'))}" for x in r["trials"])
        notes.append(f"- {name}: sample = {r['sample']}; token = {r['token']}; batch trials (ms/step) {trials}")
        if r.get("note"):
            notes.append(f"  ({r['note']})")
    lines += [""] + notes
    la = sec.get("latency", {})
    lines += [
        "",
        f"## 4. Joint generation latency ({la.get('length_s', '-')} s, {la.get('sampler', '-')})",
        "",
        f"Status: {la.get('status', '-')}. Preset {la.get('preset', '-')}, {la.get('latent_frames', '-')} latent "
        f"frames ({la.get('windows', '-')}); vocoder {la.get('vocoder', '-')}; DiT FLOPs of the whole sampling "
        f"{_fmt((la.get('dit_flops') or 0) / 1e12)} TFLOP; guidance batched: {la.get('guidance_batched', '-')} "
        f"(DiT passes {la.get('dit_forward_passes', '-')}).",
        "",
        "| variant | sampling s | VAE decode s | vocoder s | total s | first run s | DiT TFLOP/s | utilisation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in la.get("variants", {}).items():
        if v.get("status") != "ok":
            lines.append(f"| {name} | {v.get('status')} | | | | | | |")
            continue
        lines.append(
            f"| {name} | {_fmt(v['sampling_s'])} | {_fmt(v['decode_s'])} | {_fmt(v['vocoder_s'])} "
            f"| {_fmt(v['total_s'])} | {_fmt(v['first_run_s'])} | {_fmt(v.get('dit_tflops_per_s'))} "
            f"| {pct(v.get('utilisation'))} |"
        )
    for name, v in la.get("variants", {}).items():
        c = v.get("compile")
        if c:
            lines.append(
                f"- {name}: {c.get('graphs')} graphs compiled, {c.get('graph_breaks')} graph breaks, "
                f"{c.get('cudagraph_skips')} CUDA-graph skips" + (f" ({v['note']})" if v.get("note") else "")
            )
    pr = sec.get("projection", {})
    lines += ["", "## 5. Projection: the paper's schedules on an AIST++-sized set", ""]
    lines += [f"Status: {pr.get('status', '-')}."]
    if "parts" in pr:
        lines += ["", f"Samples per epoch: {pr['samples_per_epoch']}.", "", "| schedule | arithmetic | hours |"]
        lines += ["|---|---|---|"]
        labels = {"vae_stage1": "VAE stage 1", "vae_stage2": "VAE stage 2", "dit": "DiT, both tasks"}
        for name, p in pr["parts"].items():
            lines.append(f"| {labels[name]} | {p['arithmetic']} | {p['seconds'] / 3600:.2f} |")
        lines.append(f"| total | | {pr['total_h']:.2f} |")
        lines += [""] + [f"{pr[k]}." for k in ("warmup_note", "paper") if pr.get(k)]
    return "\n".join(lines) + "\n"


class Report:
    """The check's JSON and markdown, rewritten atomically whenever something is measured."""

    def __init__(self, out: Path, data: dict, budget: Budget):
        self.out, self.data, self.budget = out, data, budget

    def save(self) -> None:
        self.data["elapsed_s"] = round(self.budget.elapsed(), 1)
        write_json(self.out / "gpu_check.json", self.data, nan_to_null=True)
        write_bytes(self.out / "gpu_check.md", markdown(self.data).encode())


# ----------------------------------------------------------------------------- the check


def say(name: str, res: dict) -> None:
    """One progress line per section (the GPU machine's output tail shows how far a run got)."""
    took = f" in {res['seconds']:.0f} s" if "seconds" in res else ""
    print(f"gpu check: {name} {res.get('status')}{took}", flush=True)


# Relative time shares of the timed sections; each gets its share of the time left when it starts.
SHARES = {"cuda_tests": 0.25, "throughput": 0.35, "latency": 0.4}


def run_check(
    out,
    tiny: bool = False,
    budget: float = DEFAULT_BUDGET,
    device: str | None = None,
    peak_tflops: float | None = None,
    compile: bool | None = None,
) -> dict:
    """Run every section (see the module docstring) and return the report's data."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for, but torch sees no CUDA device")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    clock = Budget(budget)
    # the paper presets take minutes per training step on a CPU: no budget holds them there
    tiny = tiny or dev.type == "cpu"
    s = settings(tiny, compile)
    # the least time each section (or part) needs to start: a paper-preset part on the GPU, or a
    # tiny one on a (busy) CPU
    scale = 1.0 if not tiny else 0.3
    data = {
        "check": "gpu",
        "started": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "settings": {"device": str(dev), "tiny": tiny, **asdict(s)},
        "budget_s": budget,
        "sections": {},
    }
    report = Report(out, data, clock)
    sec = data["sections"]

    sec["environment"] = {"status": "running"}
    try:
        sec["environment"] = {"status": "ok", **environment(dev, peak_tflops)}
    except Exception as e:  # recorded in the report
        sec["environment"] = {"status": f"error: {one_line(e)}"}
    peak = peak_flops(sec["environment"])
    report.save()
    say("environment", sec["environment"])

    def allowance(name: str) -> float:
        names = list(SHARES)[list(SHARES).index(name) :]
        return clock.left() * SHARES[name] / sum(SHARES[n] for n in names)

    def section(name: str, need: float, fill) -> None:
        """Run fill(result, seconds allowed) unless the time left is under `need`."""
        a = allowance(name)
        if a < need:
            sec[name] = {"status": skipped_budget(need, a)}
        else:
            res = sec[name] = {"status": "running"}
            t = time.perf_counter()
            try:
                fill(res, a)
            except Exception as e:  # recorded in the report; the next section runs
                res["status"] = f"error: {one_line(e)}"
            res["seconds"] = round(time.perf_counter() - t, 1)
            free(dev)
        report.save()
        say(name, sec[name])

    section("cuda_tests", 30.0 * scale, lambda res, a: res.update(run_cuda_tests(out, a)))
    section("throughput", 4 * 8.0 * scale, lambda res, a: throughput(s, dev, a, peak, 8.0 * scale, report.save, res))
    section("latency", VARIANTS[0][3] * scale, lambda res, a: latency(s, dev, a, peak, scale, report.save, res))

    sec["projection"] = projection(sec.get("throughput"))
    report.save()
    say("projection", sec["projection"])
    return data


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks gpu",
        description="The prepared GPU check (docs/gpu.md): environment, the CUDA tests, training throughput and "
        "MFU of the paper presets at the largest batch that fits, the latency of a 30 s joint generation, and the "
        "paper's schedules projected from the measured rates. Writes OUT/gpu_check.json and OUT/gpu_check.md "
        "after every section.",
    )
    p.add_argument(
        "--out",
        default="outputs/gpu_check",
        help="folder for gpu_check.json/.md and the tests' junit XML and log (default: %(default)s)",
    )
    p.add_argument(
        "--tiny",
        action="store_true",
        help="tiny presets, batches of 2 and 4, a 1.5 s generation with 3 steps (the CPU test; always on a CPU)",
    )
    p.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET, help="seconds the whole check may take (default: %(default)s)"
    )
    p.add_argument(
        "--device", choices=("cuda", "cpu"), default=None, help="default: cuda when torch sees one, else cpu"
    )
    p.add_argument(
        "--peak-tflops", type=float, default=None, help="bf16 peak for MFU (default: 790 on an H200, else measured)"
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time the torch.compile / CUDA-graph variants (default: on, off with --tiny)",
    )
    a = p.parse_args(argv)
    if a.budget <= 0:
        p.error("--budget must be a positive number of seconds")
    data = run_check(a.out, a.tiny, a.budget, a.device, a.peak_tflops, a.compile)
    print(f"gpu check: done in {data['elapsed_s']:.0f} s of a {a.budget:g} s budget")
    print(f"wrote {Path(a.out) / 'gpu_check.json'} and {Path(a.out) / 'gpu_check.md'}")


if __name__ == "__main__":
    main()
