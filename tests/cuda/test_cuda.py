"""The model package on a CUDA GPU (`pytest -m cuda tests/cuda`; skipped, saying so, without one).

What the CPU suite cannot show: bf16 autocast training steps of both BiCoR-VAE stages and the
DiT with the trainers' fused AdamW, an exact checkpoint round trip on the GPU, `momu-generate` on CUDA
from checkpoints trained here on CUDA, DistributedDataParallel over NCCL with one process, and
fp32 agreement of the CPU and CUDA forward passes. The GPU check (`python -m benchmarks gpu`,
docs/gpu.md) runs these first. Each test's body is a function of the device, so the same
code can be rehearsed on the CPU (bf16 autocast on the CPU, Gloo for the process group).
"""

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from momu_models.diffusion.process import Diffusion
from momu_models.models.discriminator import MelDiscriminator
from momu_models.models.dit import DiT, make_config
from momu_models.models.vae import PRESETS as VAE_PRESETS
from momu_models.models.vae import BiCoRVAE
from momu_models.train import distributed as D
from momu_models.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from momu_models.train.loop import finite_update, grad_sync_hooks
from momu_models.train.optim import adamw, is_fused
from momu_models.train.vae_steps import StageConfig, motion_stage_step, music_stage_step

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

# CPU against CUDA in fp32 with TF32 off: the same arithmetic in another order of summation,
# so the outputs agree to a few float32 ulps of the accumulated sums. Allowed: the largest
# difference at most this fraction of the largest output.
FP32_RTOL = 1e-4


@pytest.fixture
def device():
    return torch.device("cuda", torch.cuda.current_device())


