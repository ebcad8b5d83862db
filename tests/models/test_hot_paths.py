"""The hot paths written for a GPU, shown on the CPU (tests/cuda/test_cuda_hot_paths.py repeats the
sampling under CUDA's sync debug mode on a GPU).

- The sampling loop never waits for the device: `SyncRecorder` records every call that, on a
  GPU, reads a value back to the host (.item(), bool(), .tolist(), nonzero, boolean
  indexing, ...) or builds a tensor from host data or on the default (CPU) device (a copy to
  the GPU), during `sample` and `joint_sample` with DDIM and DPM-Solver++, guidance, windows and
  known frames. Nothing is recorded but the one look at each known mask before the loop;
  control cases show the recorder catches a planted `.item()` and the schedule lookup of before.
- masked_conv's two paths (im2col matmul, F.conv1d on segment-padded tokens) agree.
- The trainers' fused AdamW makes the updates of torch's default AdamW.
- The loaders' settings per device; worker processes and the next-epoch lookahead give the
  batches a single process gives.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import momu_models.train.classifier as TC
import momu_models.train.diffusion as TD
import momu_models.train.vae as TV
from momu_models.diffusion import Diffusion, guided_eps, joint_sample, sample
from momu_models.diffusion.process import Solver
from momu_models.models.dit import DiT, conv_path_for, make_config, masked_conv, segment_taps
from momu_models.models.vae import PRESETS as VAE_PRESETS
from momu_models.models.vae import BiCoRVAE
from momu_models.train.args import TrainArgs
from momu_models.train.loop import BatchStream, TrainError, loader_settings
from momu_models.train.optim import AdamW, adamw, is_fused

ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- the recorder

# Tensor methods that hand a value to the host: on a GPU each waits for the device to finish.
READBACK = {
    "item",
    "tolist",
    "numpy",
    "cpu",
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
    "__complex__",
    "__array__",
    "nonzero",
    "argwhere",
    "masked_select",
    "unique",
    "unique_consecutive",
    "equal",
    "allclose",
}
# Tensors from host data (a synchronous copy to the GPU) ...
HOST_DATA = {"tensor", "as_tensor", "asarray", "from_numpy", "new_tensor"}
# ... and factories that, without device=, make their tensor on the CPU.
FACTORIES = {
    "zeros",
    "ones",
    "empty",
    "full",
    "arange",
    "rand",
    "randn",
    "randint",
    "randperm",
    "linspace",
    "logspace",
    "eye",
    "scalar_tensor",
}
# aten ops that read back, whatever Python call led to them (internal ones included).
SYNC_OPS = {
    "aten._local_scalar_dense",
    "aten.is_nonzero",
    "aten.nonzero",
    "aten.masked_select",
    "aten.equal",
    "aten._unique2",
    "aten.unique_dim",
    "aten.unique_consecutive",
    "aten.lift_fresh",
    "aten.lift_fresh_copy",
}


# repeat_interleave by a tensor of counts: the output size is their sum, read back.
REPEAT_BY_TENSOR = {"aten::repeat_interleave.Tensor", "aten::repeat_interleave.self_Tensor"}


def _has_bool_index(index) -> bool:
    items = index if isinstance(index, (tuple, list)) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


def _site() -> str:
    """'file:function' of the innermost caller outside torch and this recorder."""
    f = sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if "torch" not in Path(name).parts and not (
            name == __file__ and f.f_code.co_name in ("__torch_function__", "__torch_dispatch__", "_record")
        ):
            try:
                name = str(Path(name).resolve().relative_to(ROOT))
            except ValueError:
                pass
            return f"{name}:{f.f_code.co_name}"
        f = f.f_back
    return "?"


class _Functions(TorchFunctionMode):
    def __init__(self, events):
        super().__init__()
        self.events = events

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        why = None
        if name in READBACK:
            why = f"{name} reads a value back"
        elif name in HOST_DATA and not (args and isinstance(args[0], torch.Tensor) and name != "new_tensor"):
            why = f"{name} copies host data"
        elif name in FACTORIES and func is getattr(torch, name, None) and kwargs.get("device") is None:
            why = f"torch.{name} without device= (made on the CPU)"
        elif name == "repeat_interleave" and kwargs.get("output_size") is None:
            reps = args[1] if len(args) > 1 else kwargs.get("repeats")
            if isinstance(reps, torch.Tensor):
                why = "repeat_interleave by a tensor reads its sum back"
        elif name in ("__getitem__", "__setitem__") and len(args) > 1 and _has_bool_index(args[1]):
            why = f"boolean {name} reads the mask's count back"
        if why:
            self.events.append((why, _site()))
        return func(*args, **kwargs)


class _Ops(TorchDispatchMode):
    def __init__(self, events):
        super().__init__()
        self.events = events

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        op = str(func.overloadpacket)
        why = None
        if op in SYNC_OPS:
            why = op
        elif func.name() in REPEAT_BY_TENSOR and kwargs.get("output_size") is None:
            why = op + " (tensor repeats)"
        elif op in ("aten.index", "aten.index_put", "aten.index_put_") and _has_bool_index(args[1]):
            why = op + " (boolean index)"
        if why:
            self.events.append((why, _site()))
        return func(*args, **kwargs)


class SyncRecorder:
    """Records (why, 'file:function') for every call that would make the host wait for a GPU
    or copy host data to it (see READBACK, HOST_DATA, FACTORIES, SYNC_OPS)."""

    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def __enter__(self):
        self._f, self._d = _Functions(self.events), _Ops(self.events)
        self._f.__enter__()
        self._d.__enter__()
        return self

    def __exit__(self, *exc):
        self._d.__exit__(*exc)
        self._f.__exit__(*exc)

    def outside(self, *allowed: str) -> list[tuple[str, str]]:
        """The events not made by the functions `allowed` ('file:function')."""
        return [e for e in self.events if e[1] not in allowed]


# The one host-side look at a known-frames mask, made once per mask before the first step.
HELD = "momu_models/diffusion/windows.py:held_frames"


def tiny_dit(seed: int, max_len: int = 16, **kw) -> DiT:
    torch.manual_seed(seed)
    return DiT(make_config("tiny", max_len=max_len, **kw)).eval()


@pytest.fixture(scope="module")
def pair():
    return tiny_dit(0), tiny_dit(1)


def _known(L: int, C: int = 20):
    """Known latents [1, C, L] and a CPU mask (a prefix and a kept range)."""
    g = torch.Generator().manual_seed(5)
    mask = torch.zeros(L, dtype=torch.bool)
    mask[:6] = True
    mask[30:34] = True
    return torch.randn(1, C, L, generator=g), mask


@pytest.mark.parametrize("solver", ["ddim", "dpm++2m"])
def test_sample_waits_for_nothing(pair, solver):
    m2m, _ = pair
    L = 40  # > max_len 16: three windows
    cond = torch.randn(2, 20, L, generator=torch.Generator().manual_seed(1))
    x_mask = torch.ones(2, L, dtype=torch.bool)
    x_mask[1, 33:] = False
    known, km = _known(L)
    d = Diffusion.from_config(m2m.config)
    kw = dict(steps=6, guidance_scale=2.5, diffusion=d, solver=solver, x_mask=x_mask)
    with SyncRecorder() as rec:
        out = sample(m2m, cond, generator=torch.Generator().manual_seed(2), known=known, known_mask=km, **kw)
        plain = sample(m2m, cond, generator=torch.Generator().manual_seed(2), **kw)
        sample(m2m, None, L, batch_size=2, generator=torch.Generator().manual_seed(3), **{**kw, "x_mask": None})
    assert rec.outside(HELD) == []
    assert len(rec.events) == 1  # the known mask, once: not per window or step
    assert torch.isfinite(out).all() and torch.equal(out[0][:, km], known[0][:, km])  # held exactly
    assert not torch.equal(out, plain)


@pytest.mark.parametrize("solver", ["ddim", "dpm++2m"])
def test_joint_sample_waits_for_nothing(pair, solver):
    m2m, m2mo = pair
    L = 40
    x_mask = torch.ones(2, L, dtype=torch.bool)
    x_mask[0, 36:] = False
    known, km = _known(L)
    d = Diffusion.from_config(m2m.config)
    with SyncRecorder() as rec:
        res = joint_sample(
            m2m,
            m2mo,
            L,
            steps=6,
            guidance_scale=2.5,
            generator=torch.Generator().manual_seed(4),
            cross_start=0.5,
            diffusion=d,
            x_mask=x_mask,
            known_music=known,
            known_music_mask=km,
            solver=solver,
        )
    assert rec.outside(HELD) == [] and len(rec.events) == 1
    assert any(e["conditioned"] for e in res.trace) and any(not e["conditioned"] for e in res.trace)
    assert torch.isfinite(res.motion).all() and torch.isfinite(res.music).all()


def test_ddim_with_noise_and_the_vae_decode_wait_for_nothing(pair):
    m2m, _ = pair
    d = Diffusion.from_config(m2m.config)
    torch.manual_seed(0)
    vae = BiCoRVAE(VAE_PRESETS["tiny"]).eval()
    with SyncRecorder() as rec, torch.no_grad():
        z = sample(m2m, None, 20, batch_size=2, steps=5, eta=1.0, diffusion=d, generator=torch.Generator())
        mel = vae.decode_music(z, 40)
        pose = vae.decode_motion(z, 40)
    assert rec.events == []
    assert mel.shape == (2, 80, 40) and pose.shape == (2, 40, 14, 2)
    # the schedule stays on the host for int steps: no device copy of it was ever made
    assert d._abar_tables == {}


class Peeks(nn.Module):
    """A denoiser that reads its timestep back to the host, as `if t.max() > 500:` would."""

    def __init__(self, inner: DiT):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, x_t, t, *args, **kwargs):
        if float(t.max()) > 500:  # the planted read-back
            pass
        return self.inner(x_t, t, *args, **kwargs)


def _abar_before(self, t, like):
    """Diffusion.abar as it was: a CPU lookup copied to the device at every step."""
    t = torch.as_tensor(t, dtype=torch.long).cpu()
    a = torch.where(t >= 0, self.alphas_cumprod[t.clamp(min=0)], torch.ones((), dtype=torch.float64))
    a = a.to(device=like.device, dtype=like.dtype)
    return a.reshape(a.shape + (1,) * (like.ndim - a.ndim)) if a.ndim else a


def _segment_taps_before(segments, kernel, device=None):
    """dit.segment_taps as it was: the lengths copied from the host, repeat_interleave by them."""
    seg = torch.repeat_interleave(torch.arange(len(segments), device=device), torch.tensor(segments, device=device))
    n, p = seg.numel(), kernel // 2
    src = torch.arange(n, device=device)[None] + torch.arange(-p, kernel - p, device=device)[:, None]
    inside = (src >= 0) & (src < n)
    return (inside & (seg[src.clamp(0, n - 1)] == seg[None])).float()


def test_the_recorder_catches_reads_and_copies(pair, monkeypatch):
    """Control cases: the recorder is not blind. A planted read-back in the network is
    recorded at every network call, and so are the per-step schedule copy and the per-forward
    segment lookup of before."""
    m2m, _ = pair
    d = Diffusion.from_config(m2m.config)
    cond = torch.randn(1, 20, 12)
    with SyncRecorder() as rec:
        sample(Peeks(m2m), cond, steps=4, guidance_scale=2.5, diffusion=d)
    assert len(rec.events) >= 4 and all(site.endswith("test_hot_paths.py:forward") for _, site in rec.events)

    monkeypatch.setattr(Diffusion, "abar", _abar_before)
    with SyncRecorder() as rec:
        sample(m2m, cond, steps=4, guidance_scale=2.5, diffusion=d)
    whys = {w for w, _ in rec.events}
    assert {
        "as_tensor copies host data",
        "cpu reads a value back",
        "torch.ones without device= (made on the CPU)",
    } <= whys
    assert sum(w == "cpu reads a value back" for w, _ in rec.events) >= 8  # two lookups per step
    monkeypatch.undo()

    import momu_models.models.dit as dit

    monkeypatch.setattr(dit, "segment_taps", _segment_taps_before)
    with SyncRecorder() as rec:
        sample(m2m, cond, steps=4, guidance_scale=2.5, diffusion=d)
    assert sum(w == "aten.repeat_interleave (tensor repeats)" for w, _ in rec.events) == 4  # one per forward


@pytest.mark.parametrize("frames", [4, 41])
def test_griffinlim_iterations_wait_for_nothing(frames):
    """Griffin-Lim's setup reads and copies on the host (the magnitudes, the initial phase,
    the window envelope's check) and the audio comes back at the end; its iterations add
    nothing: the recorded calls are the same for 2 and for 6 iterations."""
    from momu_models.generate.vocoders.griffinlim import griffinlim_torch

    mags = np.abs(np.random.default_rng(0).standard_normal((2, 513, frames))).astype(np.float32)
    counts = []
    for n_iter in (2, 6):
        with SyncRecorder() as rec:
            griffinlim_torch(mags, n_iter, 0, (frames - 1) * 256)
        # the setup's sites (the initial phase is drawn in a list comprehension on Python 3.11)
        assert {site.split(":")[1] for _, site in rec.events} <= {"griffinlim_torch", "_istft", "<listcomp>"}
        counts.append(len(rec.events))
    assert counts[0] == counts[1]


@pytest.mark.parametrize("frames, n", [(41, 40 * 256), (4, 1024), (3, 1024)])
def test_griffinlim_istft_is_torch_istft(frames, n):
    """The overlap-add ISTFT of Griffin-Lim (its envelope checked once, on the host) equals
    torch.istft, clips shorter than N_FFT (zero tail) included."""
    import warnings

    from momu_models.generate.vocoders.griffinlim import _istft

    g = torch.Generator().manual_seed(0)
    spec = torch.polar(torch.rand(2, 513, frames, generator=g), 6.28 * torch.rand(2, 513, frames, generator=g))
    window = torch.hann_window(1024)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.istft's note on the zero tail
        ref = torch.istft(spec, 1024, 256, 1024, window, center=True, length=n)
    torch.testing.assert_close(_istft(window, "cpu", frames, n)(spec), ref, atol=1e-7, rtol=1e-5)


# --------------------------------------------------------------------------- the schedule on the host


def test_abar_host_floats_and_a_device_table_for_training():
    d = Diffusion()
    x = torch.zeros(3, 2, 4)
    assert isinstance(d.abar(999, x), float) and d.abar(999, x) == d.alphas_cumprod[999].item()
    assert d.abar(-1, x) == 1.0
    with pytest.raises(IndexError):
        d.abar(1000, x)
    t = torch.tensor([0, 500, -1])
    a = d.abar(t, x)
    assert a.shape == (3, 1, 1) and a.dtype == torch.float32
    torch.testing.assert_close(a.flatten(), torch.tensor([d.alphas_cumprod[0], d.alphas_cumprod[500], 1.0]).float())
    table = d._abar_tables[(torch.device("cpu"), torch.float32)]
    d.abar(torch.tensor([3]), x)
    assert len(d._abar_tables) == 1 and d._abar_tables[(torch.device("cpu"), torch.float32)] is table
    d.abar(torch.tensor([3]), x.double())
    assert len(d._abar_tables) == 2


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_host_floats_equal_the_tensor_arithmetic(eta):
    d = Diffusion()
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(2, 3, 8, generator=g), torch.randn(2, 3, 8, generator=g)
    for t, t_prev in ((999, 979), (519, 499), (19, -1)):
        a = d.ddim_step(x, t, t_prev, eps, eta, torch.Generator().manual_seed(1))
        b = d.ddim_step(x, torch.tensor(t), torch.tensor(t_prev), eps, eta, torch.Generator().manual_seed(1))
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v, rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(d.q_sample(x, 400, eps), d.q_sample(x, torch.tensor(400), eps))
    torch.testing.assert_close(d.predict_x0(x, 400, eps), d.predict_x0(x, torch.tensor(400), eps))


def test_dpm_solver_matches_its_formula_in_float64():
    """DPM-Solver++(2M) in host floats against the same update written with float64 tensors."""
    d = Diffusion()
    ts = d.ddim_timesteps(6)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, generator=g, dtype=torch.float64)
    epss = [torch.randn(2, 3, 8, generator=g, dtype=torch.float64) for _ in ts]
    solver, ref, last = Solver(d, "dpm++2m"), x.clone(), None
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        x, _ = solver.step(x, t, t_prev, epss[i])
        a = d.alphas_cumprod[t]
        a_prev = d.alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
        x0 = (ref - (1 - a).sqrt() * epss[i]) / a.sqrt()
        if t_prev < 0:
            ref = x0
            break
        lam = lambda v: 0.5 * (v.log() - (-v).log1p())  # noqa: E731
        h = lam(a_prev) - lam(a)
        d0 = x0 if last is None else (1 + 1 / (2 * last[1] / h)) * x0 - (1 / (2 * last[1] / h)) * last[0]
        last = (x0, h)
        ref = ((1 - a_prev) / (1 - a)).sqrt() * ref + a_prev.sqrt() * (-torch.expm1(-h)) * d0
    torch.testing.assert_close(x, ref, rtol=1e-12, atol=1e-12)


def test_guided_eps_under_autocast_stays_float32(pair):
    m2m, _ = pair
    g = torch.Generator().manual_seed(0)
    x, c = torch.randn(2, 20, 12, generator=g), torch.randn(2, 20, 12, generator=g)
    full = guided_eps(m2m, x, 400, c, 2.5)
    half = guided_eps(m2m, x, 400, c, 2.5, autocast=torch.bfloat16)
    assert half.dtype == torch.float32
    assert (half - full).abs().max() < 0.05 * full.abs().max()
    z = sample(m2m, c, steps=3, generator=torch.Generator().manual_seed(1), autocast=torch.bfloat16)
    assert z.dtype == torch.float32 and torch.isfinite(z).all()


# --------------------------------------------------------------------------- convolution paths


def test_conv_path_for():
    assert conv_path_for("auto", torch.device("cpu")) == "matmul"
    assert conv_path_for("auto", torch.device("cuda")) == "conv1d"
    assert conv_path_for("matmul", torch.device("cuda")) == "matmul"
    with pytest.raises(ValueError, match="unknown convolution path"):
        conv_path_for("fft", torch.device("cpu"))


@pytest.mark.parametrize("kernel", [1, 3, 5, 9])
def test_masked_conv_paths_agree_per_segment(kernel):
    """Both paths equal torch's Conv1d run on each segment alone, values and gradients, with
    segments shorter than half the kernel (the time token) and padded tokens."""
    torch.manual_seed(0)
    conv = nn.Conv1d(6, 10, kernel, padding=kernel // 2)
    segments = (1, 2, 7, 9)
    h = torch.randn(2, sum(segments), 6, requires_grad=True)
    keep = torch.ones(2, sum(segments), dtype=torch.bool)
    keep[1, 8:10] = False
    ref = torch.cat(
        [
            conv((hs * ks[..., None]).transpose(1, 2)).transpose(1, 2)
            for hs, ks in zip(h.split(segments, 1), keep.split(segments, 1))
        ],
        dim=1,
    )
    (g_ref,) = torch.autograd.grad(ref.square().sum(), h)
    outs = {
        "matmul": masked_conv(conv, h, keep, segment_taps(segments, kernel)),
        "conv1d": masked_conv(conv, h, keep, segments=segments, path="conv1d"),
    }
    for path, out in outs.items():
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5, msg=path)
        (g,) = torch.autograd.grad(out.square().sum(), h)
        torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=1e-4, msg=path)
    one = masked_conv(conv, h, None, segments=None, path="conv1d")
    torch.testing.assert_close(one, conv(h.transpose(1, 2)).transpose(1, 2), atol=1e-5, rtol=1e-5)
    if kernel > 1:
        with pytest.raises(ValueError, match="segment lengths"):
            masked_conv(conv, h, keep, segment_taps(segments, kernel), path="conv1d")


@pytest.mark.parametrize("frame_cond", [True, False])
def test_dit_conv_paths_agree(frame_cond):
    """The whole DiT, forced down each path: same eps and same parameter gradients, with
    padding, a condition of another length (frame_cond off) and kernel 9 as the paper's."""
    torch.manual_seed(0)
    m = DiT(make_config("tiny", ff_kernel=9, frame_cond=frame_cond))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 20, 14, generator=g)
    c = torch.randn(3, 20, 14 if frame_cond else 10, generator=g)
    x_mask = torch.ones(3, 14, dtype=torch.bool)
    x_mask[2, 9:] = False
    t = torch.tensor([0, 500, 999])
    res = {}
    for path in ("matmul", "conv1d"):
        m.conv_path = path
        m.zero_grad()
        out = m(x, t, c, x_mask=x_mask, drop_cond=torch.tensor([False, True, False]))
        out.square().sum().backward()
        res[path] = out.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    torch.testing.assert_close(res["matmul"][0], res["conv1d"][0], atol=1e-5, rtol=1e-4)
    for n, gr in res["matmul"][1].items():
        torch.testing.assert_close(gr, res["conv1d"][1][n], atol=1e-4, rtol=1e-3, msg=n)


