"""The sampling loop on a GPU never waits for it (`pytest -m cuda tests/cuda`; skipped, saying so,
without one).

tests/models/test_hot_paths.py shows on the CPU that no call in the loop would read a value
back or copy host data; here CUDA itself is the judge: `torch.cuda.set_sync_debug_mode("error")`
turns every synchronising CUDA call (a read-back, a blocking host-to-device copy) into an
error, around `sample` and `joint_sample` with DDIM and DPM-Solver++, guidance, windows, padded
batches, known frames and bf16 autocast, and around the VAE decode. Also: masked_conv's two
paths agree on the GPU, where "auto" takes the F.conv1d one.
"""

import contextlib

import pytest
import torch

from momu_models.diffusion import Diffusion, joint_sample, sample
from momu_models.models.dit import DiT, make_config
from momu_models.models.vae import PRESETS as VAE_PRESETS
from momu_models.models.vae import BiCoRVAE

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@contextlib.contextmanager
def no_syncs():
    """Every synchronising CUDA call inside raises."""
    before = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(before)


@pytest.fixture(scope="module")
def dev():
    return torch.device("cuda", torch.cuda.current_device())


@pytest.fixture(scope="module")
def pair(dev):
    torch.manual_seed(0)
    return tuple(DiT(make_config("tiny", max_len=16)).eval().to(dev) for _ in range(2))


def _inputs(dev, L=40):
    g = torch.Generator().manual_seed(1)
    cond = torch.randn(2, 20, L, generator=g).to(dev)
    x_mask = torch.ones(2, L, dtype=torch.bool)
    x_mask[1, 33:] = False
    known = torch.randn(1, 20, L, generator=g).to(dev)
    km = torch.zeros(L, dtype=torch.bool)  # on the host, as a caller builds it
    km[:6] = True
    km[30:34] = True
    return cond, x_mask.to(dev), known, km


@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
@pytest.mark.parametrize("solver", ["ddim", "dpm++2m"])
def test_sampling_never_synchronises(pair, dev, solver, autocast):
    m2m, m2mo = pair
    cond, x_mask, known, km = _inputs(dev)
    d = Diffusion.from_config(m2m.config)

    def run():
        kw = dict(steps=6, guidance_scale=2.5, diffusion=d, solver=solver, autocast=autocast)
        one = sample(
            m2m, cond, generator=torch.Generator(dev).manual_seed(2), x_mask=x_mask, known=known, known_mask=km, **kw
        )
        joint = joint_sample(
            m2m,
            m2mo,
            40,
            generator=torch.Generator(dev).manual_seed(3),
            x_mask=x_mask,
            known_music=known,
            known_music_mask=km,
            **kw,
        )
        return one, joint.motion, joint.music

    ref = run()  # warm-up: cuBLAS / cuDNN handles and plans are made outside the check
    torch.cuda.synchronize(dev)
    with no_syncs():
        outs = run()
    torch.cuda.synchronize(dev)
    for a, b in zip(ref, outs):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(a, b)  # the same computation, in order
    assert torch.equal(outs[0][0][:, km.to(dev)], known[0][:, km.to(dev)])  # held frames come back exactly


def test_ddim_with_noise_and_the_vae_decode_never_synchronise(pair, dev):
    m2m, _ = pair
    torch.manual_seed(0)
    vae = BiCoRVAE(VAE_PRESETS["tiny"]).eval().to(dev)
    d = Diffusion.from_config(m2m.config)

    def run():
        with torch.no_grad():
            z = sample(m2m, None, 20, batch_size=2, steps=5, eta=1.0, diffusion=d, generator=torch.Generator(dev))
            return vae.decode_music(z, 40), vae.decode_motion(z, 40)

    run()
    torch.cuda.synchronize(dev)
    with no_syncs():
        mel, pose = run()
    torch.cuda.synchronize(dev)
    assert mel.shape == (2, 80, 40) and pose.shape == (2, 40, 14, 2) and torch.isfinite(mel).all()


def test_conv_paths_agree_on_the_gpu(dev):
    """The DiT with the paper's feed-forward kernel, forced down each convolution path: fp32
    (TF32 off) to float32 rounding, bf16 autocast to bf16 rounding; "auto" is conv1d here."""
    torch.manual_seed(0)
    m = DiT(make_config("tiny", ff_kernel=9, hidden=64, heads=4)).to(dev)
    g = torch.Generator().manual_seed(1)
    x, c = torch.randn(4, 20, 48, generator=g).to(dev), torch.randn(4, 20, 48, generator=g).to(dev)
    x_mask = torch.ones(4, 48, dtype=torch.bool, device=dev)
    x_mask[3, 30:] = False
    t = torch.tensor([0, 300, 600, 999], device=dev)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        outs = {}
        for path in ("matmul", "conv1d", "auto"):
            m.conv_path = path
            with torch.no_grad():
                full = m(x, t, c, x_mask=x_mask)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    half = m(x, t, c, x_mask=x_mask).float()
            outs[path] = full, half
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    scale = outs["matmul"][0].abs().max()
    assert (outs["matmul"][0] - outs["conv1d"][0]).abs().max() <= 1e-4 * scale
    assert (outs["matmul"][1] - outs["conv1d"][1]).abs().max() <= 3e-2 * scale
    assert torch.equal(outs["auto"][0], outs["conv1d"][0])
