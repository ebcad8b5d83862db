"""Training plumbing shared by the trainers: an endless, resumable batch stream over the
train shards, shard checks with one-line errors, steps per epoch, gradient averaging under
torchrun, optimiser updates that skip non-finite losses and gradients, and a progress bar.
The trainers themselves stay one readable loop each.

On CUDA the stream feeds the GPU without making it wait (loader_settings): worker processes
by default, batches in pinned memory so that `to_device`'s non_blocking copies overlap the
step, and the next epoch's workers started while this epoch is consumed."""

from __future__ import annotations

import logging
import math
import os
import random
from pathlib import Path

import numpy as np
import torch

from momu_data.loader import RandomCrop, collate, decode_checked, open_shards, shard_urls, torch_loader
from momu_data.timebase import FPS

log = logging.getLogger(__name__)

# Updates in a row skipped for a non-finite loss or gradient before a run stops. One bad
# batch (a damaged clip, a rare overflow) is skipped and training goes on; several in a row
# mean broken data or diverged settings, and the run stops instead of idling on them.
MAX_NONFINITE_IN_A_ROW = 5


class TrainError(Exception):
    """A problem the user can fix (data, checkpoint, options); printed as one line."""


def crop_frames(cfg, factor: int) -> int:
    """cfg.crop_seconds as mel frames, a whole number of latent frames."""
    n = int(round(cfg.crop_seconds * FPS))
    return max(factor, n - n % factor)  # whole latent frames


class BatchStream:
    """Endless train batches with a resumable position: `epoch` and `consumed` (batches
    of that epoch already handed out) are all it takes to continue exactly."""

    def __init__(
        self,
        cfg,
        frames: int,
        rank: int,
        world: int,
        epoch: int = 0,
        consumed: int = 0,
        select=None,
        fields=None,
        device="cpu",
    ):
        self.cfg, self.frames, self.rank, self.world = cfg, frames, rank, world
        self.epoch, self.consumed = epoch, consumed
        # select(sample) -> bool keeps a sample (e.g. the classifier skips unlabelled clips);
        # applied before cropping and batching, so batches stay full and positions resumable.
        self.select = select
        # the loader fields the trainer uses (None: all): only their tar members are read
        self.fields = fields
        self.loader_kw = loader_settings(device, cfg.num_workers)
        self._it = None
        self._ahead = None  # the next epoch's batches, its workers already started

    # With worker processes, start the next epoch's loader as soon as an epoch's first batch
    # is out: its workers fork, open their shards and fill their shuffle buffers while this
    # epoch trains, so no epoch starts with the GPU waiting (each epoch is its own DataLoader,
    # with its own seeds, so persistent_workers alone would not carry workers across epochs).
    lookahead = True

    def _epoch_loader(self, epoch: int):
        import webdataset as wds

        urls = shard_urls(self.cfg.shards, "train")
        # Shard order is seeded per epoch and equal on every rank, then split by rank.
        order = np.random.default_rng(self.cfg.seed + 1000 * epoch).permutation(len(urls))
        by_node = len(urls) >= self.world
        ds = open_shards(
            [urls[i] for i in order],
            skip_corrupt=self.cfg.skip_corrupt,
            fields=self.fields,
            shardshuffle=False,
            empty_check=False,
            nodesplitter=wds.split_by_node if by_node else _all_shards,
            workersplitter=wds.split_by_worker,
        )
        if not by_node and self.world > 1:  # fewer shards than ranks: every world-th sample
            ds = ds.slice(self.rank, None, self.world)
        seed = self.cfg.seed + 1000 * epoch + self.rank
        if self.cfg.shuffle_buffer:
            ds = ds.shuffle(self.cfg.shuffle_buffer, rng=_py_rng(seed))
        ds = decode_checked(ds)
        if self.select is not None:
            ds = ds.select(self.select)
        ds = ds.map(RandomCrop(self.frames, seed))
        # partial batches too: a split smaller than one batch still trains
        ds = ds.batched(self.cfg.batch_size, collation_fn=collate, partial=True)
        return torch_loader(ds, **self.loader_kw)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        while True:
            if self._it is None:
                ahead, self._ahead = self._ahead, None
                self._it = ahead if ahead is not None else iter(self._epoch_loader(self.epoch))
                for _ in range(self.consumed):  # resume inside an epoch
                    next(self._it)
            try:
                batch = next(self._it)
            except StopIteration:
                if self.consumed == 0:
                    raise TrainError(
                        f"the train split of {self.cfg.shards} yields no clip "
                        "(for this rank): add data or use fewer processes"
                    ) from None
                self.epoch, self.consumed, self._it = self.epoch + 1, 0, None
                continue
            self.consumed += 1
            if self._ahead is None and self.lookahead and self.loader_kw["num_workers"] > 0:
                self._ahead = iter(self._epoch_loader(self.epoch + 1))
            return batch


