"""DistributedDataParallel without a framework: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK;
we pick NCCL on CUDA and Gloo on CPU (so `torchrun --nproc_per_node 2` works on a laptop)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init(device: str) -> tuple[int, int, torch.device]:
    """Returns (rank, world_size, device). Single process when not under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device(device)


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def mean(value: float, device) -> float:
    """Average a float over processes (for logging)."""
    if not dist.is_initialized():
        return float(value)
    t = torch.tensor([float(value)], device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def check_in_sync(modules, device) -> None:
    """Raise if the ranks' parameters differ (they must, after averaged gradients, agree)."""
    if not dist.is_initialized():
        return
    with torch.no_grad():
        total = sum(float(p.double().sum()) for m in modules for p in m.parameters())
    t = torch.tensor([total, -total], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if abs(float(t[0]) + float(t[1])) > 1e-6 * max(1.0, abs(total)):
        raise RuntimeError(f"ranks diverged: parameter sums differ across processes ({float(t[0])} vs {-float(t[1])})")
