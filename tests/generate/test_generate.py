"""momu-generate end to end on tiny checkpoints trained here: playable mp4s of the asked
length, every output file, determinism for a seed, and the missing-checkpoint error."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media import missing_render_packages, tiny_dit_config
from typer.testing import CliRunner

import momu_models.train.diffusion as TD
import momu_models.train.vae as TV
from momu_models.cli.generate import generate
from momu_models.diffusion import window_seams
from momu_models.evaluate.metrics import edge_speed_ratios, speed_profile
from momu_models.generate.length import parse_length
from momu_models.generate.pipeline import GenerateError, MoMuPipeline
from momu_models.models.dit import load_diffusion

runner = CliRunner()
# A models-only install (make models-check) has neither PyAV nor OpenCV, so no mp4 to check.
needs_render = pytest.mark.skipif(
    bool(missing_render_packages()), reason=f"no mp4 without {' and '.join(missing_render_packages())} (models-only)"
)


# `runs` (tiny trained checkpoints) is in conftest.py, shared with test_export_cli.py.


def invoke(*args):
    import typer

    app = typer.Typer()
    app.command()(generate)
    return runner.invoke(app, [str(a) for a in args])


def streams(path):
    av = pytest.importorskip("av", reason="PyAV absent (a models-only install): the mp4 is not checked")
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        return (
            v.codec_context.name,
            float(v.duration * v.time_base),
            a.codec_context.name,
            float(a.duration * a.time_base) if a.duration else None,
        )


def joint_args(runs) -> list:
    return ["--joint", "--length", "3s", "--checkpoints", runs, "--steps", "4", "--vocoder", "griffinlim"]


@pytest.fixture(scope="module")
def joint_cli(runs, tmp_path_factory):
    """`momu-generate --joint` of 2 samples, seed 5, run once for the module: the files its
    test checks, and the reference the Python API must reproduce exactly."""
    out = tmp_path_factory.mktemp("joint_cli")
    r = invoke(*joint_args(runs), "--out", out, "--seed", "5", "--num-samples", "2")
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.slow
@needs_render
def test_joint_generation_files_length_and_determinism(runs, joint_cli, tmp_path):
    args = joint_args(runs)
    for k in range(2):
        stem = joint_cli / f"joint_s5_{k}"
        vcodec, vdur, acodec, adur = streams(f"{stem}.mp4")
        assert vcodec == "h264" and acodec == "aac"
        assert abs(vdur - 3.0) < 0.1 and (adur is None or abs(adur - 3.0) < 0.1)
        pose = np.load(f"{stem}.npy")
        assert pose.shape == (188, 14, 2) and np.isfinite(pose).all()  # 3 s = 187.5 -> 188 frames
        wav, sr = sf.read(f"{stem}.wav")
        assert sr == 16000 and len(wav) == 188 * 256
        assert json.loads(open(f"{stem}.json").read())["fps"] == 62.5
        assert (joint_cli / f"joint_s5_{k}_beats.png").stat().st_size > 1000
    r = invoke(*args, "--out", tmp_path / "b", "--seed", "5", "--num-samples", "2")
    assert r.exit_code == 0
    assert np.array_equal(np.load(joint_cli / "joint_s5_1.npy"), np.load(tmp_path / "b" / "joint_s5_1.npy"))
    r = invoke(*args, "--out", tmp_path / "c", "--seed", "6")
    assert not np.array_equal(np.load(joint_cli / "joint_s5_0.npy"), np.load(tmp_path / "c" / "joint_s6_0.npy"))


@needs_render
def test_dance_for_music_keeps_the_music(runs, tmp_path):
    from media import click_track

    y, _ = click_track(2.0, 120)
    sf.write(tmp_path / "song.wav", y, 16000)
    r = invoke("--music", tmp_path / "song.wav", "--checkpoints", runs, "--steps", "3", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    pose = np.load(tmp_path / "o" / "song_dance_s0_0.npy")
    assert pose.shape == (32000 // 256, 14, 2)  # outputs keep whole hops: T frames <-> T * 256 samples
    wav, _ = sf.read(tmp_path / "o" / "song_dance_s0_0.wav")
    assert np.corrcoef(wav[:30000], y[:30000])[0, 1] > 0.99  # the input music, not a new one
    _, vdur, _, _ = streams(tmp_path / "o" / "song_dance_s0_0.mp4")
    assert abs(vdur - 2.0) < 0.1


def test_errors(runs, tmp_path):
    r = invoke("--joint", "--checkpoints", tmp_path / "none")
    assert r.exit_code == 2 and "momu-train vae" in r.output
    r = invoke("--joint", "--music", tmp_path / "x.wav", "--checkpoints", runs)
    assert r.exit_code == 2 and "choose one" in r.output
    r = invoke("--joint", "--length", "abc", "--checkpoints", runs)
    assert r.exit_code == 2 and "cannot parse length" in r.output
    (tmp_path / "only").mkdir()
    import shutil

    shutil.copytree(runs / "vae", tmp_path / "only" / "vae")
    r = invoke("--music", runs / "vae" / "config.json", "--checkpoints", tmp_path / "only")
    assert r.exit_code == 2 and "--task music2motion" in r.output


def test_training_follows_the_cosine_lr_decay(runs, toy_shards, tmp_path):
    """The trainer's learning rate per update, as its metrics log it, with `lr_decay="cosine"`."""
    cfg = tiny_dit_config(
        toy_shards,
        runs / "vae",
        tmp_path / "cos",
        "music2motion",
        steps=5,
        log_every=1,
        warmup_steps=1,
        lr_decay="cosine",
    )
    TD.train(cfg, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "cos" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    peak = TD.PRESET_LR["tiny"][0]
    # logged after each update: the rate of the next one, 0.5 (1 + cos(pi k / 4)) of the peak
    assert lrs == pytest.approx([peak * f for f in (0.85355, 0.5, 0.14645, 0.0, 0.0)], rel=1e-4, abs=1e-9)


def test_finetune_from_a_run_with_frame_cond(runs, toy_shards, tmp_path):
    import shutil

    import torch
    from media import click_track

    from momu_models.train.loop import TrainError

    def cfg(task, out, steps, frame_cond, init=None):
        return tiny_dit_config(toy_shards, runs / "vae", out, task, steps=steps, init=init, frame_cond=frame_cond)

    # a run of the paper's plain concatenation, then a fine-tuning run that adds frame_cond
    TD.train(cfg("music2motion", tmp_path / "plain", 2, False), progress=False)
    TD.train(cfg("music2motion", tmp_path / "ft0", 0, True, str(tmp_path / "plain")), progress=False)
    src, scfg = load_diffusion(tmp_path / "plain")
    ft, fcfg = load_diffusion(tmp_path / "ft0")
    assert fcfg["dit"]["frame_cond"] and not scfg["dit"]["frame_cond"]
    assert fcfg["latent_scales"] == scfg["latent_scales"] and fcfg["bone_lengths"] == scfg["bone_lengths"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, src.config.in_channels, 12, generator=g)
    c = torch.randn(1, src.config.cond_channels, 12, generator=g)
    with torch.no_grad():  # the new projection starts at zero: the same model until trained
        torch.testing.assert_close(ft(x, torch.tensor([300]), c), src(x, torch.tensor([300]), c))
    with pytest.raises(TrainError, match="music2motion run, not motion2music"):
        TD.train(cfg("motion2music", tmp_path / "bad", 1, True, str(tmp_path / "plain")), progress=False)
    # a frame_cond run does not fit a model without the path
    with pytest.raises(TrainError, match="c_to_x.*--frame-cond"):
        TD.train(cfg("music2motion", tmp_path / "bad2", 1, False, str(tmp_path / "ft0")), progress=False)
    # resuming a run with another frame_cond names the field
    with pytest.raises(TrainError, match="frame_cond False"):
        TD.train(
            TD.DiffusionTrainConfig(**{**vars(cfg("music2motion", tmp_path / "plain", 4, True)), "resume": True}),
            progress=False,
        )
    # a few fine-tuning steps, then momu-generate uses the frame_cond model
    TD.train(cfg("music2motion", tmp_path / "sets" / "music2motion", 3, True, str(tmp_path / "plain")), progress=False)
    shutil.copytree(runs / "vae", tmp_path / "sets" / "vae")
    y, _ = click_track(2.0, 120)
    sf.write(tmp_path / "song.wav", y, 16000)
    r = invoke(
        "--music",
        tmp_path / "song.wav",
        "--checkpoints",
        tmp_path / "sets",
        "--steps",
        "3",
        "--out",
        tmp_path / "o",
        "--no-render",  # the npy is what this checks
    )
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "o" / "song_dance_s0_0.npy").shape == (32000 // 256, 14, 2)


def test_validation_rereads_a_small_val_split(runs, toy_shards):
    import torch

    from momu_data.loader import loader
    from momu_models.diffusion.process import Diffusion

    vae = TD.load_vae(runs / "vae")
    dit, c = load_diffusion(runs / "music2motion")
    n_val = sum(1 for _ in loader(toy_shards, split="val", batch_size=1))
    assert n_val >= 1

    def val(k):
        cfg = TD.DiffusionTrainConfig(
            shards=str(toy_shards), task="music2motion", vae=str(runs / "vae"), batch_size=1, val_batches=k
        )
        return TD.validate(
            dit,
            vae,
            Diffusion.from_config(dit.config),
            cfg,
            {"latent_scales": c["latent_scales"]},
            torch.device("cpu"),
        )

    one, more = val(n_val), val(3 * n_val)
    assert val(3 * n_val) == more  # fixed noise: the same figure every time
    # the split is read three times with new noise levels, so the mean moves
    assert more["loss"] != one["loss"] and np.isfinite(more["loss"])


# ---------------------------------------------------------------- Python API (MoMuPipeline)


@pytest.mark.slow
def test_pipeline_joint_equals_the_cli(runs, joint_cli, tmp_path):
    pipe = MoMuPipeline.from_pretrained(runs, device="cpu", vocoder="griffinlim")
    res = pipe.joint(length="3s", num_samples=2, seed=5, steps=4)
    assert res.poses.shape == (2, 188, 14, 2) and res.mels.shape == (2, 80, 188)
    assert res.waveforms.shape == (2, 188 * 256) and res.waveforms.dtype == np.float32
    assert {"sampling", "vae_decode", "vocoder"} <= set(res.timings)
    written = res.save(tmp_path / "py")
    assert [w["mp4"] for w in written] == [str(tmp_path / "py" / f"joint_s5_{k}.mp4") for k in range(2)]
    for k in range(2):
        stem = f"joint_s5_{k}"
        py, cli = tmp_path / "py", joint_cli
        np.testing.assert_array_equal(np.load(py / f"{stem}.npy"), np.load(cli / f"{stem}.npy"))
        assert (py / f"{stem}.wav").read_bytes() == (cli / f"{stem}.wav").read_bytes()
        assert (py / f"{stem}.json").read_text() == (cli / f"{stem}.json").read_text()
        assert (py / f"{stem}_beats.png").exists()
    again = pipe.joint(length=188, num_samples=2, seed=5, steps=4)  # 188 frames == "3s"; same seed, same arrays
    np.testing.assert_array_equal(again.poses, res.poses)
    np.testing.assert_array_equal(again.waveforms, res.waveforms)


@needs_render
def test_pipeline_arrays_in_and_named_outputs(runs, tmp_path):
    from media import click_track

    pipe = MoMuPipeline.from_pretrained(runs, tasks=("music2motion",), device="cpu")
    y, _ = click_track(2.0, 120)
    res = pipe.dance_for_music(y, num_samples=2, seed=3, steps=3)
    assert res.mode == "dance_for_music" and res.mels is None
    assert res.poses.shape == (2, 126, 14, 2)  # log_mel of 32000 samples: 1 + 32000 // 256 frames
    np.testing.assert_array_equal(res.waveforms[1], y[: 126 * 256])  # the input music
    assert [Path(w["mp4"]).name for w in res.save(tmp_path)] == ["music_dance_s3_0.mp4", "music_dance_s3_1.mp4"]
    assert pipe.dance_for_music(y, length="1s", steps=3).poses.shape == (1, 63, 14, 2)  # 62.5 frames: halves up
    with pytest.raises(GenerateError, match="lasts 2.0 s"):
        pipe.dance_for_music(y, length="5s", steps=3)
    with pytest.raises(GenerateError, match=r"tasks=\('motion2music',\)"):
        pipe.music_for_dance(np.zeros((60, 14, 2), np.float32))
    with pytest.raises(GenerateError, match="no such file"):
        pipe.dance_for_music(tmp_path / "missing.wav")

    pipe = MoMuPipeline.from_pretrained(runs, tasks=("motion2music",), device="cpu", vocoder="griffinlim")
    pose = res.poses[0]
    out = pipe.music_for_dance(pose, num_samples=1, seed=0, steps=3)
    assert out.mels.shape == (1, 80, 126) and out.waveforms.shape == (1, 126 * 256)
    np.testing.assert_array_equal(out.poses[0], pose)
    (w,) = out.save(tmp_path, stem="mine")
    assert w["mp4"] == str(tmp_path / "mine_0.mp4") and np.load(tmp_path / "mine_0.npy").shape == (126, 14, 2)


@pytest.mark.parametrize("spec,frames", [("3s", 188), ("0:01", 63), ("750", 750), ("12f", 12), (40, 40)])
def test_parse_length(spec, frames):
    assert parse_length(spec, 62.5) == frames


def test_parse_length_errors():
    with pytest.raises(ValueError, match="cannot parse length 'abc'; use frames"):
        parse_length("abc", 62.5)
    with pytest.raises(ValueError, match="frames must be whole"):
        parse_length("2.5", 62.5)


def seam_frames(frames: int, max_len: int, factor: int = 2) -> list[int]:
    """Pose frames where the sliding windows' overlaps begin and end."""
    return [b * factor for b in window_seams(-(-frames // factor), max_len)]


@pytest.fixture(scope="module")
def edge_runs(toy_shards, tmp_path_factory):
    """Tiny VAEs whose motion decoders are trained long enough (100 steps) to map latents onto
    real poses, one with each conv padding, and tiny DiTs on the replicate one. The music VAE
    gets 1 step: what is compared is the motion decoder, and stage 2 only reads the music
    latents (its contrast target). 100 music steps were two thirds of this fixture's time and
    kept the ratios no farther from the thresholds (seeds 0-2: zeros' slower edge 2.7-35 with
    100 music steps, 4.7-76 with 1; replicate's faster edge 0.76-0.89 with 100, 0.50-0.53 with 1)."""
    root = tmp_path_factory.mktemp("edge_runs")
    tiny = dict(shards=str(toy_shards), preset="tiny", batch_size=4, val_batches=1, val_every=10**6, ckpt_every=10**6)
    for padding in ("zeros", "replicate"):
        TV.train(
            TV.VAETrainConfig(
                run_dir=str(root / padding / "vae"),
                music_steps=1,
                motion_steps=100,
                crop_seconds=1.0,
                conv_padding=padding,
                **tiny,
            ),
            progress=False,
        )
    for task in ("motion2music", "music2motion"):
        TD.train(
            TD.DiffusionTrainConfig(
                task=task,
                run_dir=str(root / "replicate" / task),
                vae=str(root / "replicate" / "vae"),
                steps=30,
                stats_batches=2,
                **tiny,
            ),
            progress=False,
        )
    return root


@pytest.mark.slow
def test_zero_padded_decoder_jolts_at_the_edges_replicate_does_not(edge_runs, toy_shards):
    """The cause of the jolt at the start and end of every generated dance (issue 12): with
    zero padding every conv of a trained decoder sees zeros beyond the sequence, and the first
    and last frames of its output move several times faster than the body does. The same
    decoder trained with replicate padding reconstructs the edges like the rest."""
    import torch

    from momu_data import loader
    from momu_models import BiCoRVAE

    batch = next(iter(loader(toy_shards, split="train", batch_size=8, crop_frames=250)))
    ratios = {}
    for padding in ("zeros", "replicate"):
        vae = BiCoRVAE.from_pretrained(edge_runs / padding / "vae")
        assert vae.cfg.conv_padding == padding
        with torch.no_grad():
            rec = vae.decode_motion(vae.encode_motion(batch["pose"]).mean, 250).numpy()
        ratios[padding] = edge_speed_ratios(speed_profile(rec), [])
    real = edge_speed_ratios(speed_profile(batch["pose"].numpy()), [])
    assert max(real.values()) < 1.5  # the clips themselves move evenly
    assert min(ratios["zeros"].values()) > 2.5, ratios
    assert max(ratios["replicate"].values()) < 1.5, ratios


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [1.0, 3.0, 10.0, 30.0])
def test_generated_motion_has_no_jolt_at_edges_or_window_seams(edge_runs, seconds):
    """Joint generation and dance for a music, 1 s (one window of the tiny DiT's 1.5 s) to
    30 s (27 windows): the first and last 0.1 s and the 0.1 s around every window seam move
    within 2x the median speed. Averaged over 8 samples (speed_profile): single sequences of
    these barely trained models are noise-like, and a few percent of any 0.1 s windows pass
    2x by content alone; a boundary effect is the same in every sample and survives the mean.
    5 DDIM steps, half the time of 10: the windows are joined the same way at any step count,
    and the worst ratio of any case measured 1.37 with 5 steps, 1.48 with 10."""
    from media import click_track

    from momu_data import log_mel
    from momu_models.generate.pipeline import generate_joint, generate_motion, load_models

    models = load_models(edge_runs / "replicate", ("motion2music", "music2motion"), "cpu")
    frames = int(round(seconds * 62.5))
    seams = seam_frames(frames, models.dits["music2motion"].config.max_len)
    assert (len(seams) > 0) == (seconds > 1.5)
    y, _ = click_track(seconds, 120)
    mel = log_mel(y)[:, :frames]
    for poses in (
        generate_joint(models, frames, n=8, seed=1, steps=5).poses,
        generate_motion(models, mel, n=8, seed=2, steps=5).poses,
    ):
        assert poses.shape == (8, frames, 14, 2)
        r = edge_speed_ratios(speed_profile(poses), seams)
        assert max(r.values()) < 2.0, {k: round(float(x), 2) for k, x in r.items()}


def test_heldout_scores_guided_and_unconditional_on_the_held_out_clips(runs, toy_shards, tmp_path):
    """`momu-eval heldout`: every val + test clip scored, the ceiling equal to the real pairs'
    own score computed here, and at guidance 0 the 'guided' samples are the unconditional ones
    (same model, same seed), so both rows agree exactly."""
    import json

    from momu_data import timebase as A
    from momu_data.loader import dataset
    from momu_models.cli.eval import app as eval_app
    from momu_models.evaluate.heldout import heldout_clips, summary_lines
    from momu_models.evaluate.metrics import aggregate, motion_beats, tolerance_scores

    clips = heldout_clips(toy_shards, ("val", "test"))
    keys = sorted(s["key"] for sp in ("val", "test") for s in dataset(toy_shards, sp))
    assert sorted(c["key"] for c in clips) == keys and len(keys) == 4
    out = tmp_path / "heldout.json"
    res = runner.invoke(
        eval_app,
        [
            "heldout",
            str(toy_shards),
            "--checkpoints",
            str(runs),
            "--steps",
            "2",
            "--guidance",
            "0",
            "--samples",
            "2",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    fig = json.loads(out.read_text())
    assert fig["clips"] == 4 and fig["settings"]["tolerance"] == 0.1
    # two samples per clip and condition, each scored as a pair; the runs' default solver
    assert fig["m2d_cond/tol"]["n"] == 8 and fig["settings"]["samples"] == 2
    assert fig["settings"]["solver"] == "dpm++2m" and fig["ceiling/tol"]["n"] == 4
    ceiling = aggregate(
        [tolerance_scores(motion_beats(c["pose"], A.FPS), c["onsets"], c["pose"].shape[0] / A.FPS, 0.1) for c in clips]
    )
    assert fig["ceiling/tol"]["F1"] == pytest.approx(ceiling["F1"])
    for a, b in (("m2d_cond", "m2d_uncond"), ("d2m_cond_vs_dance", "d2m_uncond_vs_dance")):
        assert fig[f"{a}/tol"] == fig[f"{b}/tol"]
    lines = summary_lines(fig)
    assert [ln.split(":")[0] for ln in lines] == ["music-to-dance", "dance-to-music"]
    assert f"{fig['m2d_cond/tol']['F1']:.1f} guided" in lines[0] and lines[0] in res.output
    # a folder without models: one line, not a traceback
    bad = runner.invoke(eval_app, ["heldout", str(toy_shards), "--checkpoints", str(tmp_path)])
    assert bad.exit_code == 1 and "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1


def test_heldout_scores_the_dances_smoothed_as_told(runs, toy_shards):
    """`momu-eval heldout --smooth S`: the generated dances are scored smoothed with sigma S
    (0: raw), exactly as generate_motion returns them from models loaded with that smoothing;
    a negative sigma is refused."""
    from momu_data import timebase as A
    from momu_models.evaluate.heldout import evaluate_heldout, heldout_clips
    from momu_models.evaluate.metrics import aggregate, motion_beats, tolerance_scores
    from momu_models.generate.pipeline import generate_motion, load_models

    clips = heldout_clips(toy_shards, ("val", "test"))
    figs = {}
    for sigma in (0.0, 0.08):
        fig = evaluate_heldout(toy_shards, runs, tasks=("music2motion",), steps=2, smooth_seconds=sigma)
        assert fig["settings"]["smooth_seconds"] == sigma
        models = load_models(runs, ("music2motion",), smooth_seconds=sigma)
        rows = []
        for i, c in enumerate(clips):
            pose = generate_motion(models, c["mel"], 1, i, 2, fig["settings"]["guidance"]["music2motion"]).poses[0]
            rows.append(tolerance_scores(motion_beats(pose, A.FPS), c["onsets"], c["pose"].shape[0] / A.FPS, 0.1))
        assert fig["m2d_cond/tol"]["F1"] == pytest.approx(aggregate(rows)["F1"])
        figs[sigma] = fig
    assert figs[0.0]["ceiling/tol"] == figs[0.08]["ceiling/tol"]  # the real dances are never smoothed
    with pytest.raises(ValueError, match="smoothing must be 0"):
        evaluate_heldout(toy_shards, runs, tasks=("music2motion",), steps=2, smooth_seconds=-1)


def test_default_sampler_follows_the_runs_preset(runs):
    """The paper's 50 DDIM steps for paper-preset runs, 12 DPM-Solver++ steps for the CPU
    presets; explicit steps and solver win; an unknown solver is one line."""
    from momu_models.generate.pipeline import (
        CPU_SOLVER,
        CPU_STEPS,
        PAPER_SOLVER,
        PAPER_STEPS,
        GenerateError,
        MoMuPipeline,
        default_solver,
        default_steps,
    )

    assert (PAPER_SOLVER, PAPER_STEPS, CPU_SOLVER, CPU_STEPS) == ("ddim", 50, "dpm++2m", 12)
    paper = {"music2motion": {"preset": "paper"}, "motion2music": {"preset": "paper"}}
    assert default_steps(paper) == 50 and default_solver(paper) == "ddim"
    assert default_steps({"music2motion": {"preset": "small"}}) == 12
    assert default_solver({"music2motion": {"preset": "small"}}) == "dpm++2m"
    pipe = MoMuPipeline.from_pretrained(runs, tasks=("music2motion", "motion2music"))
    assert pipe._steps(None) == 12 and pipe._steps(7) == 7
    assert pipe._solver(None) == "dpm++2m" and pipe._solver("ddim") == "ddim"
    with pytest.raises(GenerateError, match="unknown solver 'euler'"):
        pipe._solver("euler")
    # the two solvers give different samples from the same seed; each is deterministic
    d1 = pipe.joint("1s", steps=3, solver="ddim").poses
    d2 = pipe.joint("1s", steps=3, solver="dpm++2m").poses
    d3 = pipe.joint("1s", steps=3, solver="dpm++2m").poses
    assert np.array_equal(d2, d3) and not np.allclose(d1, d2)