def test_dit_without_masks_equals_all_valid_masks(pair):
    m2m, _ = pair
    g = torch.Generator().manual_seed(0)
    x, c = torch.randn(2, 20, 12, generator=g), torch.randn(2, 20, 12, generator=g)
    t = torch.tensor([10, 900])
    ones = torch.ones(2, 12, dtype=torch.bool)
    torch.testing.assert_close(m2m(x, t, c), m2m(x, t, c, x_mask=ones, cond_mask=ones), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m2m(x, 10, None), m2m(x, torch.tensor(10), None, x_mask=ones), atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- fused AdamW


def test_fused_adamw_makes_the_default_updates():
    torch.manual_seed(0)
    net = DiT(make_config("tiny"))
    ref = DiT(make_config("tiny"))
    ref.load_state_dict(net.state_dict())
    fused = adamw(net.parameters(), lr=1e-2, betas=(0.5, 0.9), weight_decay=0.1)
    plain = torch.optim.AdamW(ref.parameters(), lr=1e-2, betas=(0.5, 0.9), weight_decay=0.1)
    assert fused.param_groups[0]["betas"] == (0.5, 0.9) and fused.param_groups[0]["weight_decay"] == 0.1
    torch_version = tuple(int(v) for v in torch.__version__.split(".")[:2])
    assert is_fused(fused) == (torch_version >= (2, 4))  # the CPU has a fused kernel since 2.4
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        for p, q in zip(net.parameters(), ref.parameters()):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        fused.step()
        plain.step()
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_adamw_keeps_its_kernel_when_loading_another_ones_state():
    torch.manual_seed(0)
    a = nn.Linear(4, 3)
    b = nn.Linear(4, 3)
    fused = adamw(a.parameters(), lr=1e-3)
    plain = AdamW(b.parameters(), lr=1e-3)
    for opt, m in ((fused, a), (plain, b)):
        m(torch.randn(2, 4)).sum().backward()
        opt.step()
    want = is_fused(fused)
    fused.load_state_dict(plain.state_dict())
    plain.load_state_dict(fused.state_dict())
    assert is_fused(fused) == want and not is_fused(plain)
    steps = [st["step"] for st in fused.state.values()]
    assert all(s.dtype == torch.float32 and float(s) == 1.0 for s in steps)
    a(torch.randn(2, 4)).sum().backward()
    fused.step()  # the loaded state runs under the fused kernel


def _trainer_calls(module) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text())
    return {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}


