"""Temporal editing (docs/editing.md): a dance or a music continued, parts of it kept, keyframes
in-betweened, a range of both regenerated. On the session's tiny checkpoints (`runs`, conftest.py):
the kept frames come back exactly (paste) or within the VAE's reconstruction error (latent only),
no jolt at the seams, the same seed gives the same output."""

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from momu_models.cli.generate import generate
from momu_models.diffusion import joint_sample, sample
from momu_models.evaluate.metrics import edge_speed_ratios, speed_profile
from momu_models.generate import editing
from momu_models.generate.pipeline import Edit, GenerateError, MoMuPipeline
from momu_models.generate.postprocess import finish_motion
from momu_models.models.dit import load_diffusion

FPS = 62.5


@pytest.fixture(scope="module")
def pipe(runs):
    return MoMuPipeline.from_pretrained(runs, device="cpu", vocoder="griffinlim")


@pytest.fixture(scope="module")
def clip(toy_shards):
    """A held-out toy clip: pose [250, 14, 2] and its 16 kHz click track (4 s)."""
    from media import click_track

    from momu_data.loader import loader

    batch = next(iter(loader(toy_shards, split="val", batch_size=1)))
    T = int(batch["mask"][0].sum())
    y, _ = click_track(T / FPS, 120)
    return batch["pose"][0, :T].numpy(), y


def recon_motion(pipe, pose):
    """The VAE's round trip of a dance, finished as generated dances are (bones, smoothing)."""
    m = pipe.models
    with torch.no_grad():
        z = m.vae.encode_motion(torch.from_numpy(pose[None])).mean
        rec = m.vae.decode_motion(z, len(pose)).numpy()[0]
    return finish_motion(rec, FPS, m.bone_lengths, m.smooth_seconds)


def recon_mel(pipe, mel):
    with torch.no_grad():
        z = pipe.models.vae.encode_music(torch.from_numpy(mel[None])).mean
        return pipe.models.vae.decode_music(z, mel.shape[1]).numpy()[0]


def err(a, b):
    return float(np.abs(a - b).mean())


# ------------------------------------------------------------------------------------- helpers


def test_ranges_frames_and_seams():
    assert editing.parse_range("2:4.5") == (2.0, 4.5)
    assert editing.parse_range("3s:") == (3.0, None) and editing.parse_range(":1.5") == (0.0, 1.5)
    for bad in ("abc", "4:2", ":", "1-2"):
        with pytest.raises(ValueError, match="range"):
            editing.parse_range(bad)
    # all of a shorter input (a prefix); keep ranges; regenerate ranges; open ends are the input's end
    assert editing.kept_frames(10, 4).tolist() == [1] * 4 + [0] * 6
    assert np.flatnonzero(editing.kept_frames(100, 80, keep=[(0.2, 0.4), (1.0, None)], fps=10)).tolist() == [
        2, 3, *range(10, 80)
    ]  # fmt: skip
    assert np.flatnonzero(~editing.kept_frames(100, 100, regenerate=[(0.5, 0.7)], fps=10)).tolist() == [5, 6]
    with pytest.raises(ValueError, match="past the end of dance.npy"):
        editing.kept_frames(100, 20, keep=[(1.0, 3.0)], name="dance.npy", fps=10)
    with pytest.raises(ValueError, match="not both"):
        editing.kept_frames(10, 10, keep=[(0, 1)], regenerate=[(0, 1)])
    # a latent frame is held when both of its frames are kept
    # (the last latent frame of an odd length spans one frame)
    assert editing.latent_frames(np.array([1, 1, 1, 0, 0, 1, 1], bool), 2).tolist() == [True, False, False, True]
    assert editing.seams(np.array([1, 1, 0, 0, 1, 0], bool)) == [2, 4, 5]
    assert editing.keyframe_frame(1.0) == 63 and editing.keyframe_frame(0.992) == 62  # 62.5 -> 63: halves up


