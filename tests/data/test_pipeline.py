"""extract -> shard -> loader on small inputs the tests make: keypoint files (COCO-17,
cheap) for the data flow, tiny videos for bad-input handling."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from media import ROOT, make_coco_item, write_av
from typer.testing import CliRunner

from momu_data.cli.data import app
from momu_data.shards import assign_splits, parse_split

runner = CliRunner()


def extract(args):
    r = runner.invoke(app, ["extract", *map(str, args)])
    assert r.exit_code == 0, r.output + str(r.exception)
    return r


@pytest.fixture(scope="module")
def coco_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    src = root / "src"
    for k in range(6):
        make_coco_item(src, f"dance{k}", seconds=6.0, bpm=100 + 10 * k, seed=k)
    meta = root / "meta.csv"
    meta.write_text("stem,music,genre\n" + "".join(f"dance{k},m{k // 2},g{k % 2}\n" for k in range(6)))
    data = root / "data"
    extract(
        [
            src,
            "--pose-source",
            "coco",
            "--audio",
            src,
            "--fps",
            "30",
            "--out",
            data,
            "--clip-seconds",
            "2",
            "--metadata",
            meta,
            "--dataset",
            "toy",
            "-j",
            "1",
        ]
    )
    return data


def test_extract_manifests_and_alignment(coco_data):
    videos = pq.read_table(coco_data / "videos.parquet").to_pylist()
    clips = pq.read_table(coco_data / "clips.parquet").to_pylist()
    assert len(videos) == 6 and all(v["status"] == "ok" for v in videos)
    assert {v["music"] for v in videos} == {"m0", "m1", "m2"} and videos[0]["dataset"] == "toy"
    assert len(clips) == 18 and all(c["status"] == "ok" for c in clips)  # 3 clips of 2 s per 6 s item
    from momu_data.extract import load_item

    f = load_item(coco_data, "dance0")
    T = f["mel"].shape[1]
    assert f["pose"].shape == (T, 14, 2) and f["dirgram"].shape == (T, 8) and f["flux"].shape == (T,)
    y, sr = sf.read(coco_data / "items" / "dance0.flac")
    assert sr == 16000 and T == 1 + len(y) // 256
    # Rhythm: the wrists reverse on every beat of the 100 BPM clicks.
    beats = np.arange(0.0, 6.0, 0.6)
    hits = [np.min(np.abs(f["kin_beats"] - b)) < 0.07 for b in beats[1:-1]]
    # measured 0.625 (5 of 8) with the picker's 96 ms windows (as long as the 16 kHz onsets');
    # the toy's keypoint jitter makes peaks between the beats, which the 48 ms windows picked
    # by the dozen (44 beats in 6 s, 6 of them hits), these 23 (5 hits)
    assert np.mean(hits) >= 0.6
    assert np.mean([np.min(np.abs(f["onsets"] - b)) < 0.05 for b in beats]) >= 0.9
    # Poses are normalised to torso units around the median mid-hip.
    from momu_data.skeleton import mid_hip, torso_size

    assert np.median(torso_size(f["pose"])) == pytest.approx(1.0, abs=0.05)
    assert np.allclose(np.median(mid_hip(f["pose"]), 0), 0, atol=0.05)


def test_shard_format_split_and_loader(coco_data, tmp_path):
    import webdataset as wds

    out = tmp_path / "shards"
    r = runner.invoke(
        app,
        [
            "shard",
            str(coco_data),
            "--out",
            str(out),
            "--split",
            "60/20/20",
            "--group-by",
            "music",
            "--shard-size",
            "4",
        ],
    )
    assert r.exit_code == 0, r.output
    man = pq.read_table(out / "manifest.parquet").to_pylist()
    assert len(man) == 18
    split_of_music = {}
    for row in man:
        assert split_of_music.setdefault(row["music"], row["split"]) == row["split"]  # no music in two splits
    assert sorted(split_of_music.values()) == ["test", "train", "val"]
    idx = json.loads((out / "train.wids.json").read_text())
    assert sum(s["nsamples"] for s in idx["shardlist"]) == sum(r["split"] == "train" for r in man)
    assert all(s["nsamples"] <= 4 for s in idx["shardlist"])
    tars = sorted((out / "train").glob("*.tar"))
    samples = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False).decode())
    s = samples[0]
    T = s["pose.npy"].shape[0]
    assert "." not in s["__key__"]
    assert s["pose.npy"].shape == (T, 14, 2) and s["pose.npy"].dtype == np.float32
    assert s["conf.npy"].shape == (T, 14) and s["mel.npy"].shape == (80, T) and s["amp.npy"].shape == (T,)
    assert s["dirgram.npy"].shape == (T, 8) and 0 <= s["amp.npy"].min() and s["amp.npy"].max() <= 1
    assert set(s["beats.json"]) == {"kinematic", "onsets"} and s["meta.json"]["fps"] == 62.5
    import io

    y, sr = sf.read(io.BytesIO(s["audio.flac"]))
    assert sr == 16000 and len(y) == T * 256
    # Determinism: the same seed gives the same shards, byte for byte in the manifest.
    out2 = tmp_path / "shards2"
    assert (
        runner.invoke(
            app, ["shard", str(coco_data), "--out", str(out2), "--split", "60/20/20", "--group-by", "music"]
        ).exit_code
        == 0
    )
    man2 = pq.read_table(out2 / "manifest.parquet").to_pylist()
    assert {(m["key"], m["split"]) for m in man2} == {(m["key"], m["split"]) for m in man}
    # The loader yields aligned, padded, cropped batches.
    from momu_data.loader import loader

    batches = list(loader(out, split="train", batch_size=3, crop_frames=64, shuffle=10, seed=1))
    b = batches[0]
    assert b["pose"].shape == (3, 64, 14, 2) and b["mel"].shape == (3, 80, 64) and b["amp"].shape == (3, 64)
    assert b["mask"].all() and sum(len(x["key"]) for x in batches) == sum(r["split"] == "train" for r in man)
    with pytest.raises(ValueError, match="shard root"):
        loader(out)


def test_grouped_split_is_deterministic_and_proportional():
    groups = {f"g{i:02d}": 1.0 for i in range(40)}
    a = assign_splits(groups, parse_split("90/5/5"), seed=3)
    assert a == assign_splits(groups, parse_split("90/5/5"), seed=3)
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 36, "val": 2, "test": 2}
    assert a != assign_splits(groups, parse_split("90/5/5"), seed=4)
    assert parse_split("8/1/1") == pytest.approx((0.8, 0.1, 0.1))
    with pytest.raises(ValueError):
        parse_split("90/10")


def test_group_by_clip_splits_the_clips_of_one_video(coco_data, tmp_path):
    r = runner.invoke(app, ["shard", "--help"], terminal_width=200)
    assert "clip: each clip on its own" in r.output
    out = tmp_path / "shards"
    r = runner.invoke(app, ["shard", str(coco_data), "--out", str(out), "--split", "60/20/20", "--group-by", "clip"])
    assert r.exit_code == 0, r.output
    man = pq.read_table(out / "manifest.parquet").to_pylist()
    counts = {s: sum(m["split"] == s for m in man) for s in ("train", "val", "test")}
    assert len(man) == 18 and counts == {"train": 10, "val": 4, "test": 4}  # 60/20/20 of 18 clips of 2 s
    splits_of_video = {}
    for m in man:
        splits_of_video.setdefault(m["video"], set()).add(m["split"])
    assert any(len(s) > 1 for s in splits_of_video.values())  # a video's clips in two splits
    assert json.loads((out / "info.json").read_text())["group_by"] == "clip"


def test_shard_errors(tmp_path, coco_data):
    r = runner.invoke(app, ["shard", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "run `momu-data extract" in r.output
    r = runner.invoke(app, ["shard", str(coco_data), "--out", str(tmp_path / "s"), "--group-by", "dancer"])
    assert r.exit_code == 2 and "no dancer id" in r.output
    r = runner.invoke(app, ["shard", str(coco_data), "--split", "abc"])
    assert r.exit_code == 2 and "90/5/5" in r.output


def test_bad_inputs_are_recorded_and_run_continues(tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    (vids / "garbage.mp4").write_bytes(os.urandom(5000))
    write_av(vids / "noaudio.mp4", seconds=1.0, audio=False)
    write_av(vids / "novideo.mp4", seconds=1.0, video=False)
    # 1 s each: the pose model finds no one in any frame of noise, however long
    write_av(vids / "noperson.mp4", seconds=1.0)
    good = write_av(vids / "full.mp4", seconds=1.0)
    data = tmp_path / "data"
    r = runner.invoke(app, ["extract", str(vids), "--out", str(data), "-j", "1"])
    # No video has a person: nothing succeeded, so the run fails, but every file has its reason.
    assert r.exit_code == 1
    reasons = {v["id"]: v["reason"] for v in pq.read_table(data / "videos.parquet").to_pylist()}
    assert reasons["garbage"].startswith("unreadable")
    assert reasons["noaudio"] == "no audio stream (pair one with --audio DIR: a file of the same stem)"
    assert reasons["novideo"] == "no video stream"
    assert reasons["noperson"] == "no person found" and reasons["full"] == "no person found"
    # A truncated file is recorded too.
    raw = good.read_bytes()
    (vids / "trunc.mp4").write_bytes(raw[: len(raw) // 3])
    r = runner.invoke(app, ["extract", str(vids / "trunc.mp4"), "--out", str(data), "-j", "1"])
    reasons = {v["id"]: v["reason"] for v in pq.read_table(data / "videos.parquet").to_pylist()}
    assert reasons["trunc"] != "" and len(reasons) == 6


def test_missing_input_and_unknown_source(tmp_path):
    r = runner.invoke(app, ["extract", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such file or folder" in r.output
    r = runner.invoke(app, ["extract", str(tmp_path), "--pose-source", "kinect"])
    assert r.exit_code == 2 and "--pose-source" in r.output


@pytest.mark.slow
def test_resume_after_kill(tmp_path):
    src = tmp_path / "src"
    for k in range(4):
        make_coco_item(src, f"d{k}", seconds=4.0, seed=k)
    data = tmp_path / "data"
    args = [
        sys.executable,
        "-m",
        "momu_data.cli.data",
        "extract",
        str(src),
        "--pose-source",
        "coco",
        "--audio",
        str(src),
        "--out",
        str(data),
        "--clip-seconds",
        "2",
        "-j",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # finished records only: "*.json" alone also matches a record's temporary (.tmp-PID-ID.json,
    # renamed into place when complete), and a kill between its write and rename left no record
    while time.time() < deadline and len(list((data / "items").glob("[!.]*.json"))) < 1 and p.poll() is None:
        time.sleep(0.05)
    p.kill()  # SIGKILL mid-run
    p.wait()
    done_before = {q.name for q in (data / "items").glob("[!.]*.json")}
    assert 1 <= len(done_before) <= 4
    # A stale temporary file as a killed writer leaves it.
    (data / "items" / ".tmp-999-d3.npz").write_bytes(b"partial")
    mtimes = {q.name: q.stat().st_mtime_ns for q in (data / "items").glob("[!.]*.json")}
    r = runner.invoke(
        app,
        [
            "extract",
            str(src),
            "--pose-source",
            "coco",
            "--audio",
            str(src),
            "--out",
            str(data),
            "--clip-seconds",
            "2",
            "-j",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert f"skipping {len(done_before)} finished" in r.output
    assert not list((data / "items").glob(".tmp-*"))
    for name, m in mtimes.items():  # finished records untouched
        assert (data / "items" / name).stat().st_mtime_ns == m
    videos = pq.read_table(data / "videos.parquet").to_pylist()
    assert len(videos) == 4 and all(v["status"] == "ok" for v in videos)
    # Changing a setting that alters the data redoes everything.
    r = runner.invoke(
        app,
        [
            "extract",
            str(src),
            "--pose-source",
            "coco",
            "--audio",
            str(src),
            "--out",
            str(data),
            "--clip-seconds",
            "1",
            "-j",
            "1",
        ],
    )
    assert "skipping" not in r.output
    assert len(pq.read_table(data / "clips.parquet")) == 16


@pytest.mark.slow
def test_dask_local_cluster_matches_joblib(tmp_path):
    src = tmp_path / "src"
    for k in range(2):
        make_coco_item(src, f"d{k}", seconds=4.0, seed=k)
    base = ["--pose-source", "coco", "--audio", str(src), "--clip-seconds", "2"]
    extract([src, *base, "--out", tmp_path / "a", "-j", "2"])
    extract([src, *base, "--out", tmp_path / "b", "-j", "2", "--backend", "dask"])
    from momu_data.extract import load_item

    for k in range(2):
        fa, fb = load_item(tmp_path / "a", f"d{k}"), load_item(tmp_path / "b", f"d{k}")
        assert fa.keys() == fb.keys()
        for key in fa:
            np.testing.assert_array_equal(fa[key], fb[key])
    ca = pq.read_table(tmp_path / "a" / "clips.parquet").to_pylist()
    cb = pq.read_table(tmp_path / "b" / "clips.parquet").to_pylist()
    assert [(c["key"], c["frames"]) for c in ca] == [(c["key"], c["frames"]) for c in cb]