def vae_batch(B, T, device, seed=0):
    """Smooth random signals (a few sinusoids per clip: something a small VAE can learn to
    reconstruct in a few steps), the last clip shorter (padding and masks on the device too)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T) / 62.5

    def waves(shape):  # [B, *shape, T]
        n = int(np.prod(shape))
        f = 0.5 + 3 * torch.rand(B, n, 3, 1, generator=g)
        ph = 6.28 * torch.rand(B, n, 3, 1, generator=g)
        return torch.sin(6.28 * f * t + ph).sum(2).reshape(B, *shape, T)

    mask = torch.ones(B, T, dtype=torch.bool)
    mask[-1, T - T // 4 :] = False
    return {
        "mel": (waves((80,)) - 5).to(device),
        "pose": (0.3 * waves((14, 2))).permute(0, 3, 1, 2).contiguous().to(device),
        "amp": torch.rand(B, T, generator=g).to(device),
        "mask": mask.to(device),
    }


# ----------------------------------------------------------------------------- bf16 training steps


def vae_stage_run(device, stage: int, steps: int = 12):
    """`steps` bf16-autocast updates of one VAE stage on a fixed batch with fixed noise.
    Returns (each step's outputs, whether the stage's parameters changed)."""
    torch.manual_seed(0)
    cfg = VAE_PRESETS["tiny"]
    model = BiCoRVAE(cfg).to(device)
    batch = vae_batch(4, 64, device)
    before = [p.detach().clone() for p in model.stage_parameters(stage)]
    g = torch.Generator(device=device)
    if stage == 1:
        disc = MelDiscriminator.from_config(cfg).to(device)
        og, od = adamw(model.stage_parameters(1), lr=3e-3), adamw(disc.parameters(), lr=3e-3)

        def step():
            return music_stage_step(
                model, disc, batch, og, od, autocast=torch.bfloat16, grad_clip=1.0, generator=g.manual_seed(0)
            )
    else:
        om = adamw(model.stage_parameters(2), lr=1e-2)

        def step():
            return motion_stage_step(
                model, batch, om, StageConfig(), autocast=torch.bfloat16, grad_clip=1.0, generator=g.manual_seed(0)
            )

    outs = [step() for _ in range(steps)]
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.stage_parameters(stage)))
    return outs, changed


def dit_run(device, steps: int = 12):
    """`steps` bf16-autocast DiT updates (fused AdamW, the trainer's finite_update) on fixed
    latents with fixed noise and timesteps. Returns (losses, applied flags, parameters changed)."""
    torch.manual_seed(0)
    cfg = make_config("tiny")
    model = DiT(cfg).to(device).train()
    diffusion = Diffusion.from_config(cfg)
    opt = adamw(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 20, 40, generator=g).to(device)
    cond = torch.randn(4, 20, 40, generator=g).to(device)
    mask = torch.ones(4, 40, dtype=torch.bool, device=device)
    mask[-1, 30:] = False
    before = [p.detach().clone() for p in model.parameters()]
    gen = torch.Generator(device=device)
    losses, applied = [], []
    for _ in range(steps):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = diffusion.training_loss(model, x0, cond, mask, 0.1, gen.manual_seed(0))
        ok, _ = finite_update(loss, opt, 1.0)
        losses.append(float(loss.detach()))
        applied.append(ok)
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    return losses, applied, changed, is_fused(opt)


@pytest.mark.parametrize("stage", [1, 2])
def test_vae_stage_trains_in_bf16(device, stage):
    outs, changed = vae_stage_run(device, stage)
    assert all(np.isfinite(o["loss"]) and o["skipped"] == 0 for o in outs), outs
    assert changed
    # the reconstruction of the fixed batch improves (the GAN / contrast terms may not fall)
    assert outs[-1]["rec"] < 0.9 * outs[0]["rec"], [round(o["rec"], 4) for o in outs]


def test_dit_trains_in_bf16(device):
    losses, applied, changed, fused = dit_run(device)
    assert all(np.isfinite(losses)) and all(applied), losses
    assert changed and fused  # the trainers' AdamW runs torch's fused kernel on CUDA
    assert losses[-1] < 0.8 * losses[0], losses


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_round_trip(device, run_dir):
    """Train one step, save, load into fresh modules on the same device: (same outputs,
    same optimiser state on the device, the device RNG restored, the loaded state)."""
    torch.manual_seed(0)
    cfg = make_config("tiny")
    dit = DiT(cfg).to(device)
    opt = adamw(dit.parameters(), lr=1e-3)
    diffusion = Diffusion.from_config(cfg)
    x0 = torch.randn(2, 20, 24, device=device)
    finite_update(diffusion.training_loss(dit, x0, x0.flip(-1)), opt, 1.0)
    save_checkpoint(run_dir, 1, {"dit": dit}, {"opt": opt}, {"what": "cuda round trip"})
    drawn = torch.randn(5, device=device)  # the device RNG state saved precedes this draw
    t = torch.tensor([10, 500], device=device)
    with torch.no_grad():
        ref = dit.eval()(x0, t, x0.flip(-1))

    torch.manual_seed(123)
    dit2 = DiT(cfg).to(device)
    opt2 = adamw(dit2.parameters(), lr=1e-3)
    state = load_checkpoint(latest_checkpoint(run_dir), {"dit": dit2}, {"opt": opt2})
    redrawn = torch.randn(5, device=device)
    with torch.no_grad():
        out = dit2.eval()(x0, t, x0.flip(-1))
    same_state = all(
        torch.equal(opt.state[p][k], opt2.state[q][k]) and opt2.state[q][k].device == p.device
        for p, q in zip(dit.parameters(), dit2.parameters())
        for k in ("exp_avg", "exp_avg_sq")
    )
    return torch.equal(ref, out), same_state, torch.equal(drawn, redrawn), state


def test_checkpoint_round_trip_on_cuda(device, tmp_path):
    same_out, same_opt, same_rng, state = checkpoint_round_trip(device, tmp_path)
    assert state["step"] == 1 and state["what"] == "cuda round trip"
    assert same_out, "a loaded checkpoint gives other outputs on the same device"
    assert same_opt, "optimiser state differs (or is not on the parameters' device) after loading"
    assert same_rng, "the device RNG state was not restored"


# ----------------------------------------------------------------------------- momu-generate


def train_tiny_runs(shards, root: Path, device: str) -> Path:
    """vae/, motion2music/, music2motion/ of the tiny preset, a few steps each, on `device`."""
    import momu_models.train.diffusion as TD
    import momu_models.train.vae as TV

    common = dict(shards=str(shards), preset="tiny", batch_size=4, val_batches=1, device=device)
    TV.train(
        TV.VAETrainConfig(run_dir=str(root / "vae"), music_steps=3, motion_steps=3, crop_seconds=1.0, **common),
        progress=False,
    )
    for task in ("motion2music", "music2motion"):
        cfg = TD.DiffusionTrainConfig(
            task=task, run_dir=str(root / task), vae=str(root / "vae"), steps=3, stats_batches=2, **common
        )
        cfg.num_workers = 2 if task == "music2motion" else 0  # the loader's worker processes on this box too
        TD.train(cfg, progress=False)
    return root


def generate_joint_cli(runs: Path, out: Path, device: str):
    """`momu-generate --joint --no-render` through typer's runner (no console script needed)."""
    import typer
    from typer.testing import CliRunner

    from momu_models.cli.generate import generate

    app = typer.Typer()
    app.command()(generate)
    args = ["--joint", "--length", "3s", "--checkpoints", runs, "--steps", "4", "--vocoder", "griffinlim"]
    args += ["--device", device, "--no-render", "--out", out]
    return CliRunner().invoke(app, [str(a) for a in args])


def test_generate_on_cuda(device, toy_shards, tmp_path):
    import soundfile as sf

    runs = train_tiny_runs(toy_shards, tmp_path / "runs", "cuda")
    r = generate_joint_cli(runs, tmp_path / "out", "cuda")
    assert r.exit_code == 0, r.output
    stem = tmp_path / "out" / "joint_s0_0"
    pose = np.load(f"{stem}.npy")
    assert pose.shape == (188, 14, 2) and np.isfinite(pose).all()  # 3 s = 187.5 -> 188 frames
    wav, sr = sf.read(f"{stem}.wav")
    assert sr == 16000 and len(wav) == 188 * 256 and np.isfinite(wav).all() and np.abs(wav).max() > 0
    assert not Path(f"{stem}.mp4").exists()  # --no-render


# ----------------------------------------------------------------------------- DDP over NCCL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_run(device):
    """With a one-process group already initialised (`backend`): momu's distributed helpers,
    two DDP-wrapped DiT steps, then one step the trainers' own way (gradient hooks).
    Returns what the test checks."""
    rank, world, dev = D.init(device.type)
    torch.manual_seed(0)
    cfg = make_config("tiny")
    dit = DiT(cfg).to(dev)
    ddp = torch.nn.parallel.DistributedDataParallel(dit, device_ids=[dev.index] if dev.type == "cuda" else None)
    opt = adamw(ddp.parameters(), lr=1e-3)
    diffusion = Diffusion.from_config(cfg)
    x0 = torch.randn(4, 20, 32, device=dev)
    cond = torch.randn(4, 20, 32, device=dev)
    before = [p.detach().clone() for p in dit.parameters()]
    applied = []
    for _ in range(2):  # a second step: DDP's reducer must have finished the first
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = diffusion.training_loss(ddp, x0, cond)
        applied.append(finite_update(loss, opt, 1.0)[0])  # all-reduces the skip flag over the group
    changed = any(not torch.equal(a, b) for a, b in zip(before, dit.parameters()))
    mean = D.mean(float(loss.detach()), dev)
    D.check_in_sync([dit], dev)
    D.barrier()
    # the trainers' way under torchrun: hooks all-reduce each gradient as it is accumulated
    plain = DiT(cfg).to(dev)
    hooks = grad_sync_hooks([plain], world)
    try:
        opt2 = adamw(plain.parameters(), lr=1e-3)
        ok2, norm2 = finite_update(diffusion.training_loss(plain, x0, cond), opt2, 1.0)
    finally:
        for h in hooks:
            h.remove()
    return {
        "rank": rank,
        "world": world,
        "device": dev,
        "applied": applied,
        "changed": changed,
        "mean": mean,
        "loss": float(loss.detach()),
        "hooks_step": (ok2, norm2),
    }


def test_ddp_over_nccl_one_process(device, monkeypatch):
    if not dist.is_nccl_available():
        pytest.skip("this torch build has no NCCL")
    for k, v in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("WORLD_SIZE", "1")
    dist.init_process_group("nccl")
    try:
        res = ddp_run(device)
        assert dist.get_backend() == "nccl"
    finally:
        D.cleanup()
    assert (res["rank"], res["world"], res["device"].type) == (0, 1, "cuda")
    assert all(res["applied"]) and res["changed"]
    assert res["mean"] == pytest.approx(res["loss"])
    ok, norm = res["hooks_step"]
    assert ok and np.isfinite(norm) and norm > 0
    assert not dist.is_initialized()


# ----------------------------------------------------------------------------- CPU vs CUDA, fp32


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp(min=1e-12))