def test_paste_is_exact_on_kept_frames_and_fades_the_difference():
    rng = np.random.default_rng(0)
    gen = np.cumsum(rng.normal(0, 0.01, (60, 14, 2)), axis=0).astype(np.float32)
    target = gen + 0.5  # the kept input, 0.5 away from the decoding
    kept = np.arange(60) < 20
    out = editing.paste(gen, target, kept, ramp=9)
    np.testing.assert_array_equal(out[:20], target[:20])
    np.testing.assert_array_equal(out[30:], gen[30:])  # beyond the ramp: the generation itself
    # the 0.5 shift fades linearly over 10 steps: 0.05 per frame on top of the generated motion
    np.testing.assert_allclose(np.diff(out - gen, axis=0)[19:29], -0.05, atol=1e-6)
    # mels: time on the last axis; a keyframe (one frame) pulls both sides
    mel = np.zeros((80, 40), np.float32)
    one = np.zeros(40, bool)
    one[20] = True
    m = editing.paste(mel, np.ones((80, 40), np.float32), one, ramp=3, axis=1)
    np.testing.assert_allclose(m[0, 16:25], [0, 0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25, 0])
    # audio: the source's own samples deep inside the kept frames, the vocoded ones outside
    voc, src = np.zeros(40 * 256, np.float32), np.ones(20 * 256, np.float32)
    w = editing.crossfade_waveform(voc, src, np.arange(40) < 20, ramp=4)
    assert (w[: 15 * 256] == 1).all() and (w[20 * 256 :] == 0).all() and 0 < w[17 * 256] < 1


def test_keyframe_and_keypoint_files(tmp_path):
    pose = np.arange(28, dtype=np.float32).reshape(14, 2) / 28
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"keyframes": [{"time": 0.5, "pose": pose.tolist()}, {"time": 2, "pose": pose.tolist()}]}))
    keys = editing.read_keyframes(f)
    assert [k.time for k in keys] == [0.5, 2.0] and np.array_equal(keys[1].pose, pose)
    for doc, msg in (
        ("[1, 2]", "expected"),
        ('{"keyframes": [{"time": -1, "pose": []}]}', "keyframe 0: time"),
        ('{"keyframes": [{"time": 1, "pose": [[0, 0]]}]}', "keyframe 0: pose must be 14"),
        ("{oops", "not a readable JSON"),
    ):
        f.write_text(doc)
        with pytest.raises(ValueError, match=msg) as e:
            editing.read_keyframes(f)
        assert str(f) in str(e.value) and "\n" not in str(e.value)
    # keypoints: .npy (with a sidecar saying 62.5 frames/s) or an extraction item's "pose"
    seq = np.zeros((30, 14, 2), np.float32)
    np.save(tmp_path / "a.npy", seq)
    np.savez(tmp_path / "item.npz", pose=seq + 1, mel=np.zeros((80, 30)))
    assert editing.load_keypoints(tmp_path / "a.npy").shape == (30, 14, 2)
    assert (editing.load_keypoints(tmp_path / "item.npz") == 1).all()
    (tmp_path / "a.json").write_text('{"fps": 30}')
    with pytest.raises(ValueError, match="a.json says 30 frames/s"):
        editing.load_keypoints(tmp_path / "a.npy")
    np.save(tmp_path / "b.npy", np.zeros((30, 17, 2)))
    with pytest.raises(ValueError, match=r"b.npy: expected keypoints \[T, 14, 2\]"):
        editing.load_keypoints(tmp_path / "b.npy")
    np.save(tmp_path / "c.npy", np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="c.npy: not a readable numpy file"):  # never unpickled
        editing.load_keypoints(tmp_path / "c.npy")


# ------------------------------------------------------------------------------------- sampler