def _all_shards(urls):
    """Node splitter that gives every rank all shards (samples are then sliced by rank)."""
    return urls


def _py_rng(seed: int):
    return random.Random(seed)


# Worker processes of a training loader on CUDA unless told (--workers): enough to decode
# and batch ahead of a GPU step, few enough to leave cores to the main process.
CUDA_WORKERS = 4


def loader_settings(device, num_workers: int | None = None) -> dict:
    """torch_loader's settings for training on `device`. num_workers None (the default,
    "auto"): min(CUDA_WORKERS, the cores this process may use) on CUDA, where the GPU must
    never wait for a batch; 0 on the CPU, where workers would take cores from the step itself.
    On CUDA the batches come in pinned memory, so `to_device`'s non_blocking copies run
    while the GPU computes. prefetch_factor: torch's 2 batches per worker (a few seconds of
    steps of the paper presets; decoding a batch takes far less)."""
    dev = torch.device(device)
    if num_workers is None:
        num_workers = min(CUDA_WORKERS, _cpu_count()) if dev.type == "cuda" else 0
    if num_workers < 0:
        raise TrainError(f"--workers must be 0 or more, not {num_workers}")
    return {
        "num_workers": num_workers,
        "pin_memory": dev.type == "cuda",
        # one DataLoader per epoch (BatchStream): the lookahead, not persistence, keeps workers warm
        "persistent_workers": False,
        "prefetch_factor": 2 if num_workers > 0 else None,
    }


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def to_device(batch: dict, device) -> dict:
    """The batch with its tensors moved to `device` (other entries, e.g. keys, as they are)."""
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def check_shards(cfg) -> dict:
    """Fail early, in one line, on a missing/empty shard folder or shards of another format."""
    root = Path(cfg.shards)
    if not root.exists():
        raise TrainError(f"shard folder {root} does not exist: build it with `momu-data shard`")
    try:
        urls = shard_urls(root, "train")
    except (FileNotFoundError, ValueError) as e:
        raise TrainError(f"{e}") from None
    import webdataset as wds

    try:
        first = next(iter(wds.WebDataset(urls[:1], shardshuffle=False, empty_check=False, nodesplitter=_all_shards)))
    except StopIteration:
        raise TrainError(f"{urls[0]} holds no samples") from None
    except Exception as e:  # not a tar, truncated...
        raise TrainError(f"{urls[0]} is not a readable WebDataset shard: {e}") from None
    need = {"pose.npy", "mel.npy", "amp.npy"}
    if not need <= set(first):
        raise TrainError(
            f"{urls[0]} is not a MoMu shard (has {sorted(k for k in first if not k.startswith('__'))}, "
            f"needs {sorted(need)}): build shards with `momu-data shard`"
        )
    return {"train_urls": len(urls)}