def test_trainers_build_their_optimisers_with_the_factory(toy_shards, tmp_path, monkeypatch):
    """Each trainer's optimisers come from train/optim.adamw: the trainers are run up to the
    point where they build them."""

    class Built(Exception):
        pass

    made = []

    def spy(params, *a, **kw):
        made.append(adamw(params, *a, **kw))
        if len(made) in stop_at:
            raise Built

    from media import tiny_vae_config

    for module in (TV, TD, TC):
        monkeypatch.setattr(module, "adamw", spy)
        assert "torch.optim.AdamW" not in _trainer_calls(module)
    stop_at = {3}  # the VAE: music, discriminator, motion
    with pytest.raises(Built):
        TV.train(tiny_vae_config(toy_shards, tmp_path / "vae"), progress=False)
    torch.manual_seed(0)
    BiCoRVAE(VAE_PRESETS["tiny"]).save_pretrained(tmp_path / "v")
    stop_at = {4}
    with pytest.raises(Built):
        TD.train(
            TD.DiffusionTrainConfig(
                shards=str(toy_shards), run_dir=str(tmp_path / "d"), vae=str(tmp_path / "v"), preset="tiny"
            ),
            progress=False,
        )
    monkeypatch.setattr(TC, "label_counts", lambda *a, **kw: {"a": 6, "b": 6})
    stop_at = {5}
    with pytest.raises(Built):
        TC.train(TC.ClassifierTrainConfig(shards=str(toy_shards), run_dir=str(tmp_path / "c")), progress=False)
    assert len(made) == 5 and all(is_fused(o) == is_fused(made[0]) for o in made)


