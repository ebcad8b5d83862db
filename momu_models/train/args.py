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
    num_workers: int = 0  # DataLoader worker processes
    shuffle_buffer: int = 256  # samples of the train stream's shuffle buffer
    val_every: int = 250  # steps between validations
    ckpt_every: int = 250  # steps between checkpoints
    log_every: int = 10  # steps between metric rows
    val_batches: int = 20  # batches per validation
    resume: bool = False  # continue from the last checkpoint in run_dir


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
