"""`momu-train`: train the models of MoMu-Diffusion from `momu-data shard` output.

  momu-train vae shards/                                BiCoR-VAE, both stages -> runs/vae/
  momu-train diffusion shards/ --task motion2music      DiT, music from motion -> runs/motion2music/
  momu-train diffusion shards/ --task music2motion      DiT, motion from music -> runs/music2motion/
  momu-train classifier shards/ --label genre           motion classifier (metrics) -> runs/classifier/

Every command also takes --config FILE: a JSON or TOML object of trainer settings (any
field of the trainer's config, e.g. {"warmup_steps": 50, "val_batches": 5}); options given
on the command line win over the file, the file over the preset's defaults, those over the
trainer's.

--preset paper is the paper's protocol, not only its model sizes: the BiCoR-VAE trains 300
epochs per stage with contrast weight 1, each DiT 200 epochs at lr 1.6e-5 after 10k warm-up
steps (appendix A.2, B.3); an epoch is one pass over the train split at --batch-size per
process. --steps (or --epochs) given explicitly wins. docs/reproduce.md has the rest.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from momu_data.cli.common import console, fail, setup_logging
from momu_models.train.args import SettingsError, apply_epochs, preset_settings, read_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
log = logging.getLogger(__name__)

# Options every trainer has: defined once here (names, help); each command sets its default.
Shards = Annotated[Path, typer.Argument(help="Shard folder of `momu-data shard` (uses train/ and val/).")]
Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        exists=True,
        dir_okay=False,
        help="JSON or TOML file (by suffix) of trainer settings: any field of the trainer's config except shards, "
        "run_dir and resume. Options given on the command line win over it.",
    ),
]
Preset = Annotated[
    str,
    typer.Option(
        "--preset",
        help=(
            "Model size: tiny (tests), small (CPU demo) or, for the VAE and the DiT, paper (tables 8 and 9, GPU). "
            "paper also brings the paper's schedule and losses: 300 epochs per VAE stage, contrast weight 1, "
            "200 DiT epochs at lr 1.6e-5 with 10k warm-up steps (docs/reproduce.md)."
        ),
    ),
]
RunDir = Annotated[
    Path | None,
    typer.Option(
        "--run-dir",
        "-o",
        help="Run folder: checkpoints/, metrics.jsonl/.csv, tensorboard/, model.safetensors + config.json.",
    ),
]
Steps = Annotated[
    int,
    typer.Option(
        "--steps",
        help="Optimisation steps (the VAE: per stage). Given, it wins over --epochs and the paper preset's epochs.",
    ),
]
Epochs = Annotated[
    float | None,
    typer.Option(
        "--epochs",
        help=(
            "Instead of --steps: passes over the train split (the VAE: per stage), at --batch-size per process. "
            "Default: with --preset paper the paper's (VAE 300, DiT 200), else --steps."
        ),
    ),
]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", help="Clips per batch and process.")]
CropSeconds = Annotated[
    float | None, typer.Option("--crop-seconds", help="Random crop length of each train clip, in seconds.")
]
Lr = Annotated[float | None, typer.Option("--lr", help="AdamW learning rate.")]
Seed = Annotated[
    int, typer.Option("--seed", help="Seed of the initial weights, the data order and every random draw.")
]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda (bf16 autocast on CUDA).")]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="DataLoader worker processes (0: read in the training process). Default: 0 on the CPU, 4 on CUDA.",
        show_default=False,
    ),
]
ValEvery = Annotated[int, typer.Option("--val-every", help="Validate every N steps.")]
CkptEvery = Annotated[int, typer.Option("--ckpt-every", help="Checkpoint every N steps.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in --run-dir.")]
SkipCorrupt = Annotated[
    bool,
    typer.Option(
        "--skip-corrupt",
        help="Skip damaged shard samples (bad checksum, unreadable, impossible values), counted and logged, instead "
        "of stopping on the first.",
    ),
]

# Options whose trainer-config field has another name.
FIELDS = {"workers": "num_workers", "vae_dir": "vae", "warmup": "warmup_steps", "ema": "ema_decay"}


@app.callback()
def _group():
    """One sub-command per model (kept a group even while it has one command)."""


@app.command()
def vae(
    ctx: typer.Context,
    shards: Shards = Path("shards"),
    config: Config = None,
    stage: str = typer.Option(
        "all",
        "--stage",
        help=(
            "music (stage 1: mel VAE + GAN), motion (stage 2: motion VAE + rhythmic contrast, music VAE frozen) or "
            "all."
        ),
    ),
    preset: Preset = "small",
    run_dir: RunDir = Path("runs/vae"),
    steps: Steps = 2000,
    music_steps: int | None = typer.Option(None, "--music-steps", help="Steps of stage 1 (default --steps)."),
    motion_steps: int | None = typer.Option(None, "--motion-steps", help="Steps of stage 2 (default --steps)."),
    epochs: Epochs = None,
    batch_size: BatchSize = 8,
    crop_seconds: CropSeconds = 4.0,
    lr: Lr = 2e-4,
    motion_lr: float | None = typer.Option(
        None, "--motion-lr", help="AdamW learning rate of stage 2 (default: paper preset 2e-4, small/tiny 1e-3)."
    ),
    grad_clip: float = typer.Option(1.0, "--grad-clip", help="Gradient norm clipping."),
    contrast_weight: float | None = typer.Option(
        None,
        "--contrast-weight",
        help=(
            "Weight of the rhythmic contrastive loss against the per-element L1 (0: ablation without it). Default: "
            "1 (the paper's) with --preset paper, else 0.2 (measured better at CPU lengths: docs/bicor_vae.md)."
        ),
    ),
    seed: Seed = 0,
    device: Device = "auto",
    workers: Workers = None,
    val_every: ValEvery = 250,
    ckpt_every: CkptEvery = 250,
    resume: Resume = False,
    skip_corrupt: SkipCorrupt = False,
    init: Path | None = typer.Option(
        None, "--init", help="For --stage motion: a finished run whose music VAE to use."
    ),
):
    """Train the BiCoR-VAE (appendix A): AdamW, lr 2e-4 (--lr: stage 1, --motion-lr: stage 2),
    KL 1e-5, GAN 0.5, rhythmic contrast.

    Length: 2000 steps per stage; with --preset paper 300 epochs per stage (and contrast
    weight 1), as appendix A.2. --steps, --music-steps, --motion-steps or --epochs win.

    Multi-GPU / multi-node: `torchrun --nproc_per_node N $(which momu-train) vae shards/`."""
    from momu_models.train.vae import VAETrainConfig, train  # torch: loaded when a command runs, not for --help

    with _one_line_errors():
        settings = _settings(ctx, config, VAETrainConfig, skip=("steps",))
        if _given(ctx, "steps"):  # --steps sets both stages unless --music-steps / --motion-steps say otherwise
            for name in ("music_steps", "motion_steps"):
                if not _given(ctx, name):
                    settings[name] = steps
        settings = preset_settings("vae", settings)
        cfg = VAETrainConfig(shards=str(shards), **settings)
        _apply_epochs(cfg, "vae", settings)
        metrics = train(cfg)
    _finished(cfg.run_dir, metrics)


@app.command()
def diffusion(
    ctx: typer.Context,
    shards: Shards = Path("shards"),
    config: Config = None,
    task: str | None = typer.Option(
        None,
        "--task",
        help="motion2music (music from dance) or music2motion (dance from music); required unless --config sets task.",
    ),
    vae_dir: Path = typer.Option(Path("runs/vae"), "--vae", help="The trained BiCoR-VAE run (frozen here)."),
    preset: Preset = "small",
    run_dir: RunDir = None,
    steps: Steps = 3000,
    epochs: Epochs = None,
    batch_size: BatchSize = 8,
    crop_seconds: CropSeconds = None,
    lr: Lr = None,
    warmup: int | None = typer.Option(
        None, "--warmup", help="Linear warm-up steps (default: paper 10000, small 100)."
    ),
    lr_decay: str = typer.Option(
        "constant",
        "--lr-decay",
        help="After the warm-up: constant, or cosine (down to 0 at the last step; for short runs, docs/diffusion.md).",
    ),
    p_uncond: float = typer.Option(0.1, "--p-uncond", help="Condition dropout for classifier-free guidance."),
    ema: float = typer.Option(0.999, "--ema", help="EMA decay of the saved weights."),
    seed: Seed = 0,
    device: Device = "auto",
    workers: Workers = None,
    val_every: ValEvery = 500,
    ckpt_every: CkptEvery = 500,
    resume: Resume = False,
    skip_corrupt: SkipCorrupt = False,
    init: Path | None = typer.Option(
        None,
        "--init",
        help=(
            "Start from the weights of a finished run of the same task and VAE (fine-tuning; the step count starts "
            "at 0)."
        ),
    ),
    frame_cond: bool | None = typer.Option(
        None,
        "--frame-cond/--no-frame-cond",
        help=(
            "Also add each condition frame to the latent token of the same frame (default: the preset's; see "
            "docs/diffusion.md)."
        ),
    ),
    positions: str | None = typer.Option(
        None,
        "--positions",
        help="Position layout: offset (the paper's padded concatenation) or aligned (default: the preset's).",
    ),
):
    """Train a latent diffusion transformer (section 4) on frozen BiCoR-VAE latents:
    epsilon-prediction DDPM, condition dropout, AdamW + warm-up, EMA weights.

    Defaults per preset: learning rate paper 1.6e-5, small 1e-3, tiny 2e-3; length 3000 steps,
    with --preset paper 200 epochs (appendix B.3; --steps or --epochs win); crop length the
    model's maximum length; run folder runs/<task>.

    Multi-GPU / multi-node: `torchrun --nproc_per_node N $(which momu-train) diffusion ...`."""
    from momu_models.train.diffusion import DiffusionTrainConfig, train  # torch: see vae()

    with _one_line_errors():
        settings = _settings(ctx, config, DiffusionTrainConfig)
        if "task" not in settings:
            raise SettingsError("missing option --task: motion2music or music2motion (or a task in --config)")
        settings = preset_settings("diffusion", settings)
        cfg = DiffusionTrainConfig(shards=str(shards), **settings)
        _apply_epochs(cfg, "diffusion", settings)
        _warn_long_warmup(cfg)
        metrics = train(cfg)
    _finished(cfg.run_dir or f"runs/{cfg.task}", metrics)


@app.command()
def classifier(
    ctx: typer.Context,
    shards: Shards = Path("shards"),
    config: Config = None,
    label: str = typer.Option(
        "genre",
        "--label",
        help="The manifest label to predict: genre, style, dancer, music or choreo (read from each clip's meta.json).",
    ),
    preset: Preset = "small",
    run_dir: RunDir = Path("runs/classifier"),
    steps: Steps = 1000,
    epochs: Epochs = None,
    batch_size: BatchSize = 16,
    crop_seconds: CropSeconds = 4.0,
    lr: Lr = 1e-3,
    seed: Seed = 0,
    device: Device = "auto",
    workers: Workers = None,
    val_every: ValEvery = 200,
    ckpt_every: CkptEvery = 200,
    resume: Resume = False,
    skip_corrupt: SkipCorrupt = False,
):
    """Train the motion classifier whose encoder gives the motion features of `momu-eval` (FID, Mean KLD, Diversity;
    appendix B.5: a genre classifier, its encoder reused).

    A conv + Transformer encoder over 2D poses and velocities, mean-pooled to one feature vector per clip, and a
    linear head. The classes are the values of --label found in the train split; clips without a value are skipped.
    Validation accuracy is logged next to chance (the best constant answer: the largest val class). Labels:
    synthetic videos (`momu-data synth`) carry genre = their music style; the AIST++ recipe labels genre, dancer,
    music and choreo from the sequence names; Dance with Melody views carry style; any dataset can add a --metadata
    CSV at extraction. Validation uses whole clips; the default learning rate 1e-3 suits this encoder trained from
    scratch (the paper fine-tunes MotionBert at 1e-4).

    Multi-GPU / multi-node: `torchrun --nproc_per_node N $(which momu-train) classifier ...`."""
    from momu_models.train.classifier import ClassifierTrainConfig, train  # torch: see vae()

    with _one_line_errors():
        settings = preset_settings("classifier", _settings(ctx, config, ClassifierTrainConfig))
        cfg = ClassifierTrainConfig(shards=str(shards), **settings)
        _apply_epochs(cfg, "classifier", settings)
        metrics = train(cfg)
    _finished(cfg.run_dir, metrics)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option `name` was given on the command line (not left at its default)."""
    # By name: typer vendors its own click, whose ParameterSource is not click.core's.
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _settings(ctx: typer.Context, config: Path | None, config_cls, skip=()) -> dict:
    """Trainer-config fields: those of the --config file, then the options given on the
    command line over them (the config class's defaults fill in the rest)."""
    settings = read_settings(config, config_cls) if config else {}
    for name, value in ctx.params.items():
        if name in ("shards", "config", *skip) or not _given(ctx, name):
            continue
        settings[FIELDS.get(name, name)] = str(value) if isinstance(value, Path) else value
    return settings


