"""Checkpoints as safetensors + JSON, written atomically, resumable exactly.

A checkpoint is a folder `checkpoints/step-00001000/` holding
  model.safetensors  every module's state (keys prefixed by module name)
  optim.safetensors  the optimizers' tensor state (keys "<name>.<param index>.<field>")
  state.json         step, data position, optimizer hyper-parameters and scalar state,
                     Python / numpy RNG states, the run config
and `torch.get_rng_state()` as a uint8 tensor in optim.safetensors. The folder is written
under a temporary name and renamed when complete, then `latest.json` is rewritten
atomically to point at it; a run killed at any moment leaves the previous checkpoint usable.
No pickle anywhere: safetensors for tensors, JSON for the rest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from momu_data.io import write_json


def _flatten_optimizer(name: str, sd: dict) -> tuple[dict, dict]:
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{name}.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict, meta: dict) -> dict:
    state: dict = {}
    prefix = f"{name}."
    for key, v in tensors.items():
        if key.startswith(prefix):
            pid, field = key[len(prefix) :].split(".", 1)
            state.setdefault(int(pid), {})[field] = v
    for pid, st in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(st)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict, dict]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    py = random.getstate()
    npst = np.random.get_state()
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
    }
    return tensors, meta


def set_rng_state(tensors: dict, meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if states:
            torch.cuda.set_rng_state_all(states)
    v, st, g = meta["python"]
    random.setstate((v, tuple(st), g))
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))


def save_checkpoint(run_dir, step: int, modules: dict, optimizers: dict, state: dict, keep: int = 2) -> Path:
    """Write checkpoint `step` of the given modules and optimizers plus JSON-able state."""
    ckdir = Path(run_dir) / "checkpoints"
    final = ckdir / f"step-{step:08d}"
    tmp = ckdir / f".tmp-{os.getpid()}-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model_t = {
        f"{n}.{k}": v.detach().cpu().contiguous() for n, m in modules.items() for k, v in m.state_dict().items()
    }
    save_file(model_t, str(tmp / "model.safetensors"))
    opt_t, opt_meta = {}, {}
    for n, o in optimizers.items():
        t, m = _flatten_optimizer(n, o.state_dict())
        opt_t.update(t)
        opt_meta[n] = m
    rng_t, rng_meta = rng_state()
    opt_t.update(rng_t)
    save_file(opt_t, str(tmp / "optim.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "step": step, "optimizers": opt_meta, "rng": rng_meta}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_json(ckdir / "latest.json", {"step": step, "path": final.name})
    for old in sorted(ckdir.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir) -> Path | None:
    ckdir = Path(run_dir) / "checkpoints"
    p = ckdir / "latest.json"
    if p.exists():
        try:
            cand = ckdir / json.loads(p.read_text())["path"]
            if (cand / "state.json").exists():
                return cand
        except (json.JSONDecodeError, KeyError):
            pass
    done = sorted(d for d in ckdir.glob("step-*") if (d / "state.json").exists())
    return done[-1] if done else None


def load_checkpoint(path, modules: dict, optimizers: dict | None = None, restore_rng: bool = True) -> dict:
    """Load a checkpoint folder into modules (and optimizers); returns its state dict."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    model_t = load_file(str(path / "model.safetensors"))
    for n, m in modules.items():
        prefix = f"{n}."
        sd = {k[len(prefix) :]: v for k, v in model_t.items() if k.startswith(prefix)}
        m.load_state_dict(sd)
    opt_t = load_file(str(path / "optim.safetensors"))
    for n, o in (optimizers or {}).items():
        o.load_state_dict(_unflatten_optimizer(n, opt_t, state["optimizers"][n]))
    if restore_rng:
        set_rng_state(opt_t, state["rng"])
    return state