def test_sampler_holds_any_latent_frames_across_windows(runs):
    """Fixed latent frames anywhere (in the first, a middle and the last of 3 windows of 48)
    come back exactly; the same generator gives the same sample."""
    m2mo, _ = load_diffusion(runs / "music2motion")
    mu2m, _ = load_diffusion(runs / "motion2music")
    m2mo.eval(), mu2m.eval()
    L = 110
    g = torch.Generator().manual_seed(0)
    cond = torch.randn(2, 20, L, generator=g)
    known = torch.randn(1, 20, L, generator=g)
    mask = torch.zeros(L, dtype=torch.bool)
    mask[[3, 4, 5, 40, 41, 70, 71, 72, 73, 109]] = True

    def draw(seed, **kw):
        return sample(m2mo, cond, steps=3, generator=torch.Generator().manual_seed(seed), **kw)

    x = draw(1, known=known, known_mask=mask)
    torch.testing.assert_close(x[:, :, mask], known[:, :, mask].expand(2, -1, -1), rtol=0, atol=0)
    assert (x[:, :, ~mask] - known[:, :, ~mask]).abs().mean() > 0.3
    torch.testing.assert_close(draw(1, known=known, known_mask=mask), x, rtol=0, atol=0)
    # joint: the motion's frames fixed, the music's free
    js = joint_sample(
        mu2m, m2mo, L, steps=3, generator=torch.Generator().manual_seed(2), batch_size=2,
        known_motion=known, known_motion_mask=mask,
    )  # fmt: skip
    torch.testing.assert_close(js.motion[:, :, mask], known[:, :, mask].expand(2, -1, -1), rtol=0, atol=0)
    with pytest.raises(ValueError, match="known and known_mask go together"):
        sample(m2mo, cond, steps=1, known=known)


# ------------------------------------------------------------------------------------- dance


def test_continuation_keeps_the_prefix_without_a_jolt(pipe, clip, tmp_path):
    pose, y = clip
    np.save(tmp_path / "prefix.npy", pose[:100])  # 1.6 s of the dance; 4 s of music
    kw = dict(num_samples=8, seed=1, steps=3)
    res = pipe.dance_for_music(y, edit=Edit(motion=tmp_path / "prefix.npy"), **kw)
    T = res.poses.shape[1]
    assert res.poses.shape == (8, T, 14, 2) and T == len(y) // 256 + 1
    np.testing.assert_array_equal(res.poses[:, :100], np.broadcast_to(pose[:100], (8, 100, 14, 2)))
    # latent only: the VAE's decoding of the prefix, within its reconstruction error (a weak check
    # with these 3-step models, whose decoders barely depend on the latents: a free sample is as
    # close; docs/editing.md has the figures of trained models)
    raw = pipe.dance_for_music(y, edit=Edit(motion=tmp_path / "prefix.npy", paste=False), **kw)
    ref = err(recon_motion(pipe, pose[:100]), pose[:100])
    assert err(raw.poses[:, :100], pose[:100]) <= 1.5 * ref + 0.01, (err(raw.poses[:, :100], pose[:100]), ref)
    # no jolt where the prefix ends, nor at the edges
    for poses in (res.poses, raw.poses):
        r = edge_speed_ratios(speed_profile(poses), [100])
        assert max(r.values()) < 2.0, r
    # the check sees a jolt: pasted without a fade, the prefix's decoding error is one (2.6x here)
    hard = pipe.dance_for_music(y, edit=Edit(motion=tmp_path / "prefix.npy", seam=0), **kw)
    assert edge_speed_ratios(speed_profile(hard.poses), [100])["seam@100"] > 2.0
    # the same seed, the same dance; another seed, another continuation of the same prefix
    again = pipe.dance_for_music(y, edit=Edit(motion=tmp_path / "prefix.npy"), **kw)
    np.testing.assert_array_equal(again.poses, res.poses)
    other = pipe.dance_for_music(y, edit=Edit(motion=tmp_path / "prefix.npy"), **{**kw, "seed": 2})
    np.testing.assert_array_equal(other.poses[:, :100], res.poses[:, :100])
    assert err(other.poses[:, 130:], res.poses[:, 130:]) > 0.01