def _apply_epochs(cfg, trainer: str, settings: dict) -> None:
    """The steps fields `settings` leaves open, from cfg.epochs and the shards' train split."""
    if cfg.epochs is None:
        return
    from momu_models.train.loop import steps_per_epoch  # torch: see vae()

    apply_epochs(cfg, trainer, settings, steps_per_epoch(cfg.shards, cfg.batch_size))


def _warn_long_warmup(cfg) -> None:
    """Say so when the learning-rate warm-up takes half the run or more: the paper's 10k
    warm-up steps within 200 epochs need at least 10k steps, i.e. a small global batch."""
    from momu_models.train.diffusion import PRESET_LR  # torch: see vae()

    if cfg.preset not in PRESET_LR:
        return  # train() names the valid presets
    warm = cfg.warmup_steps if cfg.warmup_steps is not None else PRESET_LR[cfg.preset][1]
    if warm >= cfg.steps / 2:
        log.warning(
            "the learning-rate warm-up (%d steps) is %d%% of the run (%d steps): the rate reaches its peak late or "
            "never; a smaller --batch-size (more steps per epoch) or --warmup fixes it (docs/reproduce.md)",
            warm,
            round(100 * min(warm, cfg.steps) / cfg.steps),
            cfg.steps,
        )


@contextmanager
def _one_line_errors():
    """Problems the user can fix (settings, data, checkpoints, options) as one line, exit 2."""
    from momu_data.loader import ShardError
    from momu_models.train.loop import TrainError  # torch: see vae()

    try:
        yield
    except (SettingsError, TrainError, ShardError, RuntimeError) as e:
        fail(str(e))


def _finished(run_dir, metrics: dict) -> None:
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        scores = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        console.print(f"finished: {run_dir}/model.safetensors  {scores}")


def main():
    setup_logging()  # the library logs resume notes, class counts, ... through `logging`
    app()


if __name__ == "__main__":
    main()
