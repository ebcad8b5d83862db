"""BiCoR-VAE: shapes, posterior/KL, losses, rhythmic contrast, training steps, sizes.

All on the tiny preset and small synthetic tensors; the file runs in a few seconds.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from momu_models.models.contrastive import (
    RhythmicContrast,
    RhythmicContrastConfig,
    amplitude_category,
    contrast_mask,
    downsample_mask,
    retrieval_accuracy,
    sample_windows,
    window_categories,
)
from momu_models.models.discriminator import MelDiscriminator, discriminator_loss, generator_adv_loss
from momu_models.models.parameters import count_parameters
from momu_models.models.vae import PRESETS, BiCoRVAE, DiagonalGaussian, VAEConfig
from momu_models.train.vae_steps import StageConfig, kl_loss, motion_stage_step, music_stage_step, reconstruction_loss


@pytest.fixture(autouse=True)
def _one_thread():
    # the machine's cores are shared; the tiny model gains nothing from more threads
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return BiCoRVAE(PRESETS["tiny"]).eval()


# ------------------------------------------------------------------ shapes and lengths


@pytest.mark.parametrize("T", [1, 2, 7, 64, 101, 250])
def test_latent_and_output_lengths(tiny, T):
    mel = torch.randn(2, 80, T) - 5
    pose = torch.randn(2, T, 14, 2)
    with torch.no_grad():
        qa, qm = tiny.encode_music(mel), tiny.encode_motion(pose)
        L = math.ceil(T / 2)
        assert tiny.factor == 2 and tiny.latent_length(T) == L
        assert qa.mean.shape == qa.logvar.shape == (2, 20, L)
        assert qm.mean.shape == (2, 20, L)  # motion and music latents line up
        assert tiny.decode_music(qa.mean, T).shape == (2, 80, T)
        assert tiny.decode_motion(qm.mean, T).shape == (2, T, 14, 2)
        # without a length the decoder returns every latent frame's worth of frames
        assert tiny.decode_music(qa.sample()).shape == (2, 80, 2 * L)
        assert tiny.decode_motion(qm.sample()).shape == (2, 2 * L, 14, 2)


@pytest.mark.parametrize("num_down,T,L", [(0, 7, 7), (2, 7, 2), (2, 101, 26), (3, 250, 32)])
def test_downsampling_factor_is_configurable(num_down, T, L):
    torch.manual_seed(0)
    cfg = VAEConfig(base_channels=4, norm_groups=4, num_res_blocks=1, num_down=num_down)
    m = BiCoRVAE(cfg).eval()
    assert m.factor == 2**num_down and m.latent_length(T) == L
    with torch.no_grad():
        q = m.encode_motion(torch.randn(1, T, 14, 2))
        assert q.mean.shape == (1, 20, L)
        assert m.decode_motion(q.mean, T).shape == (1, T, 14, 2)
        assert m.encode_music(torch.randn(1, 80, T)).mean.shape == (1, 20, L)


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError):
        VAEConfig(num_down=4)  # 3 levels allow at most 3 downsampling layers
    with pytest.raises(ValueError):
        VAEConfig(kernel_size=4)
    cfg = PRESETS["small"]
    assert VAEConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.latent_fps == pytest.approx(31.25)


def test_padded_batch_item_encodes_like_the_clip_alone():
    """With a mask, an item of a padded batch gets the latent (and decoding) it would get
    on its own, attention levels and deeper downsampling included."""
    torch.manual_seed(0)
    cfg = VAEConfig(base_channels=4, norm_groups=4, num_res_blocks=1, num_down=2, attn_levels=(0,), num_heads=2)
    m = BiCoRVAE(cfg).eval()
    T, Tmax = 101, 160
    mel = torch.randn(1, 80, T) * 2 - 5
    batch = torch.full((2, 80, Tmax), -11.5)
    batch[0, :, :T] = mel[0]
    batch[1] = torch.randn(80, Tmax)
    mask = torch.zeros(2, Tmax, dtype=torch.bool)
    mask[0, :T] = True
    mask[1] = True
    with torch.no_grad():
        alone = m.encode_music(mel)
        q = m.encode_music(batch, mask)
        L = m.latent_length(T)
        assert q.mask.sum(1).tolist() == [L, m.latent_length(Tmax)]
        assert torch.allclose(q.mean[0, :, :L], alone.mean[0], atol=1e-4)
        assert torch.allclose(q.logvar[0, :, :L], alone.logvar[0], atol=1e-4)
        dec = m.decode_music(q.mean, Tmax, q.mask)
        assert torch.allclose(dec[0, :, :T], m.decode_music(alone.mean, T)[0], atol=1e-3)
        # and without the mask the padding would leak in
        leaky = m.encode_music(batch).mean[0, :, :L]
        assert (leaky - alone.mean[0]).abs().max() > 1e-2


# ------------------------------------------------------------------ posterior and losses


def test_kl_of_standard_normal_is_zero():
    q = DiagonalGaussian(torch.zeros(3, 20, 5), torch.zeros(3, 20, 5))
    assert torch.equal(q.kl(), torch.zeros(3))
    assert float(kl_loss(q)) == 0.0


def test_kl_hand_computed():
    # mean 1, variance 4: KL = 0.5 * (1 + 4 - 1 - ln 4) per element
    per = 0.5 * (1 + 4 - 1 - math.log(4))
    q = DiagonalGaussian(torch.ones(2, 2, 3), torch.full((2, 2, 3), math.log(4)))
    assert torch.allclose(q.kl(), torch.full((2,), 6 * per))
    assert float(kl_loss(q)) == pytest.approx(per, rel=1e-6)
    # mean 0, variance e^-2: KL = 0.5 * (e^-2 - 1 + 2) per element
    q2 = DiagonalGaussian(torch.zeros(1, 1, 4), torch.full((1, 1, 4), -2.0))
    assert float(kl_loss(q2)) == pytest.approx(0.5 * (math.exp(-2) + 1), rel=1e-6)


def test_kl_mask_excludes_padded_frames():
    mean = torch.zeros(2, 20, 6)
    mean[:, :, 4:] = 5.0  # garbage on the padded latent frames
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[:, 4:] = False
    q = DiagonalGaussian(mean, torch.zeros_like(mean), mask)
    assert torch.equal(q.kl(), torch.zeros(2))  # the posterior's own mask
    assert float(kl_loss(q)) == 0.0
    assert float(kl_loss(q, torch.ones(2, 6, dtype=torch.bool))) > 0
    # half the elements valid with KL 12.5 each -> mean over valid = 12.5
    q_half = DiagonalGaussian(torch.full((1, 20, 6), 5.0), torch.zeros(1, 20, 6), mask[:1])
    assert float(kl_loss(q_half)) == pytest.approx(12.5)


def test_encoder_sets_latent_mask(tiny):
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.no_grad():
        q = tiny.encode_motion(torch.randn(2, 9, 14, 2), mask)
    assert q.mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2]
    assert torch.equal(tiny.latent_mask(mask), q.mask)
    assert torch.equal(downsample_mask(mask, 4), torch.tensor([[True] * 3, [True, True, False]]))


def test_reconstruction_loss_is_masked_l1():
    x = torch.zeros(2, 80, 10)
    x_hat = x.clone()
    x_hat[:, :, :6] += 0.5
    x_hat[:, :, 6:] += 100.0  # only on padded frames
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, :6] = True
    assert float(reconstruction_loss(x, x_hat, mask)) == pytest.approx(0.5)
    assert float(reconstruction_loss(x, x_hat)) == pytest.approx(0.4 * 100 + 0.6 * 0.5)
    pose = torch.zeros(2, 10, 14, 2)
    pose_hat = pose.clone()
    pose_hat[0, :6] = -2.0
    pose_hat[:, 6:] = 7.0
    # item 0: 6 frames off by 2, item 1: 6 exact frames -> mean 1.0 over 12 valid frames
    assert float(reconstruction_loss(pose, pose_hat, mask, time_dim=1)) == pytest.approx(1.0)


def test_lsgan_losses_and_discriminator_shapes():
    one, zero = [torch.ones(2, 1, 5, 3)], [torch.zeros(2, 1, 5, 3)]
    assert float(generator_adv_loss(one)) == 0.0
    assert float(generator_adv_loss(zero)) == 1.0
    assert float(discriminator_loss(one, zero)) == 0.0
    assert float(discriminator_loss(zero, one)) == 2.0
    torch.manual_seed(0)
    d = MelDiscriminator.from_config(PRESETS["tiny"])
    for T in (1, 7, 250):
        outs = d(torch.randn(2, 80, T) - 5)
        assert len(outs) == PRESETS["tiny"].disc_scales
        assert all(o.shape[:2] == (2, 1) and o.shape[-1] >= 1 for o in outs)


# ------------------------------------------------------------------ rhythmic contrast


def test_amplitude_categories_of_hand_made_windows():
    # 32 mel frames = 16 latent frames at factor 2; windows of 4 latent = 8 mel frames
    amp = torch.zeros(1, 32)
    amp[0, 0:8] = torch.linspace(0.0, 0.1, 8)  # max 0.10 -> category 0 of 4
    amp[0, 8:16] = 0.3  # 0.30 -> 1
    amp[0, 16:24] = torch.tensor([0.2] * 7 + [0.6])  # 0.60 -> 2 (a single peak decides)
    amp[0, 24:32] = 1.0  # 1.00 -> 3 (top bin closed)
    starts = torch.tensor([[0, 4, 8, 12, 2, 10]])  # 2: mel 4..11, 10: mel 20..27
    cats = window_categories(amp, starts, window=4, factor=2, num_categories=4)
    assert cats.tolist() == [[0, 1, 2, 3, 1, 3]]
    # the mask hides padded frames: a padded peak does not lift the category
    amp2 = amp.clone()
    amp2[0, 4] = 1.0
    mask = torch.ones(1, 32, dtype=torch.bool)
    mask[0, 4] = False
    assert window_categories(amp2, starts[:, :1], 4, 2, 4).item() == 3
    assert window_categories(amp2, starts[:, :1], 4, 2, 4, mask).item() == 0
    assert amplitude_category(torch.tensor([0.0, 0.249, 0.25, 0.999, 1.0]), 4).tolist() == [0, 0, 1, 3, 3]


def test_negatives_are_other_times_and_other_categories():
    starts = torch.tensor([[0, 10, 2], [0, 10, 20]])
    cats = torch.tensor([[0, 1, 1], [0, 0, 1]])
    valid = torch.ones(2, 3, dtype=torch.bool)
    allowed = contrast_mask(starts, cats, valid, window=4)
    a = allowed.tolist()
    assert all(a[i][i] for i in range(6))  # positives
    assert a[0][1]  # same pair, other time, other category
    assert not a[1][2] and not a[2][1]  # same category -> not a negative
    assert not a[0][2]  # overlapping windows (0..4 and 2..6)
    assert a[0][5] and not a[0][3] and not a[0][4]  # across pairs only other categories
    plain = contrast_mask(starts, cats, valid, window=4, rhythmic=False).tolist()
    assert plain[1][2] and plain[0][3] and not plain[0][2]  # temporal contrast keeps them
    valid[1, 2] = False
    assert not contrast_mask(starts, cats, valid, window=4)[5].any()


def test_window_sampling_is_stratified_and_in_range():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([100, 20, 3, 0])
    s = sample_windows(lengths, window=8, k=4, generator=g)
    assert s.shape == (4, 4)
    assert bool((s[0, 1:] - s[0, :-1] >= 8).all())  # 100 >= 4 * 8: no overlap
    assert bool((s[:2] + 8 <= lengths[:2, None]).all())
    assert s[2].tolist() == [0, 0, 0, 0] and s[3].tolist() == [0, 0, 0, 0]


def _stepped_amplitude(B, T_mel, levels=(0.1, 0.45, 0.95), seg=8):
    amp = torch.zeros(B, T_mel)
    for b in range(B):
        for i, t in enumerate(range(0, T_mel, seg)):
            amp[b, t : t + seg] = levels[(i + b) % len(levels)]
    return amp


def test_contrastive_loss_lower_for_aligned_pairs():
    torch.manual_seed(0)
    B, C, T = 4, 20, 64
    rc = RhythmicContrast(RhythmicContrastConfig(window=4, windows_per_pair=6, num_categories=3), C)
    motion = torch.randn(B, C, T)
    aligned = motion + 0.05 * torch.randn_like(motion)
    time_shuffled = aligned[:, :, torch.randperm(T)]
    batch_shuffled = aligned[torch.roll(torch.arange(B), 1)]
    amp = _stepped_amplitude(B, 2 * T)

    def loss(music):
        return float(rc(motion, music, amp, 2, generator=torch.Generator().manual_seed(1)))

    la, lt, lb = loss(aligned), loss(time_shuffled), loss(batch_shuffled)
    assert la < 0.5 * lt and la < 0.5 * lb
    assert la > 0  # there are negatives to contrast with


def test_contrastive_loss_gradient_and_learnable_temperature():
    torch.manual_seed(0)
    cfg = RhythmicContrastConfig(
        window=4, windows_per_pair=4, num_categories=3, learnable_temperature=True, proj_dim=8
    )
    rc = RhythmicContrast(cfg, 20)
    assert {n for n, _ in rc.named_parameters()} >= {"log_temperature", "motion_head.weight"}
    motion = torch.randn(2, 20, 32, requires_grad=True)
    loss = rc(motion, torch.randn(2, 20, 32), _stepped_amplitude(2, 64), 2, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert motion.grad.abs().sum() > 0 and rc.log_temperature.grad is not None
    assert float(rc.temperature.detach()) == pytest.approx(0.1)


def test_contrastive_loss_without_negatives_is_a_connected_zero():
    rc = RhythmicContrast(RhythmicContrastConfig(window=4, windows_per_pair=4, num_categories=2), 20)
    motion = torch.randn(2, 20, 32, requires_grad=True)
    loss = rc(motion, torch.randn(2, 20, 32), torch.ones(2, 64), 2)  # one category only
    assert float(loss.detach()) == 0.0
    loss.backward()  # still differentiable


def test_retrieval_accuracy_identical_and_random():
    torch.manual_seed(0)
    z = torch.randn(4, 20, 64)
    r = retrieval_accuracy(z, z.clone(), window=8)
    assert r.accuracy == 1.0 and r.windows == 32 and r.chance == pytest.approx(1 / 32)
    accs = [retrieval_accuracy(torch.randn(8, 20, 128), torch.randn(8, 20, 128), 8) for _ in range(5)]
    assert accs[0].chance == pytest.approx(1 / 128)
    assert sum(a.accuracy for a in accs) / 5 < 5 / 128  # about chance
    # a latent mask restricts the windows to real frames
    mask = torch.ones(4, 64, dtype=torch.bool)
    mask[1:, 20:] = False
    r2 = retrieval_accuracy(z, z, window=8, latent_mask=mask)
    assert r2.windows == 8 + 3 * 2 and r2.accuracy == 1.0


# ------------------------------------------------------------------ training steps


def _synthetic_batch(B=2, T=32):
    torch.manual_seed(1)
    t = torch.arange(T).float()
    mel = -5 + 2 * torch.sin(torch.arange(80.0)[:, None] / 7 + t[None] / 5)
    pose = 0.5 * torch.sin(torch.arange(28.0)[:, None] + t[None] / 4).T.reshape(T, 14, 2)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, T - 6 :] = False
    return {
        "mel": mel[None].repeat(B, 1, 1) + 0.1 * torch.randn(B, 80, T),
        "pose": pose[None].repeat(B, 1, 1, 1) + 0.02 * torch.randn(B, T, 14, 2),
        "amp": _stepped_amplitude(B, T, seg=4),
        "mask": mask,
    }


def _eval_rec(model, batch, music):
    with torch.no_grad():
        if music:
            q = model.encode_music(batch["mel"], batch["mask"])
            out = model.decode_music(q.mean, batch["mel"].shape[-1], q.mask)
            return float(reconstruction_loss(batch["mel"], out, batch["mask"]))
        q = model.encode_motion(batch["pose"], batch["mask"])
        out = model.decode_motion(q.mean, batch["pose"].shape[1], q.mask)
        return float(reconstruction_loss(batch["pose"], out, batch["mask"], time_dim=1))


def test_music_stage_reduces_reconstruction_loss():
    torch.manual_seed(0)
    model = BiCoRVAE(PRESETS["tiny"])
    disc = MelDiscriminator.from_config(model.cfg)
    batch = _synthetic_batch()
    opt_g = torch.optim.AdamW(model.stage_parameters(1), lr=3e-3)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=3e-3)
    motion_before = [p.clone() for p in model.motion.parameters()]
    before = _eval_rec(model, batch, music=True)
    g = torch.Generator().manual_seed(0)
    out = music_stage_step(model, disc, batch, opt_g, opt_d, StageConfig(adv_start_step=5), step=0, generator=g)
    assert "d_loss" not in out and out["g_adv"] == 0.0  # GAN warm-up: no D yet
    losses = [
        music_stage_step(model, disc, batch, opt_g, opt_d, step=i, grad_clip=1.0, generator=g) for i in range(1, 25)
    ]
    assert all(math.isfinite(v) for o in losses for v in o.values())
    assert {"loss", "rec", "kl", "g_adv", "d_loss", "grad_norm", "d_grad_norm"} <= set(losses[-1])
    assert _eval_rec(model, batch, music=True) < 0.8 * before
    assert all(torch.equal(a, b) for a, b in zip(motion_before, model.motion.parameters()))


def test_motion_stage_trains_motion_and_keeps_music_frozen():
    torch.manual_seed(0)
    contrast = RhythmicContrastConfig(window=2, windows_per_pair=4, num_categories=3)
    model = BiCoRVAE(PRESETS["tiny"], contrast)
    batch = _synthetic_batch()
    music_before = {k: v.clone() for k, v in model.music.state_dict().items()}
    # even an optimiser that (wrongly) holds the music parameters must not move them
    opt = torch.optim.AdamW(list(model.parameters()), lr=3e-3, weight_decay=0.1)
    before = _eval_rec(model, batch, music=False)
    g = torch.Generator().manual_seed(0)
    outs = [motion_stage_step(model, batch, opt, grad_clip=1.0, generator=g) for _ in range(25)]
    assert all(math.isfinite(v) for o in outs for v in o.values())
    assert outs[0]["contrast"] > 0 and outs[0]["temperature"] == pytest.approx(0.1)
    assert _eval_rec(model, batch, music=False) < 0.8 * before
    first = sum(o["loss"] for o in outs[:3]) / 3
    last = sum(o["loss"] for o in outs[-3:]) / 3
    assert last < 0.8 * first
    # the contrastive term itself goes down: motion windows move towards their music windows
    assert sum(o["contrast"] for o in outs[-3:]) < sum(o["contrast"] for o in outs[:3])
    after = model.music.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in music_before.items())


def test_steps_run_under_bf16_autocast():
    torch.manual_seed(0)
    model = BiCoRVAE(PRESETS["tiny"], RhythmicContrastConfig(window=2, windows_per_pair=2, num_categories=3))
    disc = MelDiscriminator.from_config(model.cfg)
    batch = _synthetic_batch(T=16)
    o1 = music_stage_step(
        model,
        disc,
        batch,
        torch.optim.AdamW(model.stage_parameters(1)),
        torch.optim.AdamW(disc.parameters()),
        autocast=torch.bfloat16,
    )
    o2 = motion_stage_step(model, batch, torch.optim.AdamW(model.stage_parameters(2)), autocast=torch.bfloat16)
    assert all(math.isfinite(v) for v in list(o1.values()) + list(o2.values()))


# ------------------------------------------------------------------ sizes


def test_preset_parameter_counts():
    tiny, small = BiCoRVAE(PRESETS["tiny"]), BiCoRVAE(PRESETS["small"])
    assert 1_000 <= count_parameters(tiny) <= 100_000
    assert 500_000 <= count_parameters(small) <= 3_000_000
    with torch.device("meta"):  # no memory, no init: instant
        paper = BiCoRVAE(PRESETS["paper"])
    n = count_parameters(paper)
    assert 200e6 <= n <= 226e6  # the paper's 213M, +-6%
    # the counts docs/bicor_vae.md states
    assert (count_parameters(tiny), count_parameters(small), n) == (61_860, 1_009_116, 212_755_868)
    # the two VAEs are about the same size; the music one is a bit larger (80 vs 28 channels)
    assert count_parameters(paper.music) > count_parameters(paper.motion)


def test_replicate_padding_decodes_a_still_latent_to_a_still_pose():
    """Sequence edges (issue 12): with replicate padding a latent that does not change decodes
    to a pose that does not move, up to the first and last frame; zero padding (the earlier
    default, kept for old checkpoints) moves the edges, and its attention carries that inward."""
    speeds = {}
    for padding in ("zeros", "replicate"):
        torch.manual_seed(0)
        vae = BiCoRVAE(dataclasses.replace(PRESETS["tiny"], conv_padding=padding)).eval()
        z = torch.randn(1, vae.cfg.latent_channels, 1).expand(-1, -1, 50)
        with torch.no_grad():
            pose = vae.decode_motion(z, 100)[0].numpy()
        speeds[padding] = np.linalg.norm(np.diff(pose, axis=0), axis=-1).mean(axis=-1)
    assert speeds["replicate"].max() < 1e-5
    zeros = speeds["zeros"]
    assert zeros[:3].mean() > 3 * zeros[40:60].mean() and zeros[-3:].mean() > 3 * zeros[40:60].mean()


def test_configs_saved_before_conv_padding_load_as_zero_padded():
    cfg = PRESETS["tiny"].to_dict()
    del cfg["conv_padding"]
    assert VAEConfig.from_dict(cfg).conv_padding == "zeros"
    assert PRESETS["tiny"].conv_padding == "replicate"
    assert VAEConfig.from_dict(PRESETS["tiny"].to_dict()) == PRESETS["tiny"]
