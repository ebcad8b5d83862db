"""BiCoR-VAE training (`momu-train vae`): stage 1 (music VAE + GAN), stage 2 (motion VAE +
rhythmic contrast, music VAE frozen), from WebDataset shards, one process or torchrun.

One readable loop, no framework. The data stream is an endless sequence of epochs; epoch e
is the train split shuffled and cropped with seed (seed + e), so the position "(epoch,
batches consumed)" identifies the next batch exactly and a resumed run sees the same data
as an uninterrupted one. Under torchrun each rank reads its own shards (or every
world-th sample when there are fewer shards than ranks) and gradients are averaged across
ranks after every backward pass (the semantics of DistributedDataParallel).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from momu_data.io import write_json
from momu_data.loader import loader
from momu_models.device import resolve_device
from momu_models.models.contrastive import RhythmicContrastConfig, retrieval_accuracy
from momu_models.models.discriminator import MelDiscriminator
from momu_models.models.vae import PRESETS, BiCoRVAE, VAEConfig
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
    crop_frames,
    grad_sync_hooks,
    to_device,
)
from momu_models.train.optim import adamw
from momu_models.train.runlog import RunLog
from momu_models.train.vae_steps import StageConfig, motion_stage_step, music_stage_step

log = logging.getLogger(__name__)

# What the VAE reads of each clip: the motion VAE needs the amplitude; no FLAC, conf or meta.
LOADER_FIELDS = ("pose", "mel", "amp")

STAGES = {"music": ("music",), "motion": ("motion",), "all": ("music", "motion")}
# Stage-2 (motion VAE) learning rate per preset. The paper trains at 2e-4 for 300 epochs on
# 8 GPUs; the CPU presets get a few thousand steps, and at 2e-4 the motion VAE is still
# over-smoothing after them (measured, docs/bicor_vae.md), so they use 1e-3.
MOTION_LR = {"paper": 2e-4, "small": 1e-3, "tiny": 1e-3}


@dataclass
class VAETrainConfig(TrainArgs):
    # The shared fields (train/args.py) have the VAE's defaults: run_dir runs/vae, lr 2e-4, ...
    stage: str = "all"  # music, motion or all (STAGES)
    music_steps: int = 2000
    motion_steps: int = 2000
    motion_lr: float | None = None  # stage 2; default MOTION_LR[preset]
    # The paper's weight is 1 against its reconstruction loss, whose normalisation it does not
    # give; ours is a per-element mean, against which 1 lets the contrast drown reconstruction.
    # 0.2 measured better on both counts (docs/bicor_vae.md). 0: ablation #3, no contrast.
    contrast_weight: float = 0.2
    init: str | None = None  # stage motion: a finished run whose music VAE to start from
    # the preset's edge padding unless set: "zeros" reproduces the runs before replicate padding
    # (an ablation; docs/bicor_vae.md "Sequence edges")
    conv_padding: str | None = None


@torch.no_grad()
def validate(model: BiCoRVAE, cfg: VAETrainConfig, device, stage: str) -> dict:
    """Reconstruction L1 of both VAEs (posterior means) and motion-to-music retrieval
    accuracy of latent windows, on the val split (falls back to train if val is empty)."""
    root = Path(cfg.shards)
    split = "val" if list((root / "val").glob("*.tar")) else "train"
    model.eval()
    mel_l1 = pose_l1 = n_frames = 0.0
    hits = wins = 0.0
    chance = []
    for i, b in enumerate(
        loader(root, split=split, batch_size=cfg.batch_size, skip_corrupt=cfg.skip_corrupt, fields=LOADER_FIELDS)
    ):
        if i >= cfg.val_batches:
            break
        b = to_device(b, device)
        mask = b["mask"]
        m = mask[:, None, :].float()
        pm = model.encode_music(b["mel"], mask)
        mel_hat = model.decode_music(pm.mean, b["mel"].shape[-1], pm.mask)
        mel_l1 += float(((mel_hat - b["mel"]).abs() * m).sum() / 80)
        po = model.encode_motion(b["pose"], mask)
        pose_hat = model.decode_motion(po.mean, b["pose"].shape[1], po.mask)
        pose_l1 += float(((pose_hat - b["pose"]).abs() * mask[:, :, None, None]).sum() / 28)
        n_frames += float(mask.sum())
        r = retrieval_accuracy(po.mean, pm.mean, model.contrast.cfg.window, latent_mask=pm.mask)
        hits += r.accuracy * r.windows
        wins += r.windows
        chance.append(r.chance)
    model.train()
    if n_frames == 0:
        return {}
    out = {"mel_l1": mel_l1 / n_frames, "pose_l1": pose_l1 / n_frames}
    if wins:
        out["retrieval_acc"] = hits / wins
        out["retrieval_chance"] = float(np.mean(chance))
    out["split_is_val"] = float(split == "val")
    return out


def only_padding_differs(a: VAEConfig, b: VAEConfig) -> bool:
    """Two configs equal but for conv_padding: a run from before replicate padding."""
    return a != b and replace(a, conv_padding=b.conv_padding) == b


def train(cfg: VAETrainConfig, progress: bool = True) -> dict:
    """Train (or resume) a BiCoR-VAE; returns the final validation metrics."""
    if cfg.preset not in PRESETS:
        raise TrainError(f"unknown preset {cfg.preset!r}: choose {', '.join(PRESETS)}")
    if cfg.stage not in STAGES:
        raise TrainError("--stage must be music, motion or all")
    check_shards(cfg)
    device_name = resolve_device(cfg.device)
    rank, world, device = D.init(device_name)
    run = Path(cfg.run_dir)
    torch.manual_seed(cfg.seed)
    vcfg = PRESETS[cfg.preset]
    if cfg.conv_padding is not None:
        if cfg.conv_padding not in ("replicate", "zeros"):
            raise TrainError(f"conv_padding must be replicate or zeros, not {cfg.conv_padding!r}")
        vcfg = replace(vcfg, conv_padding=cfg.conv_padding)
    model = BiCoRVAE(vcfg, RhythmicContrastConfig()).to(device)
    disc = MelDiscriminator.from_config(vcfg).to(device)
    stage_cfg = StageConfig(contrast_weight=cfg.contrast_weight)
    opts = {
        "music": adamw(model.stage_parameters(1), lr=cfg.lr, betas=(0.5, 0.9), weight_decay=cfg.weight_decay),
        "disc": adamw(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9), weight_decay=cfg.weight_decay),
        "motion": adamw(
            model.stage_parameters(2), lr=cfg.motion_lr or MOTION_LR[cfg.preset], weight_decay=cfg.weight_decay
        ),
    }
    warm = lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps))  # noqa: E731
    scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, warm) for k, o in opts.items()}
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 7919 * rank)
    plan = [(s, cfg.music_steps if s == "music" else cfg.motion_steps) for s in STAGES[cfg.stage]]
    step, epoch, consumed, stage_idx = 0, 0, 0, 0
    skipped_state = None  # the non-finite step counts of a resumed run

    ck = resume_checkpoint(run) if cfg.resume else None
    if cfg.resume and ck is None and D.is_main():
        log.info("no checkpoint in %s/checkpoints: starting from scratch", run)
    if ck is not None:
        saved = read_state(ck)
        saved_vcfg = VAEConfig.from_dict(saved.get("vae_config", {}))
        if only_padding_differs(saved_vcfg, vcfg):
            raise TrainError(
                f"checkpoint {ck} was trained with zero-padded convolutions (docs/bicor_vae.md "
                "'Sequence edges'): start a new --run-dir, or resume with conv_padding = \"zeros\" in --config"
            )
        if saved_vcfg != vcfg:
            raise TrainError(
                f"checkpoint {ck} was trained with preset {saved.get('preset')!r}, not {cfg.preset!r}: "
                f"pass --preset {saved.get('preset')} or another --run-dir"
            )
        state = load_checkpoint(ck, {"vae": model, "disc": disc}, opts)
        for k, s in scheds.items():
            s.load_state_dict(state["schedulers"][k])
        gen.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        step, stage_idx = state["step"], state["stage_idx"]
        epoch, consumed = state["data"]["epoch"], state["data"]["consumed"]
        skipped_state = state.get("nonfinite")
        if state.get("plan") != [list(p) for p in plan]:
            raise TrainError(
                f"checkpoint {ck} belongs to a run with stages/steps {state.get('plan')}; "
                f"this run asks for {plan}: use the same options or another --run-dir"
            )
    elif "music" not in STAGES[cfg.stage]:
        src = cfg.init or (str(run) if (run / "model.safetensors").exists() else None)
        if src is None:
            raise TrainError(
                "--stage motion needs a trained music VAE: pass --init RUN_DIR (from "
                "`momu-train vae SHARDS --stage music`) or train --stage all"
            )
        trained = load_finished(BiCoRVAE.from_pretrained, src, "--init" if cfg.init else "--stage motion")
        if only_padding_differs(trained.cfg, vcfg):
            raise TrainError(
                f"{src} was trained with zero-padded convolutions (docs/bicor_vae.md 'Sequence edges'): "
                'train its music stage again, or set conv_padding = "zeros" in --config'
            )
        if trained.cfg != vcfg:
            raise TrainError(f"{src} holds a VAE of another preset than {cfg.preset!r}")
        model.music.load_state_dict(trained.music.state_dict())

    hooks = grad_sync_hooks([model, disc], world) if world > 1 else []
    runlog = RunLog(run, enabled=D.is_main())
    guard = NonFiniteGuard(runlog=runlog, state=skipped_state)
    if D.is_main():
        write_json(run / "train_config.json", asdict(cfg))
    frames = crop_frames(cfg, model.factor)
    stream = BatchStream(cfg, frames, rank, world, epoch, consumed, fields=LOADER_FIELDS, device=device)
    autocast = torch.bfloat16 if device.type == "cuda" else None
    total = sum(n for _, n in plan)
    metrics: dict = {}
    bar = Bar(total, step, enabled=progress and D.is_main(), name="vae")
    t_last, clips_since = time.perf_counter(), 0
    try:
        while stage_idx < len(plan):
            stage, n_steps = plan[stage_idx]
            stage_start = sum(n for _, n in plan[:stage_idx])
            while step < stage_start + n_steps:
                batch = to_device(next(stream), device)
                if stage == "music":
                    out = music_stage_step(
                        model,
                        disc,
                        batch,
                        opts["music"],
                        opts["disc"],
                        stage_cfg,
                        step=step,
                        autocast=autocast,
                        grad_clip=cfg.grad_clip,
                        generator=gen,
                    )
                    scheds["music"].step()
                    scheds["disc"].step()
                else:
                    out = motion_stage_step(
                        model,
                        batch,
                        opts["motion"],
                        stage_cfg,
                        autocast=autocast,
                        grad_clip=cfg.grad_clip,
                        generator=gen,
                    )
                    scheds["motion"].step()
                skipped = out.pop("skipped")
                step += 1
                guard.update(step, skipped == 0, batch, out["loss"])
                clips_since += len(batch["key"]) * world
                if step % cfg.log_every == 0 or step == stage_start + n_steps:
                    dt = time.perf_counter() - t_last
                    thr = {
                        "clips_per_s": clips_since / dt,
                        "latent_frames_per_s": clips_since * frames / model.factor / dt,
                    }
                    runlog.log(step, {**{f"{stage}/{k}": v for k, v in out.items()}, **thr})
                    bar.update(step, stage, out["loss"], thr["clips_per_s"])
                    t_last, clips_since = time.perf_counter(), 0
                finished_stage = step == stage_start + n_steps
                if step % cfg.val_every == 0 or finished_stage:
                    if D.is_main():
                        metrics = validate(model, cfg, device, stage)
                        runlog.log(step, metrics, prefix="val/")
                        bar.note(step, metrics)
                    D.barrier()
                if step % cfg.ckpt_every == 0 or finished_stage:
                    nxt = stage_idx + 1 if finished_stage else stage_idx
                    if D.is_main():
                        save_checkpoint(
                            run,
                            step,
                            {"vae": model, "disc": disc},
                            opts,
                            {
                                "stage_idx": nxt,
                                "plan": [list(p) for p in plan],
                                "preset": cfg.preset,
                                "vae_config": vcfg.to_dict(),
                                "schedulers": {k: s.state_dict() for k, s in scheds.items()},
                                "generator": gen.get_state().tolist(),
                                "data": {"epoch": stream.epoch, "consumed": stream.consumed},
                                "nonfinite": guard.state_dict(),
                            },
                        )
                    D.barrier()
            stage_idx += 1
        if world > 1:
            D.check_in_sync([model, disc], device)
        if D.is_main():
            require_finite({"vae": model}, run / "model.safetensors")
            model.save_pretrained(
                run,
                {
                    "preset": cfg.preset,
                    "stages": [s for s, _ in plan],
                    "steps": step,
                    "contrast_weight": cfg.contrast_weight,
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
