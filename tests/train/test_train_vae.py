"""`momu-train vae` on toy shards: training reduces the loss, kill + resume equals an
uninterrupted run, torchrun with 2 CPU processes, loading, and the one-line errors; the
`--config FILE` settings of every `momu-train` command (file < command line)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from media import ROOT, tiny_vae_config
from safetensors.torch import load_file
from typer.testing import CliRunner

import momu_models.train.classifier as TC
import momu_models.train.diffusion as TD
import momu_models.train.vae as TV
from momu_models.cli.train import app
from momu_models.models.vae import BiCoRVAE
from momu_models.train.args import TrainArgs, read_settings, setting_names

cfg = tiny_vae_config  # a tiny VAE run on the toy shards (media.tiny_vae_config)


def losses(run, key):
    return [json.loads(line)[key] for line in open(Path(run) / "metrics.jsonl") if key in line]


@pytest.mark.slow
def test_training_reduces_loss_and_saves_a_loadable_model(toy_shards, tmp_path):
    run = tmp_path / "run"
    # checkpoints only where each stage ends (tiny_vae_config's every 2 steps: 30 saves, ~4 s)
    metrics = TV.train(cfg(toy_shards, run, music_steps=30, motion_steps=30, lr=3e-3, ckpt_every=1000), progress=False)
    music = losses(run, "music/rec")
    motion = losses(run, "motion/rec")
    assert len(music) == 30 and len(motion) == 30
    assert sum(music[-5:]) / 5 < 0.8 * sum(music[:5]) / 5
    assert sum(motion[-5:]) / 5 < 0.8 * sum(motion[:5]) / 5
    assert {"mel_l1", "pose_l1", "retrieval_acc", "retrieval_chance"} <= set(metrics)
    model = BiCoRVAE.from_pretrained(run)
    saved = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert model.config_extra["preset"] == "tiny"
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,name,value" and len(lines) > 60
    assert list((run / "tensorboard").iterdir())


def test_kill_and_resume_equals_uninterrupted(toy_shards, tmp_path, monkeypatch):
    TV.train(cfg(toy_shards, tmp_path / "a"), progress=False)
    full = load_file(str(tmp_path / "a" / "model.safetensors"))

    real_save = TV.save_checkpoint

    def save_then_die(run_dir, step, *a, **kw):
        out = real_save(run_dir, step, *a, **kw)
        if step == 6:  # inside stage 2, after the checkpoint is on disk
            raise KeyboardInterrupt("killed")
        return out

    monkeypatch.setattr(TV, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        TV.train(cfg(toy_shards, tmp_path / "b"), progress=False)
    monkeypatch.setattr(TV, "save_checkpoint", real_save)
    assert not (tmp_path / "b" / "model.safetensors").exists()
    TV.train(cfg(toy_shards, tmp_path / "b", resume=True), progress=False)
    resumed = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


def test_errors_are_one_line(toy_shards, tmp_path):
    r = CliRunner()
    res = r.invoke(app, ["vae", str(tmp_path / "missing"), "--preset", "tiny"])
    assert res.exit_code == 2 and "does not exist" in res.output
    (tmp_path / "empty" / "train").mkdir(parents=True)
    res = r.invoke(app, ["vae", str(tmp_path / "empty"), "--preset", "tiny"])
    assert res.exit_code == 2 and "no .tar shards" in res.output
    bad = tmp_path / "bad" / "train"
    bad.mkdir(parents=True)
    (tmp_path / "x.txt").write_text("hello")
    with tarfile.open(bad / "000000.tar", "w") as t:
        t.add(tmp_path / "x.txt", arcname="k1.txt")
    res = r.invoke(app, ["vae", str(tmp_path / "bad"), "--preset", "tiny"])
    assert res.exit_code == 2 and "not a MoMu shard" in res.output
    # a checkpoint of another preset
    run = tmp_path / "run"
    TV.train(cfg(toy_shards, run, music_steps=2, motion_steps=0, stage="music"), progress=False)
    res = r.invoke(
        app,
        [
            "vae",
            str(toy_shards),
            "--preset",
            "small",
            "--run-dir",
            str(run),
            "--resume",
            "--stage",
            "music",
            "--steps",
            "2",
        ],
    )
    assert res.exit_code == 2 and "preset 'tiny'" in res.output
    res = r.invoke(
        app, ["vae", str(toy_shards), "--preset", "tiny", "--stage", "motion", "--run-dir", str(tmp_path / "r2")]
    )
    assert res.exit_code == 2 and "--init" in res.output


def test_motion_stage_from_init_keeps_music_vae(toy_shards, tmp_path):
    TV.train(cfg(toy_shards, tmp_path / "m", stage="music", motion_steps=0), progress=False)
    music = BiCoRVAE.from_pretrained(tmp_path / "m").music.state_dict()
    TV.train(cfg(toy_shards, tmp_path / "mo", stage="motion", music_steps=0, init=str(tmp_path / "m")), progress=False)
    after = BiCoRVAE.from_pretrained(tmp_path / "mo").music.state_dict()
    assert all(torch.equal(music[k], after[k]) for k in music)


@pytest.mark.slow
def test_torchrun_two_cpu_processes(toy_shards, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "momu_models.cli.train",
        "vae",
        str(toy_shards),
        "--preset",
        "tiny",
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--crop-seconds",
        "1",
        "--run-dir",
        str(run),
        "--device",
        "cpu",
    ]
    # Own process group: on a timeout the workers are killed too, not left orphaned.
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, err[-3000:]
    assert (run / "model.safetensors").exists()
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
    thr = [r["clips_per_s"] for r in rows if "clips_per_s" in r]
    assert len(thr) >= 2
    model = BiCoRVAE.from_pretrained(run)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


# --------------------------------------------------------------------------- --config FILE


def fake_train(monkeypatch, module) -> list:
    """Replace module.train by one that records the config it is given."""
    seen = []
    monkeypatch.setattr(module, "train", lambda cfg, progress=True: seen.append(cfg) or {"loss": 1.0})
    return seen


def test_config_file_under_command_line_over_defaults(tmp_path, monkeypatch):
    seen = fake_train(monkeypatch, TV)
    f = tmp_path / "vae.json"
    f.write_text(
        json.dumps(
            {
                "batch_size": 3,
                "lr": 1,
                "music_steps": 7,
                "warmup_steps": 5,
                "stage": "music",
                "motion_lr": None,
                "contrast_weight": 0.5,
            }
        )
    )
    r = CliRunner()
    # --batch-size 8 equals the default but is given: it wins over the file's 3
    res = r.invoke(
        app,
        [
            "vae",
            "shards",
            "--config",
            str(f),
            "--lr",
            "0.5",
            "--batch-size",
            "8",
            "--contrast-weight",
            "0.2",
            "--run-dir",
            str(tmp_path / "run"),
        ],
    )
    assert res.exit_code == 0, res.output
    cfg = seen.pop()
    assert (cfg.batch_size, cfg.lr, cfg.contrast_weight, cfg.run_dir) == (8, 0.5, 0.2, str(tmp_path / "run"))
    assert (cfg.music_steps, cfg.motion_steps, cfg.warmup_steps) == (7, 2000, 5)
    assert (cfg.stage, cfg.motion_lr) == ("music", None)
    assert cfg.crop_seconds == 4.0 and cfg.resume is False  # neither given: the defaults
    # the file's integer for a float field arrives as a float, as the command line gives it
    res = r.invoke(app, ["vae", "shards", "--config", str(f)])
    cfg = seen.pop()
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.batch_size == 3 and cfg.run_dir == "runs/vae"
    # --steps sets both stages over the file; --music-steps over --steps
    res = r.invoke(app, ["vae", "shards", "--config", str(f), "--steps", "9", "--music-steps", "4"])
    cfg = seen.pop()
    assert (cfg.music_steps, cfg.motion_steps) == (4, 9)
    # TOML by suffix
    t = tmp_path / "vae.toml"
    t.write_text('stage = "motion"\ncrop_seconds = 2\nseed = 3\n')
    res = r.invoke(app, ["vae", "shards", "--config", str(t), "--seed", "0", "--resume"])
    assert res.exit_code == 0, res.output
    cfg = seen.pop()
    assert (cfg.stage, cfg.crop_seconds, cfg.seed, cfg.resume) == ("motion", 2.0, 0, True)


def test_config_file_of_each_trainer(tmp_path, monkeypatch):
    r = CliRunner()
    seen = fake_train(monkeypatch, TD)
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"task": "music2motion", "vae": "runs/v", "ema_decay": 0.9, "stats_batches": 2}))
    res = r.invoke(app, ["diffusion", "shards", "--config", str(f), "--ema", "0.99", "--workers", "1"])
    assert res.exit_code == 0, res.output
    cfg = seen.pop()
    assert (cfg.task, cfg.vae, cfg.ema_decay) == ("music2motion", "runs/v", 0.99)
    assert (cfg.num_workers, cfg.stats_batches) == (1, 2)
    assert "finished: runs/music2motion/model.safetensors" in res.output  # the default run folder follows the task
    res = r.invoke(app, ["diffusion", "shards", "--config", str(f), "--task", "motion2music", "--vae", "x"])
    cfg = seen.pop()
    assert (cfg.task, cfg.vae) == ("motion2music", "x")
    res = r.invoke(app, ["diffusion", "shards"])  # a task from nowhere
    assert res.exit_code == 2 and "missing option --task" in res.stderr and not seen
    seen = fake_train(monkeypatch, TC)
    f.write_text(json.dumps({"label": "style", "augment": False, "steps": 5}))
    res = r.invoke(app, ["classifier", "shards", "--config", str(f), "--steps", "6"])
    assert res.exit_code == 0, res.output
    cfg = seen.pop()
    assert (cfg.label, cfg.augment, cfg.steps, cfg.batch_size) == ("style", False, 6, 16)


def test_config_file_errors_are_one_line(tmp_path, monkeypatch):
    seen = fake_train(monkeypatch, TV)
    r = CliRunner()
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"lr": 1e-3, "warmup": 5, "shards": "x", "resume": True}))
    res = r.invoke(app, ["vae", "shards", "--config", str(f)])
    known = ", ".join(setting_names(TV.VAETrainConfig))
    assert res.exit_code == 2 and not seen
    assert res.stderr.strip() == f"error: unknown setting(s) resume, shards, warmup; known: {known}"
    assert "shards" not in known.split(", ") and "run_dir" not in known and "resume" not in known
    f.write_text(json.dumps({"batch_size": "8"}))
    res = r.invoke(app, ["vae", "shards", "--config", str(f)])
    assert res.exit_code == 2 and "setting batch_size must be int, not '8'" in res.stderr
    f.write_text("[1, 2]")
    res = r.invoke(app, ["vae", "shards", "--config", str(f)])
    assert res.exit_code == 2 and "one object of settings" in res.stderr
    (tmp_path / "s.yaml").write_text("lr: 1")
    res = r.invoke(app, ["vae", "shards", "--config", str(tmp_path / "s.yaml")])
    assert res.exit_code == 2 and ".json or .toml" in res.stderr
    res = r.invoke(app, ["vae", "shards", "--config", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and not seen


def test_trainer_configs_share_train_args(tmp_path):
    shared = {f.name: f.default for f in dataclasses.fields(TrainArgs)}
    for cls in (TV.VAETrainConfig, TD.DiffusionTrainConfig, TC.ClassifierTrainConfig):
        assert issubclass(cls, TrainArgs) and shared.keys() <= {f.name for f in dataclasses.fields(cls)}
    # the defaults each trainer has always had (train_config.json and --resume compare them)
    assert TD.DiffusionTrainConfig().run_dir is None and TD.DiffusionTrainConfig().lr is None
    assert TC.ClassifierTrainConfig().batch_size == 16 and TV.VAETrainConfig().lr == 2e-4
    f = tmp_path / "settings.py"
    f.write_text("steps = 3\n")
    with pytest.raises(ValueError, match=r"use a \.json or \.toml file"):
        read_settings(f, TV.VAETrainConfig)


def test_cli_trains_from_a_config_file_and_resumes(toy_shards, tmp_path):
    """What the recipe runner runs: `momu-train vae SHARDS --config FILE --run-dir DIR [--resume]`."""
    f = tmp_path / "vae.json"
    f.write_text(
        json.dumps(
            {
                "preset": "tiny",
                "music_steps": 2,
                "motion_steps": 2,
                "batch_size": 4,
                "crop_seconds": 1.0,
                "val_batches": 1,
                "warmup_steps": 1,
            }
        )
    )
    run = tmp_path / "run"
    r = CliRunner()
    res = r.invoke(app, ["vae", str(toy_shards), "--config", str(f), "--run-dir", str(run)])
    assert res.exit_code == 0, res.output
    saved = json.loads((run / "train_config.json").read_text())
    assert (saved["preset"], saved["music_steps"], saved["crop_seconds"], saved["val_every"]) == ("tiny", 2, 1.0, 250)
    res = r.invoke(app, ["vae", str(toy_shards), "--config", str(f), "--run-dir", str(run), "--resume"])
    assert res.exit_code == 0, res.output
    assert BiCoRVAE.from_pretrained(run).config_extra["steps"] == 4


def test_conv_padding_setting_and_zero_padded_runs(toy_shards, tmp_path):
    """`conv_padding` reproduces the zero-padded runs of before; continuing such a run with
    the presets' replicate padding is refused with the way out, and works when asked for."""
    from momu_models.train.loop import TrainError

    def cfg(run, **kw):
        base = dict(shards=str(toy_shards), preset="tiny", batch_size=4, crop_seconds=1.0, val_batches=1)
        return TV.VAETrainConfig(run_dir=str(run), **{**base, **kw})

    TV.train(cfg(tmp_path / "old", stage="music", music_steps=2, conv_padding="zeros"), progress=False)
    assert BiCoRVAE.from_pretrained(tmp_path / "old").cfg.conv_padding == "zeros"
    with pytest.raises(TrainError, match='conv_padding = "zeros"'):
        TV.train(cfg(tmp_path / "new", stage="motion", motion_steps=2, init=str(tmp_path / "old")), progress=False)
    TV.train(
        cfg(tmp_path / "new", stage="motion", motion_steps=2, init=str(tmp_path / "old"), conv_padding="zeros"),
        progress=False,
    )
    assert BiCoRVAE.from_pretrained(tmp_path / "new").cfg.conv_padding == "zeros"
    with pytest.raises(TrainError, match="conv_padding must be"):
        TV.train(cfg(tmp_path / "bad", conv_padding="reflect"), progress=False)