# --------------------------------------------------------------------------- loaders


def test_loader_settings_per_device(monkeypatch):
    import momu_models.train.loop as loop

    monkeypatch.setattr(loop, "_cpu_count", lambda: 16)
    assert loader_settings("cuda") == {
        "num_workers": 4,
        "pin_memory": True,
        "persistent_workers": False,
        "prefetch_factor": 2,
    }
    assert loader_settings("cpu") == {
        "num_workers": 0,
        "pin_memory": False,
        "persistent_workers": False,
        "prefetch_factor": None,
    }
    assert loader_settings(torch.device("cuda", 0), 0)["num_workers"] == 0  # --workers 0 stays 0
    assert loader_settings("cpu", 3)["num_workers"] == 3 and loader_settings("cpu", 3)["prefetch_factor"] == 2
    monkeypatch.setattr(loop, "_cpu_count", lambda: 2)
    assert loader_settings("cuda")["num_workers"] == 2
    with pytest.raises(TrainError, match="--workers"):
        loader_settings("cpu", -1)


def _stream(shards, workers: int, lookahead: bool = True) -> BatchStream:
    cfg = TrainArgs(shards=str(shards), batch_size=4, num_workers=workers, shuffle_buffer=8, seed=3)
    s = BatchStream(cfg, 80, 0, 1, fields=("pose", "mel"))
    s.lookahead = lookahead
    return s


