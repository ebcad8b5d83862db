"""`momu-train vae` on toy shards: training reduces the loss, kill + resume equals an
uninterrupted run, torchrun with 2 CPU processes, loading, and the one-line errors."""
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import momu_models.train.vae as TV
from momu_models.cli.train import app
from momu_models.models.vae import BiCoRVAE

ROOT = Path(__file__).resolve().parents[1]


def cfg(shards, run, **kw):
    base = dict(shards=str(shards), run_dir=str(run), preset="tiny", music_steps=4, motion_steps=4, batch_size=4,
                crop_seconds=1.0, val_every=1000, ckpt_every=2, log_every=1, val_batches=2, warmup_steps=1)
    base.update(kw)
    return TV.VAETrainConfig(**base)


def losses(run, key):
    return [json.loads(line)[key] for line in open(Path(run) / "metrics.jsonl") if key in line]


def test_training_reduces_loss_and_saves_a_loadable_model(toy_shards, tmp_path):
    run = tmp_path / "run"
    metrics = TV.train(cfg(toy_shards, run, music_steps=30, motion_steps=30, lr=3e-3), progress=False)
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
    res = r.invoke(app, ["vae", str(toy_shards), "--preset", "small", "--run-dir", str(run), "--resume",
                         "--stage", "music", "--steps", "2"])
    assert res.exit_code == 2 and "preset 'tiny'" in res.output
    res = r.invoke(app, ["vae", str(toy_shards), "--preset", "tiny", "--stage", "motion", "--run-dir", str(tmp_path / "r2")])
    assert res.exit_code == 2 and "--init" in res.output


def test_motion_stage_from_init_keeps_music_vae(toy_shards, tmp_path):
    TV.train(cfg(toy_shards, tmp_path / "m", stage="music", motion_steps=0), progress=False)
    music = BiCoRVAE.from_pretrained(tmp_path / "m").music.state_dict()
    TV.train(cfg(toy_shards, tmp_path / "mo", stage="motion", music_steps=0, init=str(tmp_path / "m")), progress=False)
    after = BiCoRVAE.from_pretrained(tmp_path / "mo").music.state_dict()
    assert all(torch.equal(music[k], after[k]) for k in music)


def test_torchrun_two_cpu_processes(toy_shards, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "momu_models.cli.train", "vae", str(toy_shards), "--preset", "tiny", "--steps", "3",
           "--batch-size", "2", "--crop-seconds", "1", "--run-dir", str(run), "--device", "cpu"]
    # Own process group: on a timeout the workers are killed too, not left orphaned.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
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
