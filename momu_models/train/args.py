"""Settings every trainer shares, and trainer settings read from a JSON or TOML file.

`TrainArgs` holds the knobs of all three trainers (data, optimiser, schedule of
validations and checkpoints, resume); `VAETrainConfig` (train/vae.py),
`DiffusionTrainConfig` (train/diffusion.py) and `ClassifierTrainConfig`
(train/classifier.py) extend it with their own fields. A run writes its config to
train_config.json, so field names and defaults are part of the run format.

`read_settings(path, config_cls)` reads a settings file (`momu-train ... --config FILE`):
one object of trainer-config fields, checked against the config class. The data, the run
folder and whether to resume are not settings of a file: the command line (or the caller)
gives them.

This module imports no torch, so `momu-train --help` stays quick.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path

# Fields that name the data, the run and whether it continues: never read from a settings file.
NOT_SETTINGS = ("shards", "run_dir", "resume")


@dataclass
class TrainArgs:
    """The fields every trainer has. Defaults are the BiCoR-VAE trainer's; the diffusion and
    classifier configs re-declare the fields whose default differs."""

    shards: str = "shards"  # a `momu-data shard` folder (train/, val/)
    run_dir: str = "runs/vae"  # checkpoints/, metrics.jsonl/.csv, tensorboard/, model.safetensors + config.json
    preset: str = "small"  # model size: tiny (tests), small (CPU demo), paper (GPU)
    batch_size: int = 8  # clips per batch and process
    crop_seconds: float = 4.0  # random crop length of each train clip
    lr: float = 2e-4  # AdamW learning rate; appendix A.2 (VAE stage 1, and stage 2 of the paper preset)
    weight_decay: float = 0.01
    warmup_steps: int = 100  # linear learning-rate warm-up
    grad_clip: float = 1.0  # global gradient norm clipping
    seed: int = 0
    device: str = "auto"  # auto, cpu or cuda (bf16 autocast on CUDA)
    # DataLoader worker processes; None: 0 on the CPU, 4 on CUDA (train/loop.py loader_settings)
    num_workers: int | None = None
    shuffle_buffer: int = 256  # samples of the train stream's shuffle buffer
    val_every: int = 250  # steps between validations
    ckpt_every: int = 250  # steps between checkpoints
    log_every: int = 10  # steps between metric rows
    val_batches: int = 20  # batches per validation
    resume: bool = False  # continue from the last checkpoint in run_dir
    skip_corrupt: bool = False  # skip damaged shard samples (counted, logged) instead of stopping on the first
    # Training length in passes over the train split (the VAE: per stage), turned into steps by
    # `momu-train` (steps_per_epoch of the shards); the steps fields a run gives itself win.
    # None: the preset's (PRESET_SETTINGS; paper 300 VAE / 200 DiT), else the steps fields.
    epochs: float | None = None


# What a preset sets besides the model size, for the fields a run does not set itself
# (`preset_settings`). `paper` is the paper's protocol: 300 epochs per BiCoR-VAE stage and
# contrast weight 1 (appendix A.2), 200 epochs of each DiT (appendix B.3; its lr 1.6e-5 and
# 10k warm-up steps are train/diffusion.py's PRESET_LR, its stage-2 lr 2e-4 train/vae.py's
# MOTION_LR). The CPU presets keep the trainers' defaults: 2000 / 3000 steps and contrast
# weight 0.2 (measured better at CPU lengths, docs/bicor_vae.md). docs/reproduce.md lists
# every departure from the paper.
PRESET_SETTINGS: dict[str, dict[str, dict]] = {
    "vae": {"paper": {"epochs": 300.0, "contrast_weight": 1.0}},
    "diffusion": {"paper": {"epochs": 200.0}},
    "classifier": {},
}
# The fields that hold a trainer's length in steps (epochs fill those a run does not set).
STEP_FIELDS = {"vae": ("music_steps", "motion_steps"), "diffusion": ("steps",), "classifier": ("steps",)}


def preset_settings(trainer: str, settings: dict, preset: str = "small") -> dict:
    """`settings` (trainer-config fields a run sets) over the defaults of its preset
    (settings["preset"], else `preset`) in PRESET_SETTINGS[trainer]. A run that sets every
    steps field itself gets no preset epochs: explicit steps win."""
    extra = dict(PRESET_SETTINGS[trainer].get(settings.get("preset", preset), {}))
    if all(f in settings for f in STEP_FIELDS[trainer]):
        extra.pop("epochs", None)
    return {**extra, **settings}


def apply_epochs(cfg, trainer: str, settings: dict, steps_per_epoch: int) -> None:
    """Set the steps fields that `settings` does not give from cfg.epochs (if set):
    round(epochs * steps_per_epoch), at least 1."""
    if cfg.epochs is None:
        return
    if cfg.epochs <= 0:
        raise SettingsError(f"epochs must be positive, not {cfg.epochs:g}")
    n = max(1, int(round(cfg.epochs * steps_per_epoch)))
    for name in STEP_FIELDS[trainer]:
        if name not in settings:
            setattr(cfg, name, n)


class SettingsError(ValueError):
    """A settings file the user can fix (unknown field, wrong type, unreadable); one line."""


def setting_names(config_cls) -> list[str]:
    """The fields a settings file may set for `config_cls`, sorted."""
    return sorted(f.name for f in fields(config_cls) if f.name not in NOT_SETTINGS)


def read_settings(path, config_cls) -> dict:
    """The settings of a JSON (.json) or TOML (.toml) file for `config_cls`, checked:
    unknown fields and values of the wrong type raise SettingsError. Integers given for
    float fields become floats (as the command line would give them)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SettingsError(f"cannot read settings file {path}: {e.strerror or e}") from None
    if path.suffix == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise SettingsError(f"{path} is not valid JSON: {e}") from None
    elif path.suffix == ".toml":
        import tomllib  # Python 3.11+

        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"{path} is not valid TOML: {e}") from None
    else:
        raise SettingsError(f"settings file {path}: use a .json or .toml file")
    if not isinstance(raw, dict):
        raise SettingsError(f"{path} must hold one object of settings, not {type(raw).__name__}")
    known = setting_names(config_cls)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    hints = typing.get_type_hints(config_cls)
    return {k: _checked(k, v, hints[k]) for k, v in raw.items()}


def _checked(name: str, value, hint):
    """value if it fits the field type `hint` (int, float, str, bool, or X | None)."""
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool):  # bool is an int subclass: only a bool field takes it
        ok = bool in allowed
    elif isinstance(value, int) and float in allowed and int not in allowed:
        return float(value)
    else:
        ok = any(t in (int, float, str) and type(value) is t for t in allowed)
    if not ok:
        want = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise SettingsError(f"setting {name} must be {want}, not {value!r}")
    return value