def cpu_vs_device(device) -> dict:
    """The largest relative difference between one fp32 forward pass on the CPU and on
    `device` (TF32 off), for the DiT and the VAE's four directions (small presets)."""
    prev = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        torch.manual_seed(0)
        dit = DiT(make_config("small")).eval()
        x, cond = torch.randn(2, 20, 100), torch.randn(2, 20, 100)
        t = torch.tensor([999, 250])
        x_mask = torch.ones(2, 100, dtype=torch.bool)
        x_mask[1, 80:] = False
        vae = BiCoRVAE(VAE_PRESETS["small"]).eval()
        b = vae_batch(2, 250, "cpu")
        z_mu, z_mo = torch.randn(2, 20, 125), torch.randn(2, 20, 125)

        def run(d):
            with torch.no_grad():
                m, v = dit.to(d), vae.to(d)
                bd = {k: val.to(d) for k, val in b.items()}
                return {
                    "dit": m(x.to(d), t.to(d), cond.to(d), x_mask=x_mask.to(d)).cpu(),
                    "encode_music": v.encode_music(bd["mel"], bd["mask"]).mean.cpu(),
                    "encode_motion": v.encode_motion(bd["pose"], bd["mask"]).mean.cpu(),
                    "decode_music": v.decode_music(z_mu.to(d), 250).cpu(),
                    "decode_motion": v.decode_motion(z_mo.to(d), 250).cpu(),
                }

        ref, out = run("cpu"), run(device)
        return {k: max_rel_diff(out[k], ref[k]) for k in ref}
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev


def test_fp32_forward_agrees_with_cpu(device):
    diffs = cpu_vs_device(device)
    assert all(d <= FP32_RTOL for d in diffs.values()), diffs
