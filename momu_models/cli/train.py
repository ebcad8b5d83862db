"""`momu-train`: train the models of MoMu-Diffusion from `momu-data shard` output.

  momu-train vae shards/                                BiCoR-VAE, both stages -> runs/vae/
  momu-train diffusion shards/ --task motion2music      DiT, music from motion -> runs/motion2music/
  momu-train diffusion shards/ --task music2motion      DiT, motion from music -> runs/music2motion/
  momu-train classifier shards/ --label genre           motion classifier (metrics) -> runs/classifier/
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True, soft_wrap=True)  # one-line errors stay one line


@app.callback()
def _group():
    """One sub-command per model (kept a group even while it has one command)."""


@app.command()
def vae(
    shards: Path = typer.Argument(Path("shards"), help="Shard folder of `momu-data shard` (uses train/ and val/)."),
    stage: str = typer.Option("all", "--stage", help="music (stage 1: mel VAE + GAN), motion (stage 2: motion VAE + rhythmic contrast, music VAE frozen) or all."),
    preset: str = typer.Option("small", "--preset", help="tiny (tests), small (CPU demo), paper (table 8, GPU)."),
    run_dir: Path = typer.Option(Path("runs/vae"), "--run-dir", "-o", help="Run folder: checkpoints/, metrics.jsonl/.csv, tensorboard/, model.safetensors + config.json."),
    steps: int = typer.Option(2000, "--steps", help="Optimisation steps per stage."),
    music_steps: Optional[int] = typer.Option(None, "--music-steps", help="Steps of stage 1 (default --steps)."),
    motion_steps: Optional[int] = typer.Option(None, "--motion-steps", help="Steps of stage 2 (default --steps)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Instead of steps: passes over the train split per stage."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", help="Clips per batch and process."),
    crop_seconds: float = typer.Option(4.0, "--crop-seconds", help="Random crop length of each clip."),
    lr: float = typer.Option(2e-4, "--lr", help="AdamW learning rate of stage 1 (paper: 2e-4)."),
    motion_lr: Optional[float] = typer.Option(None, "--motion-lr", help="AdamW learning rate of stage 2 (default: paper preset 2e-4, small/tiny 1e-3)."),
    grad_clip: float = typer.Option(1.0, "--grad-clip", help="Gradient norm clipping."),
    contrast_weight: float = typer.Option(0.2, "--contrast-weight", help="Weight of the rhythmic contrastive loss against the per-element L1 (0: ablation without it; see docs/bicor_vae.md for why 0.2)."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (bf16 autocast on CUDA)."),
    workers: int = typer.Option(0, "--workers", help="DataLoader worker processes."),
    val_every: int = typer.Option(250, "--val-every", help="Validate every N steps."),
    ckpt_every: int = typer.Option(250, "--ckpt-every", help="Checkpoint every N steps."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --run-dir."),
    init: Optional[Path] = typer.Option(None, "--init", help="For --stage motion: a finished run whose music VAE to use."),
):
    """Train the BiCoR-VAE (appendix A): AdamW, lr 2e-4, KL 1e-5, GAN 0.5, rhythmic contrast.

    Multi-GPU / multi-node: `torchrun --nproc_per_node N $(which momu-train) vae shards/`."""
    from momu_models.train.vae import VAETrainConfig, train

    ms = music_steps if music_steps is not None else steps
    mo = motion_steps if motion_steps is not None else steps
    if epochs is not None:
        per_epoch = _steps_per_epoch(shards, batch_size)
        ms = mo = max(1, int(round(epochs * per_epoch)))
    cfg = VAETrainConfig(shards=str(shards), run_dir=str(run_dir), preset=preset, stage=stage, music_steps=ms,
                         motion_steps=mo, batch_size=batch_size, crop_seconds=crop_seconds, lr=lr, motion_lr=motion_lr,
                         grad_clip=grad_clip, contrast_weight=contrast_weight, seed=seed, device=device, num_workers=workers,
                         val_every=val_every, ckpt_every=ckpt_every, resume=resume, init=str(init) if init else None)
    _run(train, cfg, run_dir)


@app.command()
def diffusion(
    shards: Path = typer.Argument(Path("shards"), help="Shard folder of `momu-data shard`."),
    task: str = typer.Option(..., "--task", help="motion2music (music from dance) or music2motion (dance from music)."),
    vae_dir: Path = typer.Option(Path("runs/vae"), "--vae", help="The trained BiCoR-VAE run (frozen here)."),
    preset: str = typer.Option("small", "--preset", help="tiny (tests), small (CPU demo), paper (table 9, GPU)."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", "-o", help="Run folder (default runs/<task>)."),
    steps: int = typer.Option(3000, "--steps", help="Optimisation steps."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Instead of steps: passes over the train split."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", help="Clips per batch and process."),
    crop_seconds: Optional[float] = typer.Option(None, "--crop-seconds", help="Random crop length (default: the model's maximum length)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="AdamW learning rate (default: paper 1.6e-5, small 1e-3, tiny 2e-3)."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Linear warm-up steps (default: paper 10000, small 100)."),
    p_uncond: float = typer.Option(0.1, "--p-uncond", help="Condition dropout for classifier-free guidance."),
    ema: float = typer.Option(0.999, "--ema", help="EMA decay of the saved weights."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (bf16 autocast on CUDA)."),
    workers: int = typer.Option(0, "--workers", help="DataLoader worker processes."),
    val_every: int = typer.Option(500, "--val-every"),
    ckpt_every: int = typer.Option(500, "--ckpt-every"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in the run folder."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from the weights of a finished run of the same task and VAE (fine-tuning; the step count starts at 0)."),
    frame_cond: Optional[bool] = typer.Option(None, "--frame-cond/--no-frame-cond", help="Also add each condition frame to the latent token of the same frame (default: the preset's; see docs/diffusion.md)."),
    positions: Optional[str] = typer.Option(None, "--positions", help="Position layout: offset (the paper's padded concatenation) or aligned (default: the preset's)."),
):
    """Train a latent diffusion transformer (section 4) on frozen BiCoR-VAE latents:
    epsilon-prediction DDPM, condition dropout, AdamW + warm-up, EMA weights.

    Multi-GPU / multi-node: `torchrun --nproc_per_node N $(which momu-train) diffusion ...`."""
    from momu_models.train.diffusion import DiffusionTrainConfig, train

    if epochs is not None:
        steps = max(1, int(round(epochs * _steps_per_epoch(shards, batch_size))))
    cfg = DiffusionTrainConfig(shards=str(shards), task=task, run_dir=str(run_dir) if run_dir else None,
                               vae=str(vae_dir), preset=preset, steps=steps, batch_size=batch_size,
                               crop_seconds=crop_seconds, lr=lr, warmup_steps=warmup, p_uncond=p_uncond,
                               ema_decay=ema, seed=seed, device=device, num_workers=workers, val_every=val_every,
                               ckpt_every=ckpt_every, resume=resume, init=str(init) if init else None,
                               frame_cond=frame_cond, positions=positions)
    _run(train, cfg, run_dir or Path("runs") / task)


@app.command()
def classifier(
    shards: Path = typer.Argument(Path("shards"), help="Shard folder of `momu-data shard` (uses train/ and val/)."),
    label: str = typer.Option("genre", "--label", help="The manifest label to predict: genre, style, dancer, music or choreo (read from each clip's meta.json)."),
    preset: str = typer.Option("small", "--preset", help="tiny (tests) or small (default; 0.65M parameters)."),
    run_dir: Path = typer.Option(Path("runs/classifier"), "--run-dir", "-o", help="Run folder: checkpoints/, metrics.jsonl/.csv, model.safetensors + config.json (with the class list)."),
    steps: int = typer.Option(1000, "--steps", help="Optimisation steps."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Instead of steps: passes over the train split."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", help="Clips per batch and process."),
    crop_seconds: float = typer.Option(4.0, "--crop-seconds", help="Random crop length of each train clip (validation uses whole clips)."),
    lr: float = typer.Option(1e-3, "--lr", help="AdamW learning rate (the paper fine-tunes MotionBert at 1e-4; this encoder starts from scratch)."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (bf16 autocast on CUDA)."),
    workers: int = typer.Option(0, "--workers", help="DataLoader worker processes."),
    val_every: int = typer.Option(200, "--val-every", help="Validate every N steps."),
    ckpt_every: int = typer.Option(200, "--ckpt-every", help="Checkpoint every N steps."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --run-dir."),
):
    """Train the motion classifier whose encoder gives the motion features of `momu-eval` (FID, Mean KLD, Diversity; appendix B.5: a genre classifier, its encoder reused).

    A conv + Transformer encoder over 2D poses and velocities, mean-pooled to one feature vector per clip, and a linear head. The classes are the values of --label found in the train split; clips without a value are skipped. Validation accuracy is logged next to chance (the best constant answer: the largest val class). Labels: synthetic videos (`momu-data synth`) carry genre = their music style; the AIST++ recipe labels genre, dancer, music and choreo from the sequence names; Dance with Melody views carry style; any dataset can add a --metadata CSV at extraction.

    Multi-GPU / multi-node: `torchrun --nproc_per_node N $(which momu-train) classifier ...`."""
    from momu_models.train.classifier import ClassifierTrainConfig, train

    if epochs is not None:
        steps = max(1, int(round(epochs * _steps_per_epoch(shards, batch_size))))
    cfg = ClassifierTrainConfig(shards=str(shards), run_dir=str(run_dir), label=label, preset=preset, steps=steps,
                                batch_size=batch_size, crop_seconds=crop_seconds, lr=lr, seed=seed, device=device,
                                num_workers=workers, val_every=val_every, ckpt_every=ckpt_every, resume=resume)
    _run(train, cfg, run_dir)


def _run(train, cfg, run_dir: Path) -> None:
    """Train, turning user-fixable problems into one-line errors; rank 0 reports."""
    from momu_models.train.loop import TrainError

    try:
        metrics = train(cfg)
    except (TrainError, RuntimeError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    if int(os.environ.get("RANK", "0")) == 0:
        console.print(f"finished: {run_dir}/model.safetensors  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


def _steps_per_epoch(shards: Path, batch_size: int) -> int:
    import pyarrow.parquet as pq

    world = int(os.environ.get("WORLD_SIZE", "1"))
    man = shards / "manifest.parquet"
    if not man.exists():
        console.print(f"[red]error:[/red] {man} not found: --epochs needs the shard manifest")
        raise typer.Exit(2)
    n = sum(1 for r in pq.read_table(man, columns=["split"]).to_pylist() if r["split"] == "train")
    return max(1, n // (batch_size * world))


def main():
    app()


if __name__ == "__main__":
    main()
