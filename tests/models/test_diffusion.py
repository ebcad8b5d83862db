"""Latent diffusion: the DiT denoiser, DDIM, guidance, cross-guidance, long sequences,
length parsing and bone correction. Everything runs on tiny tensors (the file takes seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from momu_data.skeleton import BONES, J, bone_lengths
from momu_models.diffusion import blend_overlap, cross_guidance_start, guided_eps, joint_sample, sample, window_starts
from momu_models.diffusion.process import Diffusion, latent_scale
from momu_models.generate.length import parse_length
from momu_models.generate.postprocess import TREE, correct_bones, finish_motion, mean_bone_lengths, smooth_motion
from momu_models.models.dit import PRESETS, DiT, DiTConfig, make_config, masked_conv, segment_taps

torch.set_num_threads(1)


def tiny(**kw) -> DiT:
    torch.manual_seed(0)
    return DiT(make_config("tiny", **kw)).eval()


# --------------------------------------------------------------------------- DiT


@pytest.mark.parametrize("L", [1, 7, 16, 33])
def test_dit_shapes(L):
    m = tiny()
    x, c = torch.randn(2, 20, L), torch.randn(2, 20, L)
    out = m(x, torch.tensor([3, 900]), c)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # no condition = the null condition for every sample
    assert m(x, torch.tensor([3, 900]), None).shape == x.shape


@pytest.mark.parametrize("positions", ["offset", "aligned"])
def test_dit_padding_does_not_leak(positions):
    m = tiny(positions=positions)
    with torch.no_grad():  # exercise the frame-aligned condition path too (zero at init)
        m.c_to_x.weight.normal_(0, 0.3)
    g = torch.Generator().manual_seed(1)
    L, P = 13, 6
    x, c = torch.randn(2, 20, L, generator=g), torch.randn(2, 20, L, generator=g)
    t = torch.tensor([10, 700])
    ref = m(x, t, c)
    # append garbage frames, masked out: the valid outputs must not change
    xp = torch.cat([x, 100 * torch.randn(2, 20, P, generator=g)], -1)
    cp = torch.cat([c, -50 * torch.randn(2, 20, P, generator=g)], -1)
    mask = torch.arange(L + P) < L
    mask = mask.expand(2, -1)
    out = m(xp, t, cp, x_mask=mask)
    torch.testing.assert_close(out[..., :L], ref, atol=1e-5, rtol=1e-4)
    assert (out[..., L:] == 0).all()
    # a mixed batch (odd lengths 5 and 13) equals each sample run alone
    lens = torch.tensor([5, 13])
    mask = torch.arange(L)[None] < lens[:, None]
    out = m(x, t, c, x_mask=mask)
    alone = m(x[:1, :, :5], t[:1], c[:1, :, :5])
    torch.testing.assert_close(out[:1, :, :5], alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1:], ref[1:], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_masked_conv_is_conv1d_per_segment(kernel):
    """The im2col convolution of the DiT equals torch's Conv1d run on each segment alone
    (zero padding at its ends), with padded tokens zeroed, values and gradients."""
    torch.manual_seed(0)
    conv = nn.Conv1d(6, 10, kernel, padding=kernel // 2)
    segments = (1, 7, 9)
    h = torch.randn(2, sum(segments), 6, requires_grad=True)
    keep = torch.ones(2, sum(segments), dtype=torch.bool)
    keep[1, 5:8] = False  # padding at the end of the second segment of sample 1
    ref = torch.cat(
        [
            conv((hs * ks[..., None]).transpose(1, 2)).transpose(1, 2)
            for hs, ks in zip(h.split(segments, 1), keep.split(segments, 1))
        ],
        dim=1,
    )
    out = masked_conv(conv, h, keep, segment_taps(segments, kernel))
    assert torch.allclose(out, ref, atol=1e-5)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), h)
    (g_out,) = torch.autograd.grad(out.square().sum(), h)
    assert torch.allclose(g_out, g_ref, atol=1e-4)
    # one segment: the plain 'same' convolution
    whole = masked_conv(conv, h, torch.ones_like(keep))
    assert torch.allclose(whole, conv(h.transpose(1, 2)).transpose(1, 2), atol=1e-5)


def test_dit_condition_and_null_embedding():
    m = tiny()
    x, c = torch.randn(2, 20, 9), torch.randn(2, 20, 9)
    t = torch.tensor([500, 500])
    cond, uncond = m(x, t, c), m(x, t, None)
    assert not torch.allclose(cond, uncond, atol=1e-4)  # the condition is used
    # dropping the condition of sample 1 only = the null embedding for that sample
    mixed = m(x, t, c, drop_cond=torch.tensor([False, True]))
    torch.testing.assert_close(mixed[0], cond[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mixed[1], uncond[1], atol=1e-5, rtol=1e-4)
    # the condition is used frame-aligned: changing only condition frame 8 changes output frame 8
    c2 = c.clone()
    c2[:, :, 8] += 5
    assert not torch.allclose(m(x, t, c2)[..., 8], cond[..., 8], atol=1e-4)
    with pytest.raises(ValueError, match="max_len"):
        m(torch.randn(1, 20, m.config.max_len + 1), torch.tensor([1]))


def test_dit_position_layouts():
    off, al = tiny(), tiny(positions="aligned")
    M = off.config.max_len
    assert off.pos.shape[0] == 1 + 2 * M and off.segment is None
    assert al.pos.shape[0] == 1 + M and al.segment.shape == (3, al.config.hidden)
    with pytest.raises(ValueError, match="positions"):
        tiny(positions="relative")


def test_dit_frame_cond_starts_as_the_concatenation():
    plain, fc = tiny(frame_cond=False), tiny(frame_cond=True)
    state = plain.state_dict()
    missing, unexpected = fc.load_state_dict(state, strict=False)
    assert sorted(missing) == ["c_to_x.bias", "c_to_x.weight"] and not unexpected
    g = torch.Generator().manual_seed(3)
    x, c = torch.randn(2, 20, 11, generator=g), torch.randn(2, 20, 11, generator=g)
    t = torch.tensor([40, 800])
    # zero-initialised: the same function as the model without it, so old weights fine-tune
    torch.testing.assert_close(fc(x, t, c), plain(x, t, c))
    with torch.no_grad():
        fc.c_to_x.weight.normal_(0, 0.5)
    # now condition frame 4 reaches latent frame 4 directly; in a 0-block model only that way
    shallow = DiT(make_config("tiny", depth=0, frame_cond=True)).eval()
    with torch.no_grad():
        shallow.c_to_x.weight.normal_(0, 0.5)
    c2 = c.clone()
    c2[:, :, 4] += 3
    diff = (shallow(x, t, c2) - shallow(x, t, c)).abs().sum((0, 1))
    # out_proj (kernel 5) spreads it to frames 2..6 only
    assert (diff[2:7] > 1e-4).all() and (diff[:2] == 0).all() and (diff[7:] == 0).all()
    # without it, a model with no attention block cannot see the condition at all
    flat = DiT(make_config("tiny", depth=0, frame_cond=False)).eval()
    torch.testing.assert_close(flat(x, t, c2), flat(x, t, c))
    with pytest.raises(ValueError, match="as long as the latent"):
        fc(x, t, c[..., :7])


def test_presets():
    assert PRESETS["paper"] == DiTConfig()
    p = PRESETS["paper"]
    assert (p.cond_dim, p.in_channels, p.hidden, p.heads, p.depth, p.out_kernel, p.num_timesteps) == (
        1024,
        20,
        576,
        8,
        4,
        5,
        1000,
    )
    assert p.max_len >= 30 * 31.25  # 30 s at the VAE's 31.25 latent frames/s
    # the paper's plain concatenation; the CPU presets add the frame-aligned condition
    assert not p.frame_cond and PRESETS["small"].frame_cond and PRESETS["tiny"].frame_cond
    assert sum(q.numel() for q in DiT("tiny").parameters()) < 100_000
    assert DiTConfig.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown DiT preset"):
        make_config("huge")


def test_training_loss_masks_and_backprops():
    m = DiT(make_config("tiny"))
    d = Diffusion.from_config(m.config)
    g = torch.Generator().manual_seed(0)
    x0, c = torch.randn(3, 20, 12), torch.randn(3, 20, 12)
    mask = torch.arange(12)[None] < torch.tensor([12, 7, 3])[:, None]
    loss = d.training_loss(m, x0, c, mask, p_uncond=0.5, generator=g)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert m.null_cond.grad is not None and m.x_embed.weight.grad.abs().sum() > 0
    # the same generator state gives the same loss; padded frames' content is irrelevant
    x0p = torch.where(mask[:, None], x0, torch.full_like(x0, 1e3))
    l1 = d.training_loss(m, x0, c, mask, 0.5, torch.Generator().manual_seed(5))
    l2 = d.training_loss(m, x0p, c, mask, 0.5, torch.Generator().manual_seed(5))
    torch.testing.assert_close(l1, l2)


# --------------------------------------------------------------------------- diffusion


def test_schedule_and_q_sample():
    d = Diffusion()
    b = d.betas
    assert b[0].item() == pytest.approx(0.00085) and b[-1].item() == pytest.approx(0.012)
    assert torch.all(d.alphas_cumprod[1:] < d.alphas_cumprod[:-1])
    x0, noise = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    t = torch.tensor([0, 999])
    xt = d.q_sample(x0, t, noise)
    a = d.alphas_cumprod[t].float()[:, None, None]
    torch.testing.assert_close(xt, a.sqrt() * x0 + (1 - a).sqrt() * noise)
    torch.testing.assert_close(d.predict_x0(xt, t, noise), x0, atol=1e-4, rtol=1e-4)
    lin = Diffusion(beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    assert lin.betas[0].item() == pytest.approx(1e-4) and lin.betas[-1].item() == pytest.approx(0.02)


def test_latent_scale():
    z = 4 * torch.randn(8, 20, 50, generator=torch.Generator().manual_seed(0))
    mask = torch.arange(50)[None] < torch.tensor([50, 20] * 4)[:, None]
    assert latent_scale(z) == pytest.approx(0.25, rel=0.03)
    z = torch.where(mask[:, None], z, torch.full_like(z, 1e4))  # padding must not count
    assert latent_scale(z, mask) == pytest.approx(0.25, rel=0.03)


def test_ddim_timesteps():
    d = Diffusion()
    ts = d.ddim_timesteps(50)
    assert len(ts) == 50 and ts[0] == 999 and ts[1] == 979 and ts[-1] == 19
    lead = d.ddim_timesteps(50, "leading")
    assert lead[0] == 981 and lead[-1] == 1
    with pytest.raises(ValueError):
        d.ddim_timesteps(0)


class GaussianEps(nn.Module):
    """The exact noise predictor when every latent value is N(mu, sigma^2), independently."""

    def __init__(self, diffusion: Diffusion, mu: float, sigma: float, max_len: int = 64):
        super().__init__()
        self.d, self.mu, self.sigma = diffusion, mu, sigma
        self.config = DiTConfig(max_len=max_len, cond_channels=4, out_channels=4)

    def forward(self, x_t, t, cond=None, cond_mask=None, x_mask=None, drop_cond=None):
        a = self.d.abar(t, x_t)
        return (x_t - a.sqrt() * self.mu) * (1 - a).sqrt() / (a * self.sigma**2 + 1 - a)


def test_ddim_closed_form_gaussian():
    d = Diffusion()
    mu, sigma = 1.0, 0.5
    model = GaussianEps(d, mu, sigma)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(512, 4, 16, generator=g)

    def eps_fn(x, t, i):
        return model(x, torch.full((x.shape[0],), t))

    x = d.ddim_sample(eps_fn, x_T.shape, steps=50, x_T=x_T)
    # 1000 -> 50 deterministic DDIM steps map N(0, 1) to ~N(mu, sigma^2). The tolerance covers
    # sampling error (~0.01), x_T ~ N(0, 1) instead of the true q(x_T) (mean off by
    # sigma * sqrt(abar_T) * mu ~ 0.034) and 50-step discretisation (std ~6% low).
    assert x.mean().item() == pytest.approx(mu, abs=0.06)
    assert x.std().item() == pytest.approx(sigma, abs=0.04)
    # and DDIM converges to the exact probability-flow map of a Gaussian as steps grow:
    # x_0 = mu + sigma * (x_T - sqrt(abar_T) mu) / sqrt(abar_T sigma^2 + 1 - abar_T)
    aT = d.alphas_cumprod[-1].item()
    exact = mu + sigma * (x_T - aT**0.5 * mu) / (aT * sigma**2 + 1 - aT) ** 0.5
    err50 = (x - exact).abs().max().item()
    x1000 = d.ddim_sample(eps_fn, x_T.shape, steps=1000, x_T=x_T[:64])
    err1000 = (x1000 - exact[:64]).abs().max().item()
    assert err1000 < 0.015 and err1000 < err50 / 5
    # eta = 1 (DDPM-like) is stochastic and lands on the same distribution; with 50 steps its
    # std is ~10% low (0.45; 0.496 with 1000 steps), a property of few-step ancestral sampling
    xs = d.ddim_sample(eps_fn, x_T.shape, steps=50, eta=1.0, generator=g)
    assert xs.mean().item() == pytest.approx(mu, abs=0.03)
    assert xs.std().item() == pytest.approx(sigma, abs=0.07)


def test_dpm_solver_converges_faster_than_ddim():
    """DPM-Solver++(2M) and DDIM on the exact eps of a Gaussian. Both end by denoising from
    the last timestep t_S (the exact answer for that: E[x_0 | x_{t_S}] at the exact
    probability-flow value of x_{t_S}); on the way there DPM++ is several times closer than
    DDIM with the same steps (docs/diffusion.md "Solvers")."""
    from momu_models.diffusion.process import Solver

    d = Diffusion()
    mu, sigma = 1.0, 0.5
    model = GaussianEps(d, mu, sigma)
    x_T = torch.randn(256, 4, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    aT = d.alphas_cumprod[-1].item()
    z = (x_T - aT**0.5 * mu) / (aT * sigma**2 + 1 - aT) ** 0.5  # the flow's invariant

    def error(kind, steps):
        ts = d.ddim_timesteps(steps)
        x, solver = x_T.clone(), Solver(d, kind)
        for i, t in enumerate(ts):
            x, x0 = solver.step(x, t, ts[i + 1] if i + 1 < len(ts) else -1, model(x, torch.full((256,), t)))
        assert torch.equal(x, x0)  # the last step ends at the clean estimate
        a = d.alphas_cumprod[ts[-1]].item()
        x_s = a**0.5 * mu + (a * sigma**2 + 1 - a) ** 0.5 * z
        exact = mu + sigma**2 * a**0.5 / (a * sigma**2 + 1 - a) * (x_s - a**0.5 * mu)
        return (x - exact).abs().mean().item()

    for n in (10, 15, 25):
        ddim, dpm = error("ddim", n), error("dpm++2m", n)
        assert dpm < ddim / 5, (n, dpm, ddim)  # measured 10x (10 steps) to 90x (15)
    with pytest.raises(ValueError, match="unknown solver"):
        Solver(d, "euler")
    with pytest.raises(ValueError, match="eta"):
        Solver(d, "dpm++2m", eta=1.0)


# --------------------------------------------------------------------------- guidance


class Recorder(nn.Module):
    """A fake denoiser that records every call: eps = 0.1 x_t + 0.3 cond (null: - 0.2)."""

    def __init__(self, name: str, max_len: int = 64):
        super().__init__()
        self.name, self.calls = name, []
        self.config = DiTConfig(max_len=max_len, in_channels=4, cond_channels=4, out_channels=4)

    def forward(self, x_t, t, cond=None, cond_mask=None, x_mask=None, drop_cond=None):
        B = x_t.shape[0]
        null = (
            torch.ones(B, dtype=torch.bool)
            if cond is None
            else (torch.zeros(B, dtype=torch.bool) if drop_cond is None else drop_cond.bool())
        )
        self.calls.append(dict(t=int(t[0]), null=null.clone(), cond=None if cond is None else cond.clone()))
        c = torch.zeros_like(x_t) - 0.2 if cond is None else torch.where(null[:, None, None], -0.2, 0.3 * cond)
        return 0.1 * x_t + c


def test_cfg_scales():
    m = tiny()
    x, c = torch.randn(2, 20, 10), torch.randn(2, 20, 10)
    t = torch.tensor([400, 400])
    e_c = m(x, t, c)
    e_u = m(x, t, c, drop_cond=torch.ones(2, dtype=torch.bool))
    torch.testing.assert_close(guided_eps(m, x, 400, c, 1.0), e_c)
    torch.testing.assert_close(guided_eps(m, x, 400, c, 0.0), e_u)
    # the general (batched cond + null) path follows eq. 7
    torch.testing.assert_close(guided_eps(m, x, 400, c, 2.5), e_u + 2.5 * (e_c - e_u), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(guided_eps(m, x, 400, None, 2.5), m(x, t, None))


def test_cross_guidance_switch():
    m2mu, mu2mo = Recorder("motion2music"), Recorder("music2motion")
    steps = 50
    assert cross_guidance_start(steps, 0.5) == 25
    res = joint_sample(
        m2mu,
        mu2mo,
        length=12,
        steps=steps,
        guidance_scale=2.0,
        generator=torch.Generator().manual_seed(0),
        cross_start=0.5,
        batch_size=2,
        return_trace=True,
    )
    assert res.motion.shape == res.music.shape == (2, 4, 12)
    assert [e["conditioned"] for e in res.trace] == [False] * 25 + [True] * 25
    ts = Diffusion().ddim_timesteps(steps)
    for model, other in ((m2mu, "x0_motion"), (mu2mo, "x0_music")):
        assert len(model.calls) == steps  # one forward per step (cond + null batched together)
        for i, call in enumerate(model.calls):
            assert call["t"] == ts[i]
            if i < 25:
                assert call["null"].all() and call["cond"] is None
            else:
                # the batched CFG pass: first half conditioned, second half null
                assert call["null"].tolist() == [False, False, True, True]
                # conditioned on the OTHER model's clean-latent estimate from the step before
                torch.testing.assert_close(call["cond"][:2], res.trace[i - 1][other])
    # the conditioning changes the outcome vs never switching on
    m2mu_b, mu2mo_b = Recorder("a"), Recorder("b")
    ind = joint_sample(
        m2mu_b,
        mu2mo_b,
        length=12,
        steps=steps,
        generator=torch.Generator().manual_seed(0),
        cross_start=1.0,
        batch_size=2,
    )
    assert not any(e["conditioned"] for e in ind.trace)
    assert not torch.allclose(ind.music, res.music)
    with pytest.raises(ValueError):
        cross_guidance_start(50, 1.5)
    assert cross_guidance_start(50, 0.0) == 1  # step 0 has no estimate to condition on yet


# --------------------------------------------------------------------------- long sequences


def test_window_starts():
    assert window_starts(40, 48, 12) == [0]
    assert window_starts(100, 48, 12) == [0, 36, 52]  # last window moved back to end at 100
    assert window_starts(84, 48, 12) == [0, 36]
    with pytest.raises(ValueError):
        window_starts(100, 48, 48)


def test_sliding_window_single_direction():
    d = Diffusion()
    model = GaussianEps(d, 0.0, 0.5, max_len=32)
    B, N, overlap = 3, 90, 8
    cond = torch.zeros(B, 4, N)  # ignored by the Gaussian model
    windows = []
    out = sample(
        model,
        cond,
        steps=50,
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(0),
        overlap=overlap,
        on_window=lambda s, e, n, res: windows.append((s, e, n, res[0])),
    )
    assert out.shape == (B, 4, N) and torch.isfinite(out).all()
    assert [(s, e, n) for s, e, n, _ in windows] == [(0, 32, 0), (24, 56, 8), (48, 80, 8), (58, 90, 22)]
    # Each window is inpainted to agree with what came before it over the overlap: the model's
    # own result there is close to the frames already generated (expected mean |difference|
    # 0.10 for this per-frame model, whose last step t = 19 only sees the known frames through
    # abar = 0.98 of signal; two independent draws differ by ~0.56); the output crossfades them.
    expected = torch.zeros(B, 4, N)
    for s, e, n, res in windows:
        if n:
            assert (res[..., :n] - expected[..., s : s + n]).abs().mean() < 0.15
            expected[..., s : s + n] = blend_overlap(expected[..., s : s + n], res[..., :n], "crossfade")
        expected[..., s + n : e] = res[..., n:]
    torch.testing.assert_close(out, expected)
    # the baseline: without the constraint, the same frames of an independent draw disagree
    free = sample(model, cond[..., :32], steps=50, generator=torch.Generator().manual_seed(1))
    assert (free[..., 24:32] - windows[0][3][..., 24:32]).abs().mean() > 0.3


def test_sliding_window_real_dit_and_joint():
    m = tiny(max_len=16)
    cond = torch.randn(2, 20, 40)
    mask = torch.arange(40)[None] < torch.tensor([40, 29])[:, None]
    out = sample(m, cond, steps=4, guidance_scale=2.0, generator=torch.Generator().manual_seed(0), x_mask=mask)
    assert out.shape == (2, 20, 40) and torch.isfinite(out).all()
    assert (out[1, :, 29:] == 0).all()
    res = joint_sample(
        m,
        tiny(max_len=16),
        length=37,
        steps=4,
        generator=torch.Generator().manual_seed(0),
        batch_size=2,
        overlap=4,
        blend="cut",
    )
    assert res.motion.shape == res.music.shape == (2, 20, 37)
    # windows at 0, 12, 21: 3 windows x 4 steps, switching at step 2 in each
    assert [(e["window"], e["conditioned"]) for e in res.trace] == [(w, i >= 2) for w in range(3) for i in range(4)]


def test_joint_overlap_constrains_both_modalities():
    d = Diffusion()
    a, b = GaussianEps(d, 0.0, 0.5, max_len=24), GaussianEps(d, 0.0, 0.5, max_len=24)
    windows = []
    res = joint_sample(
        a,
        b,
        length=50,
        steps=50,
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(0),
        batch_size=4,
        overlap=6,
        blend="cut",
        on_window=lambda s, e, n, r: windows.append((s, n, r)),
    )
    assert res.motion.shape == (4, 4, 50)
    prev_mo, prev_mu = windows[0][2]
    for s, n, (mo, mu) in windows[1:2]:
        assert (mo[..., :n] - prev_mo[..., s : s + n]).abs().mean() < 0.15
        assert (mu[..., :n] - prev_mu[..., s : s + n]).abs().mean() < 0.15
        # "cut": previous frames up to the middle of the overlap, the new window's after
        torch.testing.assert_close(res.motion[..., s : s + n // 2], prev_mo[..., s : s + n // 2])
        torch.testing.assert_close(res.music[..., s + n // 2 : s + n], mu[..., n // 2 : n])


# --------------------------------------------------------------------------- lengths


@pytest.mark.parametrize(
    "spec,frames",
    [
        ("750", 750),
        ("750f", 750),
        (" 12 F ", 12),
        (40, 40),
        ("30s", 938),
        ("2.5s", 78),
        ("1:30", 2813),
        ("0:07.5", 234),
        ("01:00", 1875),
        ("1:00:00", 112500),
    ],
)
def test_parse_length(spec, frames):
    assert parse_length(spec, 31.25) == frames


@pytest.mark.parametrize(
    "spec,msg",
    [
        ("", "empty"),
        ("abc", "cannot parse"),
        ("7.5", "whole"),
        ("1:75", "below 60"),
        ("0", "at least 1"),
        ("0s", "under one frame"),
        ("-3s", "cannot parse"),
        (0, "at least 1"),
        (1.5, "string or an int"),
        ("10ms", "cannot parse"),
        ("1:60:00", "below 60"),
    ],
)
def test_parse_length_errors(spec, msg):
    with pytest.raises(ValueError, match=msg):
        parse_length(spec, 31.25)


def test_parse_length_fps():
    with pytest.raises(ValueError, match="fps"):
        parse_length("3s", 0)
    assert parse_length("3s", 62.5) == 188  # 187.5 frames: halves round up
    assert parse_length("1.5s", 25) == 38  # 37.5


# --------------------------------------------------------------------------- bones


def skeleton() -> np.ndarray:
    """A hand-made standing pose, [14, 2] (x right, y down)."""
    p = np.zeros((14, 2))
    p[J["neck"]] = (0, 0)
    p[J["nose"]] = (0, -1)
    p[J["right_shoulder"]], p[J["left_shoulder"]] = (-1, 0), (1, 0)
    p[J["right_elbow"]], p[J["left_elbow"]] = (-1, 1.5), (1, 1.5)
    p[J["right_wrist"]], p[J["left_wrist"]] = (-1, 2.5), (1, 2.5)
    p[J["right_hip"]], p[J["left_hip"]] = (-0.5, 3), (0.5, 3)
    p[J["right_knee"]], p[J["left_knee"]] = (-0.5, 4.5), (0.5, 4.5)
    p[J["right_ankle"]], p[J["left_ankle"]] = (-0.5, 6), (0.5, 6)
    return p


def test_mean_bone_lengths():
    p = skeleton()
    poses = np.stack([p, p * 2])[None]  # [1, 2, 14, 2]
    torch.testing.assert_close(torch.from_numpy(mean_bone_lengths(poses)), torch.from_numpy(1.5 * bone_lengths(p)))
    # a list of sequences of different lengths, with a missing joint left out of the mean
    q = np.stack([p, p, p])
    q[1, J["nose"]] = np.nan
    m = mean_bone_lengths([p[None], q])
    np.testing.assert_allclose(m, bone_lengths(p))


def test_correct_bones():
    p = skeleton()
    mean = bone_lengths(p)
    # breadth-first from the neck: its five children first
    assert [c for _, c, _ in TREE][:5] == [
        J[n] for n in ("nose", "right_shoulder", "left_shoulder", "right_hip", "left_hip")
    ]
    bad = p.copy()
    # right upper arm (shoulder -> elbow) stretched to 2x: the elbow and the wrist below it are displaced
    arm = bad[J["right_elbow"]] - bad[J["right_shoulder"]]
    bad[J["right_elbow"]] += arm
    bad[J["right_wrist"]] += arm
    # left forearm stretched by 1.25x: within the 1.3x threshold, untouched
    bad[J["left_wrist"]] = bad[J["left_elbow"]] + 1.25 * (p[J["left_wrist"]] - p[J["left_elbow"]])
    # nose pushed out to 3x the neck-nose length (BONES list it nose -> neck; the neck is the root)
    bad[J["nose"]] = (0, -3)
    fixed = correct_bones(bad, mean)
    lengths = bone_lengths(fixed)
    b_upper = BONES.index((J["right_shoulder"], J["right_elbow"]))
    b_fore = BONES.index((J["left_elbow"], J["left_wrist"]))
    assert lengths[b_upper] == pytest.approx(mean[b_upper])
    assert lengths[b_fore] == pytest.approx(1.25 * mean[b_fore])
    # the child (wrist) moved with its corrected parent (elbow), keeping its own bone
    np.testing.assert_allclose(fixed[J["right_elbow"]], p[J["right_elbow"]])
    np.testing.assert_allclose(fixed[J["right_wrist"]], p[J["right_wrist"]])
    np.testing.assert_allclose(fixed[J["nose"]], p[J["nose"]])  # shortened along its direction
    untouched = [J[n] for n in ("neck", "left_shoulder", "left_elbow", "left_wrist", "right_hip", "left_ankle")]
    np.testing.assert_allclose(fixed[untouched], bad[untouched])
    # sequences [T, 14, 2]: frame by frame; a frame within the threshold is unchanged
    seq = np.stack([p, bad]).astype(np.float32)
    fs = correct_bones(seq, mean)
    assert fs.dtype == np.float32
    np.testing.assert_allclose(fs[0], p, atol=1e-6)
    np.testing.assert_allclose(fs[1], fixed, atol=1e-5)


def test_smooth_motion_keeps_dance_removes_jitter():
    fps = 62.5
    t = np.arange(500) / fps
    slow = np.sin(2 * np.pi * 2.0 * t)  # a 2 Hz swing: dance tempo
    jitter = 0.05 * (-1.0) ** np.arange(500)  # frame-to-frame alternation (31.25 Hz)
    pose = np.zeros((500, 14, 2), np.float32)
    pose[:, :, 0] = (slow + jitter)[:, None]
    out = smooth_motion(pose, fps, 0.032)
    assert out.shape == pose.shape and out.dtype == np.float32
    mid = slice(50, 450)
    # 2 Hz amplitude kept within 7 % (Gaussian gain exp(-(2 pi f sigma)^2 / 2) = 0.92 at 2 Hz)
    gain = np.abs(np.fft.rfft(out[mid, 0, 0])).max() / np.abs(np.fft.rfft(slow[mid])).max()
    assert 0.9 < gain <= 1.0
    resid = out[mid, 0, 0] - smooth_motion(slow[:, None, None].repeat(14, 1).repeat(2, 2), fps)[mid, 0, 0]
    assert np.abs(resid).max() < 0.05 * 0.01  # the jitter is attenuated by more than 99 %
    np.testing.assert_array_equal(smooth_motion(pose, fps, 0.0), pose)
    # a constant pose stays put at the edges (held, not faded to zero)
    np.testing.assert_allclose(smooth_motion(np.ones((20, 14, 2)), fps), 1.0, rtol=1e-6)


def test_finish_motion_corrects_then_smooths():
    """A forearm that stretches past 1.3 x its mean and back: correcting after smoothing
    leaves a jump where the rule switches on; correcting first and smoothing after does not,
    and keeps every bone within the bound."""
    fps, T = 62.5, 200
    base = np.zeros((14, 2))
    for j, (x, y) in {
        "nose": (0, -1.2),
        "neck": (0, -1),
        "right_shoulder": (-0.4, -1),
        "left_shoulder": (0.4, -1),
        "right_elbow": (-0.7, -0.5),
        "left_elbow": (0.7, -0.5),
        "right_wrist": (-0.8, 0),
        "left_wrist": (0.8, 0),
        "right_hip": (-0.2, 0),
        "left_hip": (0.2, 0),
        "right_knee": (-0.2, 0.5),
        "left_knee": (0.2, 0.5),
        "right_ankle": (-0.2, 1),
        "left_ankle": (0.2, 1),
    }.items():
        base[J[j]] = (x, y)
    pose = np.repeat(base[None], T, 0)
    mean = bone_lengths(base)
    # the left forearm grows smoothly to 1.5 x and back (elbow -> wrist direction kept)
    stretch = 1.0 + 0.5 * np.sin(np.pi * np.arange(T) / (T - 1))
    v = base[J["left_wrist"]] - base[J["left_elbow"]]
    pose[:, J["left_wrist"]] = base[J["left_elbow"]] + stretch[:, None] * v
    speed = lambda p: np.abs(np.diff(p, axis=0)).max()  # noqa: E731
    smooth_then_correct = correct_bones(smooth_motion(pose, fps), mean)
    out = finish_motion(pose, fps, mean)
    assert speed(smooth_then_correct) > 0.1  # the snap: 0.3 x 0.51 in one frame
    assert speed(out) < 0.25 * speed(smooth_then_correct)
    b = np.array([bone_lengths(f) for f in out])
    assert (b <= 1.3 * mean + 1e-6).all()
    # no mean lengths: smoothing only; sigma 0: correction only
    np.testing.assert_allclose(finish_motion(pose, fps), smooth_motion(pose, fps))
    np.testing.assert_allclose(finish_motion(pose, fps, mean, 0.0), correct_bones(pose, mean), atol=1e-6)
