"""The figures of docs/diffusion.md and docs/training.md, "On the GPU": `python -m benchmarks hot_paths`.

1. Saved activations of the DiT's FFN convolutions (`DiT.conv_path` "matmul" = im2col against
   "conv1d") for the `paper` preset, per clip of 960 + 960 latent frames, in bf16: what
   autograd keeps for the backward pass inside the ConvGEGLUFeedForward modules, recorded with
   torch.autograd.graph.saved_tensors_hooks over one forward pass of the whole DiT (no padding,
   so no masks). Counted on the meta device (shapes and dtypes, no arithmetic: the real pass
   takes minutes under bf16 autocast on a CPU) in float32, each floating-point storage at 2
   bytes an element: under bf16 autocast the FFN saves bf16 copies of exactly those tensors
   (a bf16 model would not run: the timestep features are float32). Each storage counts once;
   per clip is the difference between batch 2 and batch 1 (what does not grow with the batch,
   the weights and the segment taps, drops out), scaled to batch 64. A cross-check counts the
   same thing with real tensors under CPU bf16 autocast for the `small` preset (128 + 128
   frames): the two counts must be equal.
2. 40 AdamW updates of the `small` DiT's parameters: train/optim.adamw (torch's fused kernel)
   against torch.optim.AdamW with its defaults, the same gradients, and the largest weight
   difference after them.
3. A `small` DiT training step (batch 16 x 128 latent frames, the trainer's loss, gradient
   clipping and update) and an eval forward at batch 2 (one guided step, the sampler's network
   call, on 128 frames and on the preset's full 320-frame window) with each convolution path.

Times are process time on one thread (torch.set_num_threads(1)): they hold on a machine shared
with other jobs, though cache contention still moves them by a few percent."""

from __future__ import annotations

import statistics
import time
from functools import partial

import torch

from benchmarks.common import append_results
from momu_models.diffusion import Diffusion, guided_eps
from momu_models.models.dit import DiT, make_config
from momu_models.train.diffusion import PRESET_LR
from momu_models.train.loop import finite_update
from momu_models.train.optim import adamw, is_fused

MIB = 2**20
PATHS = ("matmul", "conv1d")


# --------------------------------------------------------------------------- saved activations


def ffn_saved_bytes(model: DiT, batch: int, frames: int, autocast: bool = False) -> int:
    """Bytes of the distinct storages autograd saves inside the FFN modules of `model` during
    one forward pass of `batch` clips of `frames` latent frames (condition as long), on the
    model's device. autocast False: a float32 pass, its floating-point storages counted at 2
    bytes an element (bf16); True: a pass under CPU bf16 autocast, storages counted as they are."""
    dev = next(model.parameters()).device
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.in_channels, frames, generator=g).to(dev)
    c = torch.randn(batch, cfg.cond_channels, frames, generator=g).to(dev)
    t = torch.full((batch,), 500, device=dev)
    inside = [False]
    storages: dict[int, tuple] = {}

    def pack(tensor):
        if inside[0]:
            s = tensor.untyped_storage()
            size = s.nbytes()
            if not autocast and tensor.is_floating_point():
                size = size // tensor.element_size() * 2
            storages[id(s)] = (s, size)  # the storage held, so its id stays its own
        return tensor

    def enter(module, args):
        inside[0] = True

    def leave(module, args, out):
        inside[0] = False

    handles = []
    for block in model.blocks:
        handles += [block.ff.register_forward_pre_hook(enter), block.ff.register_forward_hook(leave)]
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                model(x, t, c)
    finally:
        for h in handles:
            h.remove()
    return sum(size for _, size in storages.values())


def per_clip_bytes(model: DiT, frames: int, autocast: bool = False) -> int:
    return ffn_saved_bytes(model, 2, frames, autocast) - ffn_saved_bytes(model, 1, frames, autocast)


def activation_rows(batch: int = 64) -> list[tuple[str, str]]:
    rows = []
    cfg = make_config("paper")
    with torch.device("meta"):
        model = DiT(cfg)
    got = {}
    for path in PATHS:
        model.conv_path = path
        got[path] = per_clip_bytes(model, cfg.max_len)
    for path in PATHS:
        rows.append(
            (
                f"paper DiT FFN saved activations, conv_path {path!r}, bf16, {cfg.max_len} + {cfg.max_len} frames",
                f"{got[path] / MIB:.0f} MiB per clip, {got[path] * batch / 2**30:.1f} GiB at batch {batch}",
            )
        )
    extra = got["matmul"] - got["conv1d"]
    rows.append(
        (
            f"paper DiT FFN, matmul over conv1d at batch {batch}",
            f"+{extra * batch / 2**30:.1f} GiB ({got['matmul'] / got['conv1d']:.2f}x)",
        )
    )
    # Cross-check of the meta-device count against real tensors under CPU bf16 autocast.
    small = make_config("small")
    torch.manual_seed(0)
    real = DiT(small)
    with torch.device("meta"):
        meta = DiT(small)
    check = []
    for path in PATHS:
        real.conv_path = meta.conv_path = path
        a, b = per_clip_bytes(real, 128, autocast=True), per_clip_bytes(meta, 128)
        if a != b:
            raise RuntimeError(f"meta count {b} B differs from the autocast count {a} B ({path}, small preset)")
        check.append(f"{path} {a / MIB:.2f} MiB")
    rows.append(("check: small DiT FFN per clip of 128 + 128 frames, CPU autocast = meta", ", ".join(check)))
    return rows


