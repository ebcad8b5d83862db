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

Integrity: a checkpoint with a non-finite value is never written (TrainError instead);
state.json records the sha256 of both tensor files, so any later change to them (a flipped
bit, truncation) is caught when the checkpoint is read. A damaged file is a one-line
CheckpointError naming it, and `latest_checkpoint` falls back to the newest intact
checkpoint with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from momu_data.io import sha256_file, write_json
from momu_models.train import distributed as D
from momu_models.train.loop import TrainError

log = logging.getLogger(__name__)

TENSOR_FILES = ("model.safetensors", "optim.safetensors")


class CheckpointError(TrainError):
    """A checkpoint file that is missing or damaged; `path` is the file."""

    def __init__(self, path, why: str):
        self.path, self.why = Path(path), why
        super().__init__(f"checkpoint file {self.path} {why}")


def nonfinite(tensors: dict) -> list[str]:
    """The names of the floating-point tensors holding a NaN or an infinity."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def _listed(names: list[str], at_most: int = 3) -> str:
    return ", ".join(names[:at_most]) + (f", ... ({len(names)} in all)" if len(names) > at_most else "")


def require_finite(modules: dict, target) -> None:
    """Raise a one-line TrainError, instead of writing `target`, when a module's state
    (parameters and buffers) holds a non-finite value."""
    bad = nonfinite({f"{n}.{k}": v for n, m in modules.items() for k, v in m.state_dict().items()})
    if bad:
        raise TrainError(
            f"refusing to write {target}: non-finite weights ({_listed(bad)}): the run diverged; "
            "resume from the last checkpoint (--resume) with a lower --lr"
        )


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
    """Write checkpoint `step` of the given modules and optimizers plus JSON-able state.
    A non-finite value in the modules or the optimizers' state is a TrainError, and nothing
    is written."""
    ckdir = Path(run_dir) / "checkpoints"
    final = ckdir / f"step-{step:08d}"
    model_t = {
        f"{n}.{k}": v.detach().cpu().contiguous() for n, m in modules.items() for k, v in m.state_dict().items()
    }
    opt_t, opt_meta = {}, {}
    for n, o in optimizers.items():
        t, m = _flatten_optimizer(n, o.state_dict())
        opt_t.update(t)
        opt_meta[n] = m
    bad = nonfinite(model_t) + nonfinite(opt_t)
    if bad:
        raise TrainError(
            f"refusing to write checkpoint {final}: non-finite values ({_listed(bad)}): the run diverged; "
            "resume from the last checkpoint (--resume) with a lower --lr"
        )
    rng_t, rng_meta = rng_state()
    opt_t.update(rng_t)
    tmp = ckdir / f".tmp-{os.getpid()}-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(model_t, str(tmp / "model.safetensors"))
    save_file(opt_t, str(tmp / "optim.safetensors"))
    sums = {f: sha256_file(tmp / f) for f in TENSOR_FILES}
    (tmp / "state.json").write_text(
        json.dumps({**state, "step": step, "optimizers": opt_meta, "rng": rng_meta, "sha256": sums})
    )
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_json(ckdir / "latest.json", {"step": step, "path": final.name})
    for old in sorted(ckdir.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


_CHANGED = "is damaged: its sha256 differs from the one state.json recorded when it was written"


def read_state(path) -> dict:
    """state.json of checkpoint folder `path`; a missing or damaged one is a CheckpointError."""
    p = Path(path) / "state.json"
    if not p.is_file():
        raise CheckpointError(p, "is missing")
    try:
        state = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(p, f"is damaged: not readable JSON ({e})") from None
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("step"), int)
        or not {"optimizers", "rng"} <= set(state)
    ):
        raise CheckpointError(p, "is damaged: not a checkpoint state (step, optimizers, rng)")
    return state


def _read_tensors(path: Path, sha256: str | None) -> dict:
    if not path.is_file():
        raise CheckpointError(path, "is missing")
    # checkpoints from before the checksums have none: the reader's own checks remain
    if sha256 is not None and sha256_file(path) != sha256:
        raise CheckpointError(path, _CHANGED)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(path, f"is damaged: not a readable safetensors file ({e})") from None
    bad = nonfinite(tensors)
    if bad:
        raise CheckpointError(path, f"is damaged: non-finite values in {_listed(bad)}")
    return tensors


def read_checkpoint(path) -> tuple[dict, dict, dict]:
    """(state, model tensors, optimizer tensors) of checkpoint folder `path`, every file
    checked (state.json parses, checksums match, tensors load and are finite); the first
    damaged or missing file is a one-line CheckpointError naming it."""
    path = Path(path)
    state = read_state(path)
    sums = state.get("sha256") or {}
    model_t, opt_t = (_read_tensors(path / f, sums.get(f)) for f in TENSOR_FILES)
    return state, model_t, opt_t


def verify_checkpoint(path) -> dict:
    """The state of checkpoint folder `path` once its files are checked: state.json parses
    and each tensor file matches its recorded sha256 (a checkpoint from before the checksums
    is read in full instead, read_checkpoint). A damaged or missing file is a CheckpointError."""
    path = Path(path)
    state = read_state(path)
    sums = state.get("sha256")
    if not sums:
        return read_checkpoint(path)[0]
    for f in TENSOR_FILES:
        if not (path / f).is_file():
            raise CheckpointError(path / f, "is missing")
        if sha256_file(path / f) != sums.get(f):
            raise CheckpointError(path / f, _CHANGED)
    return state


def latest_checkpoint(run_dir) -> Path | None:
    """The newest intact checkpoint of a run: the one `latest.json` names, else the newest
    `step-*` folder. A damaged one is skipped with a warning naming its damaged file, in
    favour of the next older; when every checkpoint is damaged, the newest one's damage is
    the CheckpointError. None when there is no checkpoint at all."""
    ckdir = Path(run_dir) / "checkpoints"
    folders = sorted((d for d in ckdir.glob("step-*") if d.is_dir()), reverse=True)
    named = _named_by_latest(ckdir)
    candidates = ([named] if named is not None else []) + [d for d in folders if d != named]
    first: CheckpointError | None = None
    for cand in candidates:
        try:
            verify_checkpoint(cand)
        except CheckpointError as e:
            first = first or e
            continue
        if first is not None and D.is_main():
            log.warning("%s; falling back to the newest intact checkpoint, %s", first, cand)
        return cand
    if first is not None:
        raise CheckpointError(
            first.path,
            f"{first.why}, and {ckdir} holds no older intact checkpoint: "
            "start over without --resume (or in another --run-dir)",
        )
    return None


def _named_by_latest(ckdir: Path) -> Path | None:
    """The folder latest.json points to; a damaged latest.json is a warning (the newest
    step folder is used instead)."""
    p = ckdir / "latest.json"
    if not p.exists():
        return None
    try:
        cand = ckdir / json.loads(p.read_text())["path"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        if D.is_main():
            log.warning("checkpoint file %s is damaged (%s): using the newest step-* folder", p, e)
        return None
    return cand


def resume_checkpoint(run_dir) -> Path | None:
    """latest_checkpoint(run_dir), saying (on the main process) which step a run resumes from."""
    ck = latest_checkpoint(run_dir)
    if ck is not None and D.is_main():
        log.info("resuming from step %d: %s", read_state(ck)["step"], ck)
    return ck


def load_checkpoint(path, modules: dict, optimizers: dict | None = None, restore_rng: bool = True) -> dict:
    """Load a checkpoint folder into modules (and optimizers); returns its state dict.
    A damaged file is a one-line CheckpointError naming it (read_checkpoint)."""
    state, model_t, opt_t = read_checkpoint(path)
    for n, m in modules.items():
        prefix = f"{n}."
        sd = {k[len(prefix) :]: v for k, v in model_t.items() if k.startswith(prefix)}
        m.load_state_dict(sd)
    for n, o in (optimizers or {}).items():
        o.load_state_dict(_unflatten_optimizer(n, opt_t, state["optimizers"][n]))
    if restore_rng:
        set_rng_state(opt_t, state["rng"])
    return state


def load_finished(load, path, what: str):
    """`load(path)` of a finished run folder (a from_pretrained), with a missing or damaged
    model.safetensors / config.json as a one-line TrainError naming the file and `what`
    (e.g. "--init"); a model with non-finite weights is refused the same way."""
    p = Path(path)
    folder = p.parent if p.suffix == ".safetensors" else p
    try:
        out = load(path)
    except FileNotFoundError as e:
        raise TrainError(f"{what} {path}: {e}") from None
    except SafetensorError as e:
        raise TrainError(f"{what}: {folder / 'model.safetensors'} is damaged ({e}): train that run again") from None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise TrainError(
            f"{what}: {folder / 'config.json'} is damaged ({type(e).__name__}: {e}): train that run again"
        ) from None
    except RuntimeError as e:  # weights that do not fit the config (load_state_dict)
        raise TrainError(
            f"{what}: {folder / 'model.safetensors'} does not fit its config.json "
            f"({str(e).splitlines()[0]}): train that run again"
        ) from None
    model = out[0] if isinstance(out, tuple) else out
    bad = nonfinite(model.state_dict())
    if bad:
        raise TrainError(
            f"{what}: {folder / 'model.safetensors'} holds non-finite weights ({_listed(bad)}): "
            "the run diverged; train it again"
        )
    return out
