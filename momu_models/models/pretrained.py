"""Finished models on disk: `model.safetensors` + `config.json` in one folder, no pickle."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_pretrained(module: torch.nn.Module, path, config: dict) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".tmp-{os.getpid()}-model"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp / "model.safetensors")
    )
    (tmp / "config.json").write_text(json.dumps(config, indent=1))
    # Two renames: each file is replaced whole; config last so a reader never sees new
    # config with old weights for longer than this window.
    os.replace(tmp / "model.safetensors", path / "model.safetensors")
    os.replace(tmp / "config.json", path / "config.json")
    tmp.rmdir()
    return path


def load_pretrained(path, map_location: str = "cpu") -> tuple[dict, dict]:
    path = Path(path)
    folder = path.parent if path.suffix == ".safetensors" else path
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"no model.safetensors in {folder}: is it a finished run folder?")
    cfg = json.loads((folder / "config.json").read_text())
    return cfg, load_file(str(weights), device=map_location)