# --------------------------------------------------------------------------- fused AdamW


def adamw_rows(updates: int = 40, repeats: int = 3) -> list[tuple[str, str]]:
    torch.manual_seed(0)
    base = DiT(make_config("small"))
    lr = PRESET_LR["small"][0]
    g = torch.Generator().manual_seed(1)
    grads = [[torch.randn(p.shape, generator=g) for p in base.parameters()] for _ in range(updates)]
    weights, times, fused_flag = {}, {"fused": [], "unfused": []}, None
    for _ in range(repeats):
        for kind in ("fused", "unfused"):
            params = [p.detach().clone().requires_grad_(True) for p in base.parameters()]
            if kind == "fused":
                opt = adamw(params, lr=lr)
                fused_flag = is_fused(opt)
            else:
                opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
            spent = 0.0
            for step in grads:
                for p, gr in zip(params, step):
                    p.grad = gr
                t0 = time.process_time()
                opt.step()
                spent += time.process_time() - t0
            times[kind].append(spent)
            weights[kind] = params
    diff = max((a - b).abs().max().item() for a, b in zip(weights["fused"], weights["unfused"]))
    n = sum(p.numel() for p in base.parameters())
    return [
        (
            f"{updates} AdamW updates, small DiT ({n / 1e6:.2f} M parameters), best of {repeats}",
            f"fused (train/optim.adamw, fused={fused_flag}) {min(times['fused']):.3f} s, "
            f"torch.optim.AdamW default {min(times['unfused']):.3f} s",
        ),
        (f"largest weight difference after {updates} updates", f"{diff:.1e}"),
    ]


# --------------------------------------------------------------------------- steps per path


def _process_times(fns: dict, warmup: int, repeats: int) -> dict:
    """Median process time of each function, the functions run in turn (interleaved, so a
    change in the machine's load touches them alike)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.process_time()
            fn()
            out[k].append(time.process_time() - t0)
    return {k: statistics.median(v) for k, v in out.items()}


def step_rows(batch: int = 16, frames: int = 128, eval_frames: tuple[int, ...] = (128, 320)) -> list[tuple[str, str]]:
    cfg = make_config("small")
    diffusion = Diffusion.from_config(cfg)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(batch, cfg.in_channels, frames, generator=g)
    cond = torch.randn(batch, cfg.cond_channels, frames, generator=g)
    mask = torch.ones(batch, frames, dtype=torch.bool)
    xe = {n: torch.randn(1, cfg.in_channels, n, generator=g) for n in eval_frames}
    ce = {n: torch.randn(1, cfg.cond_channels, n, generator=g) for n in eval_frames}
    train, evals = {}, {}
    for path in PATHS:
        torch.manual_seed(0)
        model = DiT(cfg)
        model.conv_path = path
        opt = adamw(model.parameters(), lr=PRESET_LR["small"][0], weight_decay=0.0)
        gen = torch.Generator().manual_seed(3)

        def train_step(model=model, opt=opt, gen=gen):
            model.train()
            loss = diffusion.training_loss(model, x0, cond, mask, 0.1, gen)
            finite_update(loss, opt, 1.0)

        @torch.no_grad()
        def eval_step(n, model=model):
            model.eval()
            guided_eps(model, xe[n], 500, ce[n], 3.0)

        train[path] = train_step
        evals.update({(n, path): partial(eval_step, n) for n in eval_frames})
    ts = _process_times(train, 1, 5)
    es = _process_times(evals, 2, 15)
    return [
        (
            f"small DiT training step, batch {batch} x {frames} latent frames, median of 5",
            ", ".join(f"{p} {ts[p]:.2f} s" for p in PATHS),
        ),
    ] + [
        (
            f"small DiT eval forward, batch 2 (one guided step) x {n} latent frames, median of 15",
            ", ".join(f"{p} {es[n, p] * 1000:.0f} ms" for p in PATHS),
        )
        for n in eval_frames
    ]


def run() -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = activation_rows() + adamw_rows() + step_rows()
    finally:
        torch.set_num_threads(threads)
    return append_results(
        "Hot paths (cpu, 1 thread, process time)",
        rows,
        "`python -m benchmarks hot_paths` (benchmarks/hot_paths.py): FFN activations counted with saved-tensor "
        "hooks on the meta device at 2 bytes an element (equal to a CPU bf16 autocast count on the small "
        "preset); times are process time on one thread.",
    )