def _epochs(stream: BatchStream, n: int) -> list[list[dict]]:
    """The batches of the stream's first n epochs (stream.epoch: the last batch's epoch)."""
    out: list[list[dict]] = [[] for _ in range(n)]
    while True:
        b = next(stream)
        if stream.epoch >= n:
            return out
        out[stream.epoch].append(b)


def _clips(batches: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        k: (b["pose"][i].numpy(), b["mel"][i].numpy())
        for b in batches
        for i, k in enumerate(b["key"])
        if k is not None
    }


def test_worker_batches_equal_single_process_ones(toy_shards):
    """Two worker processes read the same clips as the training process alone, each epoch;
    the lookahead (the next epoch's workers started early) changes no batch."""
    alone = _epochs(_stream(toy_shards, 0), 2)
    two = _epochs(_stream(toy_shards, 2), 2)
    two_no_lookahead = _epochs(_stream(toy_shards, 2, lookahead=False), 2)
    for e in range(2):
        a, w = _clips(alone[e]), _clips(two[e])
        assert sorted(a) == sorted(w) and len(a) == 12  # every train clip once per epoch
        assert [b["key"] for b in two[e]] == [b["key"] for b in two_no_lookahead[e]]
        for b, c in zip(two[e], two_no_lookahead[e]):
            assert torch.equal(b["mel"], c["mel"]) and torch.equal(b["pose"], c["pose"])
    assert [b["key"] for b in two[0]] != [b["key"] for b in two[1]]  # a new order each epoch


def test_loader_workers_give_the_same_clips(toy_shards):
    """momu_data's loader over the test split (no crop, no shuffle): the clips and their
    arrays are the same with 2 worker processes as without."""
    from momu_data.loader import loader

    def clips(workers):
        out = {}
        for b in loader(toy_shards, split="train", batch_size=3, num_workers=workers, fields=("pose", "mel")):
            for i, k in enumerate(b["key"]):
                n = int(b["length"][i])
                out[k] = (b["pose"][i, :n].numpy(), b["mel"][i, :, :n].numpy())
        return out

    a, w = clips(0), clips(2)
    assert sorted(a) == sorted(w) and len(a) == 12
    for k in a:
        assert np.array_equal(a[k][0], w[k][0]) and np.array_equal(a[k][1], w[k][1])