def test_keyframes_are_hit_at_their_times(pipe, clip, tmp_path):
    pose, y = clip
    times = [0.8, 2.4]
    frames = [editing.keyframe_frame(t) for t in times]  # 50, 150
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"keyframes": [{"time": t, "pose": pose[p].tolist()} for t, p in zip(times, frames)]}))
    res = pipe.dance_for_music(y, num_samples=8, seed=0, steps=3, edit=Edit(keyframes=f))
    for p in frames:
        np.testing.assert_array_equal(res.poses[:, p], np.broadcast_to(pose[p], (8, 14, 2)))
    r = edge_speed_ratios(speed_profile(res.poses), editing.seams(np.isin(np.arange(res.poses.shape[1]), frames)))
    assert max(r.values()) < 2.0, r
    # latent only: the decoded pose at each keyframe is the VAE's round trip of that pose held still
    raw = pipe.dance_for_music(y, num_samples=8, seed=0, steps=3, edit=Edit(keyframes=f, paste=False))
    for p in frames:
        ref = err(recon_motion(pipe, np.repeat(pose[p][None], 8, axis=0))[4], pose[p])
        assert err(raw.poses[:, p], pose[p]) <= 1.5 * ref + 0.01, (p, err(raw.poses[:, p], pose[p]), ref)
    with pytest.raises(GenerateError, match="same latent frame"):
        pipe.dance_for_music(y, steps=1, edit=Edit(keyframes=[editing.Keyframe(t, pose[0]) for t in (1.0, 1.01)]))
    with pytest.raises(GenerateError, match="past the end of the output"):
        pipe.dance_for_music(y, steps=1, edit=Edit(keyframes=[editing.Keyframe(9.0, pose[0])]))


def test_keep_and_regenerate_ranges_of_a_dance(pipe, clip):
    pose, y = clip
    kw = dict(num_samples=2, seed=0, steps=3)
    res = pipe.dance_for_music(y, edit=Edit(motion=pose, keep=[(1.0, 2.0)]), **kw)
    kept = editing.kept_frames(res.poses.shape[1], len(pose), keep=[(1.0, 2.0)])
    assert np.flatnonzero(kept).tolist() == list(range(63, 125))
    np.testing.assert_array_equal(res.poses[:, 63:125], np.broadcast_to(pose[63:125], (2, 62, 14, 2)))
    assert err(res.poses[:, :40], pose[:40]) > 0.01  # the rest is new
    res = pipe.dance_for_music(y, edit=Edit(motion=pose, regenerate=[(1.0, 2.0)]), **kw)
    np.testing.assert_array_equal(res.poses[:, :63], np.broadcast_to(pose[:63], (2, 63, 14, 2)))
    np.testing.assert_array_equal(res.poses[:, 125:250], np.broadcast_to(pose[125:], (2, len(pose) - 125, 14, 2)))
    with pytest.raises(GenerateError, match="nothing left to generate"):
        pipe.dance_for_music(y, length=len(pose), steps=1, edit=Edit(motion=pose))
    with pytest.raises(GenerateError, match="for music_for_dance or joint"):
        pipe.dance_for_music(y, steps=1, edit=Edit(music=y))


# ------------------------------------------------------------------------------------- music


