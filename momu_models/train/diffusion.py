"""Latent diffusion training (`momu-train diffusion --task motion2music|music2motion`).

The frozen BiCoR-VAE turns each batch into frame-aligned music and motion latents
(posterior means, scaled to unit variance); the DiT learns epsilon-prediction DDPM on the
target modality's latent conditioned on the other's (section 4, eq. 5-6), with condition
dropout for classifier-free guidance, AdamW with linear warm-up and EMA weights. The loop
and its conventions (resume, torchrun, bf16 on CUDA, safetensors checkpoints, logs) are
those of the VAE trainer.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from momu_data.io import to_jsonable, write_json
from momu_data.loader import loader
from momu_data.timebase import FPS
from momu_models.device import resolve_device
from momu_models.diffusion.process import Diffusion
from momu_models.generate.postprocess import mean_bone_lengths
from momu_models.models.dit import PRESETS as DIT_PRESETS
from momu_models.models.dit import DiT, DiTConfig, load_diffusion, make_config
from momu_models.models.vae import BiCoRVAE
from momu_models.train import distributed as D
from momu_models.train.args import TrainArgs
from momu_models.train.checkpoint import (
    load_checkpoint,
    load_finished,
    read_state,
    require_finite,
    resume_checkpoint,
    save_checkpoint,
)
from momu_models.train.loop import (
    Bar,
    BatchStream,
    NonFiniteGuard,
    TrainError,
    check_shards,
    finite_update,
    grad_sync_hooks,
    to_device,
)
from momu_models.train.optim import LR_DECAYS, adamw, lr_factor
from momu_models.train.runlog import RunLog

log = logging.getLogger(__name__)

# What the DiT reads of each clip (through the VAE's encoders): no FLAC, conf, amp or meta.
LOADER_FIELDS = ("pose", "mel")

TASKS = ("motion2music", "music2motion")
# Paper preset: lr 1.6e-5 with 10k warm-up steps (appendix B.3) for 200 epochs on 8 GPUs.
# The CPU presets train for minutes, so they use a larger rate and a short warm-up.
PRESET_LR = {"paper": (1.6e-5, 10000), "small": (1e-3, 100), "tiny": (2e-3, 5)}


@dataclass
class DiffusionTrainConfig(TrainArgs):
    # shared fields (train/args.py) whose default differs here
    run_dir: str | None = None  # default runs/<task>
    crop_seconds: float | None = None  # default: the DiT's max_len
    lr: float | None = None  # default per preset (PRESET_LR)
    warmup_steps: int | None = None  # default per preset (PRESET_LR)
    lr_decay: str = "constant"  # after the warm-up: constant, or cosine (to 0 at the last step)
    weight_decay: float = 0.0
    val_every: int = 500
    ckpt_every: int = 500
    val_batches: int = 10
    # the diffusion trainer's own
    task: str = "motion2music"
    vae: str = "runs/vae"
    positions: str | None = None  # DiT position layout, "aligned" or "offset" (default: the preset's)
    frame_cond: bool | None = None  # DiTConfig.frame_cond (default: the preset's)
    init: str | None = None  # start from the weights of a finished diffusion run (fine-tuning)
    steps: int = 3000
    p_uncond: float = 0.1
    ema_decay: float = 0.999
    stats_batches: int = 20  # batches for the latent scales and the mean bone lengths


def load_vae(path) -> BiCoRVAE:
    p = Path(path)
    if not (p / "model.safetensors").exists() and not p.suffix == ".safetensors":
        raise TrainError(f"no trained BiCoR-VAE in {p}: train it first with `momu-train vae SHARDS --run-dir {p}`")
    model = load_finished(BiCoRVAE.from_pretrained, p, "--vae")
    for q in model.parameters():
        q.requires_grad_(False)
    return model.eval()


@torch.no_grad()
def encode_pair(
    vae: BiCoRVAE, batch: dict, scales: dict, autocast: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(music latent, motion latent, latent mask), scaled to about unit variance, float32.

    autocast (bf16 on CUDA): the frozen encoders run under torch.autocast. They cost a tenth
    of a `paper` DiT training step's FLOPs (183 vs 1,828 GFLOP per 30.7 s clip), twice that
    share of its time in float32; bf16's rounding of a unit-variance latent (~0.004) is well
    under the smallest noise the DiT is trained at (sqrt(1 - abar_0) = 0.029)."""
    mask = batch["mask"]
    ctx = torch.autocast(mask.device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
    with ctx:
        mu = vae.encode_music(batch["mel"], mask).mean.float() * scales["music"]
        mo = vae.encode_motion(batch["pose"], mask).mean.float() * scales["motion"]
    return mu, mo, vae.latent_mask(mask)


@torch.no_grad()
def data_statistics(vae: BiCoRVAE, cfg: DiffusionTrainConfig, device, frames: int) -> dict:
    """Latent scales (1 / std of each modality's latents, as latent diffusion scales its
    latents) and mean bone lengths (appendix E), from the first train batches in a fixed
    order, so both diffusion models of a run compute the same numbers. A batch with a
    non-finite value (a damaged clip) is left out with a warning naming its clips."""
    fixed = copy.copy(cfg)
    fixed.seed, fixed.shuffle_buffer, fixed.num_workers = 0, 0, 0
    stream = BatchStream(fixed, frames, 0, 1, fields=LOADER_FIELDS, device=device)
    sums = {"music": [0.0, 0.0, 0.0], "motion": [0.0, 0.0, 0.0]}
    poses = []
    for _ in range(cfg.stats_batches):
        b = to_device(next(stream), device)
        mu, mo, lm = encode_pair(vae, b, {"music": 1.0, "motion": 1.0})
        if not all(bool(torch.isfinite(t).all()) for t in (mu, mo, b["pose"])):
            log.warning("latent statistics: left out a batch with non-finite values; clips: %s", ", ".join(b["key"]))
        else:
            m = lm[:, None].float()
            for name, z in (("music", mu), ("motion", mo)):
                n = float(m.sum()) * z.shape[1]
                s = float((z * m).sum())
                s2 = float((z * z * m).sum())
                acc = sums[name]
                acc[0] += n
                acc[1] += s
                acc[2] += s2
            for p, n in zip(b["pose"].cpu().numpy(), b["mask"].sum(1).tolist()):
                poses.append(p[: int(n)])
        if stream.epoch > 0:  # small datasets: one pass is enough
            break
    if sums["music"][0] == 0:
        raise TrainError(
            f"latent statistics: none of the first {cfg.stats_batches} train batches of {cfg.shards} is finite "
            "(see the warnings for their clips): check the shards"
        )
    scales = {}
    for name, (n, s, s2) in sums.items():
        var = s2 / n - (s / n) ** 2
        scales[name] = float(1.0 / max(np.sqrt(max(var, 0.0)), 1e-6))
    return {"latent_scales": scales, "bone_lengths": mean_bone_lengths(poses).tolist()}


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        e, p = list(ema.parameters()), list(model.parameters())
        if hasattr(torch, "_foreach_lerp_"):  # one multi-tensor kernel instead of one per parameter
            torch._foreach_lerp_(e, p, 1.0 - decay)
        else:
            for a, b in zip(e, p):
                a.lerp_(b, 1.0 - decay)


@torch.no_grad()
def validate(dit: DiT, vae: BiCoRVAE, diffusion: Diffusion, cfg: DiffusionTrainConfig, stats: dict, device) -> dict:
    """Denoising loss of the EMA model on the val split, with fixed noise (comparable across
    evaluations), conditional and unconditional, over `val_batches` batches. A val split
    smaller than that is read again with new noise levels: one draw of diffusion steps for a
    handful of clips swings the loss by a factor of two."""
    root = Path(cfg.shards)
    split = "val" if list((root / "val").glob("*.tar")) else "train"
    dit.eval()
    g = torch.Generator(device=device).manual_seed(1234)
    tot = {"loss": 0.0, "loss_uncond": 0.0}
    n = 0

    def batches():
        while True:
            empty = True
            for b in loader(
                root, split=split, batch_size=cfg.batch_size, skip_corrupt=cfg.skip_corrupt, fields=LOADER_FIELDS
            ):
                empty = False
                yield b
            if empty:
                return

    for i, b in enumerate(batches()):
        if i >= cfg.val_batches:
            break
        b = to_device(b, device)
        mu, mo, lm = encode_pair(vae, b, stats["latent_scales"])
        lm = lm[:, : dit.config.max_len]
        mu, mo = mu[..., : dit.config.max_len], mo[..., : dit.config.max_len]
        x0, cond = (mu, mo) if cfg.task == "motion2music" else (mo, mu)
        state = g.get_state()
        tot["loss"] += float(diffusion.training_loss(dit, x0, cond, lm, 0.0, g))
        g.set_state(state)  # the same noise and timesteps for the unconditional figure
        tot["loss_uncond"] += float(diffusion.training_loss(dit, x0, cond, lm, 1.0, g))
        n += 1
    dit.train()
    return {k: v / max(n, 1) for k, v in tot.items()}


def init_from_run(dit: DiT, cfg: DiffusionTrainConfig) -> dict:
    """Load the EMA weights of a finished run of the same task and VAE into `dit` (the start
    of a fine-tuning run) and return its data statistics, so the latent scales stay the ones
    the weights were trained with. Modules the run lacks (e.g. a new zero-initialised
    frame_cond projection) keep their initialisation; any other mismatch is an error."""
    src, saved = load_finished(load_diffusion, cfg.init, "--init")
    if saved.get("task") != cfg.task:
        raise TrainError(f"--init {cfg.init} is a {saved.get('task')} run, not {cfg.task}")
    if Path(saved.get("vae", "")).resolve() != Path(cfg.vae).resolve():
        raise TrainError(f"--init {cfg.init} was trained on the latents of {saved.get('vae')}, not {cfg.vae}")
    own = dit.state_dict()
    state = src.state_dict()
    bad = [k for k in state if k not in own or own[k].shape != state[k].shape]
    if bad:
        raise TrainError(
            f"--init {cfg.init} does not fit this model ({', '.join(bad[:3])}): "
            f"use its --preset, and --frame-cond / --positions if it has them"
        )
    dit.load_state_dict(state, strict=False)
    new = sorted(k for k in own if k not in state)
    if new and D.is_main():
        log.info("--init %s: loaded; new (initialised here): %s", cfg.init, ", ".join(new))
    return {"latent_scales": saved["latent_scales"], "bone_lengths": saved["bone_lengths"]}


def train(cfg: DiffusionTrainConfig, progress: bool = True) -> dict:
    if cfg.task not in TASKS:
        raise TrainError(f"--task must be motion2music or music2motion, not {cfg.task!r}")
    if cfg.preset not in DIT_PRESETS:
        raise TrainError(f"unknown preset {cfg.preset!r}: choose {', '.join(DIT_PRESETS)}")
    if cfg.positions not in (None, "offset", "aligned"):
        raise TrainError(f"--positions must be offset or aligned, not {cfg.positions!r}")
    if cfg.lr_decay not in LR_DECAYS:
        raise TrainError(f"--lr-decay must be {' or '.join(LR_DECAYS)}, not {cfg.lr_decay!r}")
    check_shards(cfg)
    run = Path(cfg.run_dir or f"runs/{cfg.task}")
    device_name = resolve_device(cfg.device)
    vae = load_vae(cfg.vae)
    rank, world, device = D.init(device_name)
    vae = vae.to(device)
    torch.manual_seed(cfg.seed)
    C = vae.cfg.latent_channels
    extra = {"positions": cfg.positions} if cfg.positions else {}
    if cfg.frame_cond is not None:
        extra["frame_cond"] = cfg.frame_cond
    dcfg: DiTConfig = make_config(cfg.preset, in_channels=C, cond_channels=C, out_channels=C, **extra)
    dit = DiT(dcfg).to(device)
    ck = resume_checkpoint(run) if cfg.resume else None
    init_stats = init_from_run(dit, cfg) if cfg.init and ck is None else None  # a checkpoint wins over --init
    ema = copy.deepcopy(dit).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    diffusion = Diffusion.from_config(dcfg)
    lr, warm = PRESET_LR[cfg.preset]
    lr = cfg.lr or lr
    warm = cfg.warmup_steps if cfg.warmup_steps is not None else warm
    opt = adamw(dit.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warm, cfg.steps, cfg.lr_decay))
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 7919 * rank)
    max_frames = dcfg.max_len * vae.factor
    frames = max_frames if cfg.crop_seconds is None else min(max_frames, int(cfg.crop_seconds * FPS))
    frames -= frames % vae.factor
    step, epoch, consumed = 0, 0, 0
    skipped_state = None  # the non-finite step counts of a resumed run
    if ck is not None:
        saved = read_state(ck)
        # Fields a checkpoint predates take their DiTConfig default (e.g. frame_cond = False).
        was = to_jsonable(DiTConfig.from_dict(saved.get("dit_config", {})).to_dict())
        now = to_jsonable(dcfg.to_dict())
        if was != now:
            diff = ", ".join(f"{k} {was[k]!r} (now {now[k]!r})" for k in now if was.get(k) != now[k])
            raise TrainError(
                f"checkpoint {ck} was trained with preset {saved.get('preset')!r} and {diff}: "
                f"pass the same --preset / --frame-cond / --positions, or another --run-dir"
            )
        state = load_checkpoint(ck, {"dit": dit, "ema": ema}, {"opt": opt})
        sched.load_state_dict(state["scheduler"])
        gen.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        step, epoch, consumed = state["step"], state["data"]["epoch"], state["data"]["consumed"]
        stats = state["stats"]
        skipped_state = state.get("nonfinite")
    else:
        if cfg.resume and D.is_main():
            start = f"the weights of {cfg.init}" if cfg.init else "scratch"
            log.info("no checkpoint in %s/checkpoints: starting from %s", run, start)
        stats = init_stats or data_statistics(vae, cfg, device, frames)
    hooks = grad_sync_hooks([dit], world) if world > 1 else []
    runlog = RunLog(run, enabled=D.is_main())
    guard = NonFiniteGuard(runlog=runlog, state=skipped_state)
    if D.is_main():
        write_json(run / "train_config.json", asdict(cfg))
    stream = BatchStream(cfg, frames, rank, world, epoch, consumed, fields=LOADER_FIELDS, device=device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    autocast = torch.autocast("cuda", dtype=amp) if amp is not None else None
    bar = Bar(cfg.steps, step, enabled=progress and D.is_main(), name=cfg.task)
    metrics: dict = {}
    t_last, clips_since = time.perf_counter(), 0
    try:
        while step < cfg.steps:
            b = to_device(next(stream), device)
            mu, mo, lm = encode_pair(vae, b, stats["latent_scales"], amp)
            x0, cond = (mu, mo) if cfg.task == "motion2music" else (mo, mu)
            dit.train()
            if autocast is not None:
                with autocast:
                    loss = diffusion.training_loss(dit, x0, cond, lm, cfg.p_uncond, gen)
            else:
                loss = diffusion.training_loss(dit, x0, cond, lm, cfg.p_uncond, gen)
            applied, gnorm = finite_update(loss, opt, cfg.grad_clip)
            sched.step()
            step += 1
            guard.update(step, applied, b, float(loss.detach()))
            # EMA with the usual warm-up of the decay, so short runs are not dominated by init.
            _ema_update(ema, dit, min(cfg.ema_decay, (1 + step) / (10 + step)))
            clips_since += len(b["key"]) * world
            if step % cfg.log_every == 0 or step == cfg.steps:
                dt = time.perf_counter() - t_last
                thr = {"clips_per_s": clips_since / dt, "latent_frames_per_s": clips_since * frames / vae.factor / dt}
                runlog.log(
                    step, {"loss": float(loss.detach()), "grad_norm": gnorm, "lr": sched.get_last_lr()[0], **thr}
                )
                bar.update(step, "train", float(loss.detach()), thr["clips_per_s"])
                t_last, clips_since = time.perf_counter(), 0
            if step % cfg.val_every == 0 or step == cfg.steps:
                if D.is_main():
                    metrics = validate(ema, vae, diffusion, cfg, stats, device)
                    runlog.log(step, metrics, prefix="val/")
                    bar.note(step, metrics)
                D.barrier()
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                if D.is_main():
                    save_checkpoint(
                        run,
                        step,
                        {"dit": dit, "ema": ema},
                        {"opt": opt},
                        {
                            "preset": cfg.preset,
                            "dit_config": dcfg.to_dict(),
                            "scheduler": sched.state_dict(),
                            "generator": gen.get_state().tolist(),
                            "stats": stats,
                            "data": {"epoch": stream.epoch, "consumed": stream.consumed},
                            "nonfinite": guard.state_dict(),
                        },
                    )
                D.barrier()
        if world > 1:
            D.check_in_sync([dit], device)
        if D.is_main():
            require_finite({"ema": ema}, run / "model.safetensors")
            ema.save_pretrained(
                run,
                {
                    "task": cfg.task,
                    "preset": cfg.preset,
                    "dit": dcfg.to_dict(),
                    "steps": step,
                    "vae": str(Path(cfg.vae).resolve()),
                    "vae_config": vae.cfg.to_dict(),
                    "latent_fps": vae.cfg.latent_fps,
                    "factor": vae.factor,
                    **stats,
                    "val": metrics,
                },
            )
    finally:
        bar.close()
        runlog.close()
        for h in hooks:
            h.remove()
        D.cleanup()
    return metrics
