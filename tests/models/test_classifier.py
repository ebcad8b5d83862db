"""`momu-train classifier` and the motion encoder: training on tiny hand-made shards beats
chance, unlabelled clips are skipped, kill + resume equals an uninterrupted run, features do
not depend on batching or frame rate, one-line errors; synthetic videos carry their genre."""

import json

import numpy as np
import pytest
import torch
from media import FPS, FREQS, dance_clip, write_label_shards
from safetensors.torch import load_file
from typer.testing import CliRunner

import momu_models.train.classifier as TC
from momu_models.cli.train import app
from momu_models.models.motion_encoder import (
    PRESETS,
    MotionClassifier,
    encode_motions,
    load_classifier,
    motion_features,
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_label_shards(tmp_path_factory.mktemp("labels") / "shards")


def cfg(shards, run, **kw):
    base = dict(
        shards=str(shards),
        run_dir=str(run),
        preset="tiny",
        steps=100,
        batch_size=12,
        crop_seconds=2.0,
        lr=3e-3,
        warmup_steps=1,
        val_every=1000,
        ckpt_every=1000,
        log_every=5,
        shuffle_buffer=50,
    )
    base.update(kw)
    return TC.ClassifierTrainConfig(**base)


def test_label_counts_and_filter(shards):
    counts = TC.label_counts(shards, "train", "genre")
    assert counts == {"slow": 20, "mid": 20, "fast": 20, "": 2}
    keep = TC.HasLabel("genre", ["fast", "mid"])
    assert keep({"meta": {"genre": "fast"}}) and not keep({"meta": {"genre": ""}}) and not keep({"meta": {}})


@pytest.mark.slow
def test_classifier_learns_above_chance_and_loads(shards, tmp_path):
    run = tmp_path / "run"
    torch.manual_seed(0)
    metrics = TC.train(cfg(shards, run), progress=False)
    # 15 val clips, 5 per class: chance (the best constant answer) is 1/3
    assert metrics["clips"] == 15 and metrics["chance"] == pytest.approx(1 / 3)
    assert metrics["acc"] >= 0.8, metrics
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert {"train/loss", "train/acc"} <= set(rows[0]) and "val/acc" in rows[-1] and "val/chance" in rows[-1]
    model = load_classifier(run)
    assert model.classes == ["fast", "mid", "slow"] and model.label == "genre"
    cfgjson = json.loads((run / "config.json").read_text())
    assert cfgjson["classes"] == ["fast", "mid", "slow"] and cfgjson["train_counts"] == {
        "fast": 20,
        "mid": 20,
        "slow": 20,
    }
    saved = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    # the loaded model classifies fresh clips of each class
    rng = np.random.default_rng(123)
    clips = [dance_clip(f, 3.0, rng) for f in FREQS.values() for _ in range(3)]
    _, logits = encode_motions(model, clips, FPS)
    pred = [model.classes[i] for i in logits.argmax(1)]
    assert np.mean([p == c for p, c in zip(pred, [c for c in FREQS for _ in range(3)])]) >= 0.75


def test_kill_and_resume_equals_uninterrupted(shards, tmp_path, monkeypatch):
    TC.train(cfg(shards, tmp_path / "a", steps=8, ckpt_every=4), progress=False)
    full = load_file(str(tmp_path / "a" / "model.safetensors"))
    real_save = TC.save_checkpoint

    def save_then_die(run_dir, step, *a, **kw):
        out = real_save(run_dir, step, *a, **kw)
        if step == 4:
            raise KeyboardInterrupt("killed")
        return out

    monkeypatch.setattr(TC, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        TC.train(cfg(shards, tmp_path / "b", steps=8, ckpt_every=4), progress=False)
    monkeypatch.setattr(TC, "save_checkpoint", real_save)
    TC.train(cfg(shards, tmp_path / "b", steps=8, ckpt_every=4, resume=True), progress=False)
    resumed = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


def test_features_ignore_batching_and_frame_rate():
    from momu_data.features import resample_to_fps

    torch.manual_seed(0)
    model = MotionClassifier(PRESETS["tiny"], ["a", "b"]).eval()
    rng = np.random.default_rng(0)
    poses = [dance_clip(2.0, s, rng) for s in (0.5, 1.3, 3.0, 0.1)]
    together = motion_features(model, poses, FPS, batch_size=4)
    alone = np.stack([motion_features(model, [p], FPS)[0] for p in poses])
    assert together.shape == (4, PRESETS["tiny"].dim)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    p30 = dance_clip(1.0, 2.0, rng)[::2]  # any [T, 14, 2]; call it 31.25 fps
    np.testing.assert_allclose(
        motion_features(model, [p30], 31.25),
        motion_features(model, [resample_to_fps(p30, 31.25, FPS)], FPS),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match=r"expected \[T, 14, 2\]"):
        motion_features(model, [np.zeros((10, 13, 2))], FPS)
    with pytest.raises(ValueError, match="2 motions but 1 frame rates"):
        motion_features(model, poses[:2], [30.0])


def test_cli_errors_are_one_line(shards, tmp_path):
    r = CliRunner()
    res = r.invoke(app, ["classifier", str(shards), "--label", "mood", "--preset", "tiny"])
    assert res.exit_code == 2 and "--label must be one of" in res.output
    # every clip has the same dancer: one class
    res = r.invoke(
        app, ["classifier", str(shards), "--label", "dancer", "--preset", "tiny", "-o", str(tmp_path / "r")]
    )
    assert res.exit_code == 2 and "1 class(es)" in res.output and "at least 2" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = r.invoke(app, ["classifier", str(shards), "--label", "style", "--preset", "tiny", "-o", str(tmp_path / "r")])
    assert res.exit_code == 2 and "0 class(es)" in res.output
    res = r.invoke(app, ["classifier", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = r.invoke(app, ["classifier", "--help"])
    assert res.exit_code == 0 and "FID" in res.output and "--label" in res.output


def test_cli_trains(shards, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "classifier",
            str(shards),
            "--preset",
            "tiny",
            "--steps",
            "3",
            "-b",
            "6",
            "--crop-seconds",
            "1",
            "-o",
            str(tmp_path / "run"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "finished" in res.output and (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.slow
def test_synthetic_video_clip_rows_carry_the_genre(tmp_path, monkeypatch):
    """`momu-data extract` of a synthetic video records genre = its music style. The pose
    model is replaced by the video's own ground-truth keypoints (mediapipe is slow)."""
    import pyarrow.parquet as pq

    import momu_data.pose.mediapipe_pose
    from momu_data.cli.data import app as data_app
    from momu_data.pose.track import PoseTrack
    from momu_data.synth import load_gt, synthesize_one

    mp4 = synthesize_one(1, seconds=3.0, out=tmp_path / "videos", seed=0)
    gt = load_gt(mp4)

    def fake_estimate(path, **kw):
        g = load_gt(path)
        n = len(g["frame_times"])
        return PoseTrack(
            xy=g["keypoints"].astype(np.float32),
            conf=np.ones((n, 14), np.float32),
            times=g["frame_times"],
            person=np.ones(n, bool),
            width=g["width"],
            height=g["height"],
        )

    monkeypatch.setattr(momu_data.pose.mediapipe_pose, "estimate_video", fake_estimate)
    res = CliRunner().invoke(
        data_app,
        ["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "data"), "--clip-seconds", "1.5", "-j", "1"],
    )
    assert res.exit_code == 0, res.output
    rows = pq.read_table(tmp_path / "data" / "clips.parquet").to_pylist()
    assert len(rows) == 2 and all(r["genre"] == gt["style"] for r in rows)
    assert gt["style"] in ("four_on_the_floor", "hiphop", "waltz", "latin")
    # a metadata CSV still wins over the sidecar
    from momu_data.jobs import build_jobs

    jobs = build_jobs([tmp_path / "videos"], "mediapipe", None, "", {"synth_001": {"genre": "x", "dancer": "d"}})
    assert jobs[0].labels == {"genre": "x", "dancer": "d"}


def test_mirror_swaps_left_and_right():
    from momu_data.skeleton import JOINTS, MIRROR, J

    assert MIRROR[J["right_wrist"]] == J["left_wrist"] and MIRROR[J["left_knee"]] == J["right_knee"]
    assert MIRROR[J["nose"]] == J["nose"] and MIRROR[J["neck"]] == J["neck"]
    assert [MIRROR[m] for m in MIRROR] == list(range(len(JOINTS)))  # an involution