def steps_per_epoch(shards, batch_size: int, world: int | None = None) -> int:
    """Batches of one pass over the train split, per process: train clips of the shard
    manifest // (batch_size * world); world defaults to torchrun's WORLD_SIZE (1 without)."""
    import pyarrow.parquet as pq

    world = world or int(os.environ.get("WORLD_SIZE", "1"))
    man = Path(shards) / "manifest.parquet"
    if not man.exists():
        raise TrainError(f"{man} not found: --epochs needs the shard manifest")
    n = sum(1 for r in pq.read_table(man, columns=["split"]).to_pylist() if r["split"] == "train")
    return max(1, n // (batch_size * world))


def grad_sync_hooks(modules, world: int):
    """Average each parameter's gradient across ranks as soon as it is accumulated."""
    import torch.distributed as dist

    handles = []
    for m in modules:
        for p in m.parameters():
            if p.requires_grad:

                def hook(param):
                    dist.all_reduce(param.grad)
                    param.grad.div_(world)

                handles.append(p.register_post_accumulate_grad_hook(hook))
                dist.broadcast(p.data, 0)  # identical start on every rank
    return handles


def finite_update(loss: torch.Tensor, opt: torch.optim.Optimizer, grad_clip: float | None) -> tuple[bool, float]:
    """One optimiser update that never writes a non-finite value into the weights or the
    optimiser state: zero the gradients, backpropagate `loss`, clip the gradient norm of the
    optimiser's parameters to `grad_clip` (None: measure it only), and step only when the
    loss and the norm are finite. Under torchrun every rank backpropagates (the gradient
    hooks all-reduce) and the ranks agree on skipping, so they stay in sync.
    Returns (applied, gradient norm)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    # max_norm inf scales by exactly 1: the norm without changing the gradients
    norm = torch.nn.utils.clip_grad_norm_(params, math.inf if grad_clip is None else grad_clip)
    bad = ~(torch.isfinite(loss.detach()) & torch.isfinite(norm))
    import torch.distributed as dist

    if dist.is_initialized():
        flag = bad.to(torch.float32).reshape(1)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        bad = flag[0] > 0
    applied = not bool(bad)
    if applied:
        opt.step()
    else:
        opt.zero_grad(set_to_none=True)
    return applied, float(norm)


class NonFiniteGuard:
    """Counts the steps whose update was skipped (finite_update), logs each one with its
    clips, and stops the run after `limit` in a row with a one-line TrainError naming the
    last batch's sample keys. `total` and `in_a_row` go into checkpoints (state_dict);
    `state` is a resumed run's."""

    def __init__(self, limit: int | None = None, runlog=None, state: dict | None = None):
        self.limit, self.runlog = limit or MAX_NONFINITE_IN_A_ROW, runlog
        self.load_state_dict(state)

    def state_dict(self) -> dict:
        return {"total": self.total, "in_a_row": self.in_a_row}

    def load_state_dict(self, state: dict | None) -> None:
        state = state or {}  # checkpoints from before the guard
        self.total, self.in_a_row = int(state.get("total", 0)), int(state.get("in_a_row", 0))

    def update(self, step: int, applied: bool, batch: dict, loss: float) -> None:
        """Record the update of `step` (the step number after it) made on `batch`."""
        if applied:
            self.in_a_row = 0
            return
        self.total += 1
        self.in_a_row += 1
        keys = _key_list(batch.get("key") or [])
        if self.runlog is not None:
            self.runlog.log(step, {"nonfinite_skipped": self.total})
        if self.in_a_row >= self.limit:
            raise TrainError(
                f"{self.in_a_row} steps in a row (the last: step {step}, loss {loss}) had a non-finite loss or "
                f"gradient, so training stopped without saving them; the last batch's clips: {keys}. "
                "Check the shards (damaged or extreme values) or lower --lr; --resume continues from the last "
                "checkpoint"
            )
        log.warning(
            "step %d: non-finite loss or gradient (loss %s): update skipped (%d skipped so far, %d in a row); "
            "clips: %s",
            step,
            loss,
            self.total,
            self.in_a_row,
            keys,
        )


def _key_list(keys, at_most: int = 32) -> str:
    keys = [str(k) for k in keys]
    more = f" (+{len(keys) - at_most} more)" if len(keys) > at_most else ""
    return (", ".join(keys[:at_most]) or "(no keys)") + more


class Bar:
    """A rich progress bar with loss and throughput (main process only)."""

    def __init__(self, total: int, start: int, enabled: bool, name: str = "train"):
        self.enabled = enabled
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True, soft_wrap=True),
        )
        self.p.start()
        self.name = name
        self.t = self.p.add_task(name, total=total, completed=start, info="")

    def update(self, step, stage, loss, thr):
        if self.enabled:
            self.p.update(
                self.t, completed=step, description=f"{self.name}/{stage}", info=f"loss {loss:.4f}  {thr:.1f} clips/s"
            )

    def note(self, step, metrics):
        if self.enabled and metrics:
            self.p.console.print(
                f"step {step}: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "split_is_val")
            )

    def close(self):
        if self.enabled:
            self.p.stop()