def test_music_continued_and_a_section_regenerated(pipe, clip):
    from momu_data import log_mel

    pose, y = clip
    mel = log_mel(y)
    kw = dict(num_samples=2, seed=0, steps=3)
    res = pipe.music_for_dance(pose, edit=Edit(music=y[: 100 * 256]), **kw)  # the first 1.6 s of the music
    n = res.mels.shape[2]
    kept = np.arange(n) < 100
    assert n == len(pose) and np.flatnonzero(editing.kept_frames(n, 101)).tolist() == list(range(101))
    np.testing.assert_array_equal(
        res.mels[:, :, :100], np.broadcast_to(log_mel(y[: 100 * 256])[:, :100], (2, 80, 100))
    )
    # the music's own samples where kept (crossfading into the vocoded rest over the seam), new ones after
    np.testing.assert_allclose(res.waveforms[:, : 60 * 256], np.broadcast_to(y[: 60 * 256], (2, 60 * 256)), atol=1e-6)
    assert np.abs(res.waveforms[:, 110 * 256 :] - y[110 * 256 : n * 256]).mean() > 1e-3
    # latent only: the decoded mel of the kept part within the VAE's reconstruction error
    raw = pipe.music_for_dance(pose, edit=Edit(music=y, keep=[(0.0, 1.6)], paste=False), **kw)
    ref = err(recon_mel(pipe, mel[:, :100]), mel[:, :100])
    assert err(raw.mels[:, :, kept], mel[:, :100]) <= 1.5 * ref + 0.02, (err(raw.mels[:, :, kept], mel[:, :100]), ref)
    # a section regenerated: the rest of the mel is the input's
    sec = pipe.music_for_dance(pose, edit=Edit(music=y, regenerate=[(1.0, 2.0)]), **kw)
    np.testing.assert_array_equal(sec.mels[:, :, :63], np.broadcast_to(mel[:, :63], (2, 80, 63)))
    np.testing.assert_array_equal(sec.mels[:, :, 125:n], np.broadcast_to(mel[:, 125:n], (2, 80, n - 125)))
    assert err(sec.mels[:, :, 70:120], mel[:, 70:120]) > 0.05


def test_joint_regenerates_a_range_of_both(pipe, clip):
    pose, y = clip
    edit = Edit(motion=pose, music=y, regenerate=[(1.0, 2.0)])
    res = pipe.joint(length=None, num_samples=2, seed=3, steps=3, edit=edit)
    T = len(pose)
    assert res.poses.shape == (2, T, 14, 2) and res.mels.shape == (2, 80, T)  # the inputs' length
    from momu_data import log_mel

    mel = log_mel(y)
    for a, b, sl in ((res.poses, pose, np.s_[:, 125:]), (res.mels, mel, np.s_[:, :, 125:T])):
        np.testing.assert_array_equal(a[sl], np.broadcast_to(b[sl[1:]], a[sl].shape))
    assert err(res.poses[:, 70:120], pose[70:120]) > 0.01 and err(res.mels[:, :, 70:120], mel[:, 70:120]) > 0.05
    again = pipe.joint(length=None, num_samples=2, seed=3, steps=3, edit=edit)
    np.testing.assert_array_equal(again.poses, res.poses)
    np.testing.assert_array_equal(again.mels, res.mels)


# ------------------------------------------------------------------------------------- CLI


def invoke(*args):
    app = typer.Typer()
    app.command()(generate)
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_continuation_and_errors(runs, clip, tmp_path):
    import soundfile as sf

    pose, y = clip
    sf.write(tmp_path / "song.wav", y, 16000)
    np.save(tmp_path / "prefix.npy", pose[:100])
    base = ["--music", tmp_path / "song.wav", "--checkpoints", runs, "--steps", "2", "--out", tmp_path / "o"]
    r = invoke(*base, "--prefix-motion", tmp_path / "prefix.npy")
    assert r.exit_code == 0, r.output
    out = np.load(tmp_path / "o" / "song_dance_s0_0.npy")
    np.testing.assert_array_equal(out[:100], pose[:100])
    for extra, msg in (
        (["--keep", "1:2"], "need an input to keep parts of"),
        (["--prefix-motion", tmp_path / "prefix.npy", "--keep", "2:1"], "is empty"),
        (["--prefix-motion", tmp_path / "prefix.npy", "--keep", "1:2", "--regenerate", "3:4"], "not both"),
        (["--prefix-music", tmp_path / "song.wav"], "for music_for_dance or joint"),
        (["--keyframes", tmp_path / "song.wav"], "song.wav: not a readable JSON"),
        (["--prefix-motion", tmp_path / "none.npy"], "no such file"),
    ):
        r = invoke(*base, *extra)
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (extra, r.output)
