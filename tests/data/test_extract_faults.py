"""Faults and hostile input in extraction (issue 16): extreme keypoints, a different input
under a finished id, a full or read-only disk, a run killed mid-video, odd file names.
Keypoint items (COCO-17 + click tracks) keep these cheap; the mid-video checkpoint is tested
with a stand-in pose model (the real one in one slow test)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from media import ROOT, make_coco_item
from typer.testing import CliRunner

import momu_data.extract
import momu_data.jobs
import momu_data.pose.mediapipe_pose as mp_pose
from momu_data.cli.data import app
from momu_data.extract import EnvironmentFailure, ExtractConfig, Job, is_done, load_item, run_job
from momu_data.features import blockwise_frames, log_mel, onsets
from momu_data.media import MediaError, iter_frames
from momu_data.pose.importers.coco import load_coco
from momu_data.pose.interpolate import OUTLIER_SPREADS, out_of_range
from momu_data.skeleton import J
from momu_data.timebase import HOP, N_FFT, ONSET_KWARGS, SR

runner = CliRunner()
COCO = ["--pose-source", "coco", "--fps", "30", "--clip-seconds", "2", "-j", "1"]


def extract(*args, code=0):
    r = runner.invoke(app, ["extract", *map(str, args)])
    assert r.exit_code == code, r.output + repr(r.exception)
    return r


def entries(path):
    return json.loads(path.read_text())


# ------------------------------------------------------------------ item 2: extreme values


def corrupt(path, frames, joints, value=1e30):
    """Set COCO joints (x and y) of some frames to value, scores left at 0.9."""
    es = entries(path)
    for i in frames:
        kp = es[i]["keypoints"]
        for j in joints:
            kp[3 * j] = kp[3 * j + 1] = value
    path.write_text(json.dumps(es))


def test_out_of_range_frame_and_robust_bound():
    rng = np.random.default_rng(0)
    xy = rng.normal([300, 200], 40, (50, 14, 2)).astype(np.float32)
    xy[3, 5] = 1e30
    xy[7, 2, 1] = -4e5
    xy[9, 1] = np.nan
    far = out_of_range(xy)
    assert sorted(zip(*np.nonzero(far))) == [(3, 5), (7, 2)]  # NaN is missing, not out of range
    # A dancer crossing the stage is not an outlier: the spread grows with the travel.
    travel = xy + np.linspace(0, 2000, 50)[:, None, None] * [1, 0]
    travel[3, 5], travel[7, 2] = xy[3, 5], xy[7, 2]
    assert sorted(zip(*np.nonzero(out_of_range(travel)))) == [(3, 5), (7, 2)]
    # With the frame size, the frame is the bound (a joint 1 px outside is out).
    assert out_of_range(np.array([[[10.0, 10.0], [641.0, 10.0]]]), 640, 480).tolist() == [[False, True]]
    assert OUTLIER_SPREADS >= 10  # generous: a bound for garbage, not for poses


def test_huge_coordinates_with_plain_audio_are_missing_not_motion(tmp_path):
    src = tmp_path / "src"
    clean = make_coco_item(src, "clean", seconds=6.0, bpm=100, seed=0)
    make_coco_item(src, "huge", seconds=6.0, bpm=100, seed=0)
    bad_frames = list(range(5, 180, 9))  # 20 of 180 frames: both wrists at 1e30
    corrupt(src / "huge.json", bad_frames, [9, 10])
    corrupt(src / "huge.json", [100], [0, 5, 6])  # and a nose and shoulders once
    (t,) = load_coco(src / "huge.json", fps=30)  # no frame size: the track's own extent
    assert t.meta["out_of_range"] == 2 * len(bad_frames) + 4  # nose, 2 shoulders, the neck made of them
    assert np.isnan(t.xy[5, J["left_wrist"]]).all() and t.conf[5, J["left_wrist"]] == 0
    assert np.isfinite(t.xy[6]).all() and np.nanmax(np.abs(t.xy)) < 1000
    cfg = ExtractConfig(pose_source="coco", fps=30, clip_seconds=2)
    recs = {
        n: run_job(Job(n, str(src / f"{n}.json"), str(src / f"{n}.wav")), cfg, tmp_path / "d")
        for n in ("clean", "huge")
    }
    assert all(r["status"] == "ok" for r in recs.values()), recs
    a, b = load_item(tmp_path / "d", "clean"), load_item(tmp_path / "d", "huge")
    assert np.abs(b["pose"]).max() < 5  # torso units: a body, not 6e30
    assert b["interp"].any() and np.abs(b["pose"] - a["pose"]).max() < 1.0
    assert abs(len(b["kin_beats"]) - len(a["kin_beats"])) <= 2 and len(a["kin_beats"]) > 5
    assert clean.exists()


def test_huge_coordinates_in_every_frame_fail_with_the_reason(tmp_path):
    make_coco_item(tmp_path, "x", seconds=2.0, seed=0)
    corrupt(tmp_path / "x.json", range(60), range(17))
    with pytest.raises(MediaError, match=r"^coco: no keypoints found \(\d+ body joints lie outside the track's own"):
        load_coco(tmp_path / "x.json", fps=30)
    # With the frame known (a paired video), the frame is the bound.
    make_coco_item(tmp_path, "y", seconds=2.0, seed=0)
    with pytest.raises(MediaError, match=r"lie outside the 100x100 frame"):
        load_coco(tmp_path / "y.json", fps=30, width=100, height=100)
    (t,) = load_coco(tmp_path / "y.json", fps=30, width=640, height=480)
    assert t.meta["out_of_range"] == 0 and t.person.all()


def test_all_nan_coco_names_the_nan_not_the_scores(tmp_path):
    """Item 9: the scores were 0.9; the coordinates were NaN."""
    make_coco_item(tmp_path, "x", seconds=1.0, seed=0)
    es = entries(tmp_path / "x.json")
    for e in es:
        e["keypoints"] = [float("nan"), float("nan"), 0.9] * 17
    (tmp_path / "x.json").write_text(json.dumps(es))  # json writes NaN, as numpy-based exporters do
    with pytest.raises(MediaError) as exc:
        load_coco(tmp_path / "x.json", fps=30)
    msg = str(exc.value)
    assert msg == "coco: no keypoints found (all 510 scored keypoints have NaN or infinite coordinates)"
    for e in es:
        e["keypoints"] = [1.0, 2.0, 0.0] * 17
    (tmp_path / "x.json").write_text(json.dumps(es))
    with pytest.raises(MediaError, match=r"\(all keypoint scores are 0\)$"):
        load_coco(tmp_path / "x.json", fps=30)


# ------------------------------------------------------------------ item 3: resume identity


def test_other_input_with_a_finished_id_is_refused_not_skipped(tmp_path):
    d1, d2, out = tmp_path / "dir1", tmp_path / "dir2", tmp_path / "data"
    make_coco_item(d1, "x", seconds=3.0, seed=1)
    make_coco_item(d2, "x", seconds=3.0, seed=2)  # same name, other content
    extract(d1, "--audio", d1, "--out", out, *COCO)
    before = (out / "items" / "x.json").read_bytes()
    r = extract(d2, "--audio", d2, "--out", out, *COCO, code=2)
    (line,) = r.output.strip().splitlines()
    assert line.startswith("error: ") and "skipping" not in line
    assert str(d2 / "x.json") in line and str(d1 / "x.json") in line and "another --out" in line
    assert (out / "items" / "x.json").read_bytes() == before
    # The same input again is finished; so is the same content moved to another folder.
    assert "skipping 1 finished of 1" in extract(d1, "--audio", d1, "--out", out, *COCO).output
    d3 = tmp_path / "moved"
    shutil.copytree(d1, d3)
    assert "skipping 1 finished of 1" in extract(d3, "--audio", d3, "--out", out, *COCO).output
    # Changed content at the same path is redone, not skipped and not refused.
    make_coco_item(d1, "x", seconds=4.0, seed=3)
    r = extract(d1, "--audio", d1, "--out", out, *COCO)
    assert "skipping" not in r.output
    rec = json.loads((out / "items" / "x.json").read_text())
    assert rec["identity"]["source"]["size"] == (d1 / "x.json").stat().st_size
    assert pq.read_table(out / "videos.parquet").to_pylist()[0]["path"] == str((d1 / "x.json").resolve())


def test_is_done_checks_settings_content_and_audio(tmp_path):
    make_coco_item(tmp_path / "s", "x", seconds=2.0, seed=0)
    make_coco_item(tmp_path / "s", "other", seconds=2.0, bpm=90, seed=5)  # other clicks
    job = Job("x", str(tmp_path / "s" / "x.json"), str(tmp_path / "s" / "x.wav"))
    cfg = ExtractConfig(pose_source="coco", fps=30, clip_seconds=1)
    assert run_job(job, cfg, tmp_path / "d")["status"] == "ok"
    assert is_done(tmp_path / "d", job, cfg)
    assert not is_done(tmp_path / "d", job, ExtractConfig(pose_source="coco", fps=30, clip_seconds=2))
    assert not is_done(tmp_path / "d", Job("x", job.source, str(tmp_path / "s" / "other.wav")), cfg)
    os.utime(job.source, ns=(1, 1))  # touched, same bytes: still finished (the sha256 decides)
    assert is_done(tmp_path / "d", job, cfg)


# ------------------------------------------------------------------ item 4: the machine's faults


def raise_on(name_part, err):
    def boom(path, *a, **k):
        if name_part in str(path):
            raise OSError(err, os.strerror(err), str(path))
        return boom.real(path, *a, **k)

    return boom


@pytest.mark.parametrize(
    "err, hint",
    [(errno.ENOSPC, "free some space"), (errno.EROFS, "read-only"), (errno.EIO, "input/output error")],
)
def test_disk_faults_stop_the_run_record_nothing_and_a_rerun_completes(tmp_path, monkeypatch, err, hint):
    src, out = tmp_path / "src", tmp_path / "data"
    for k in range(2):
        make_coco_item(src, f"d{k}", seconds=3.0, seed=k)
    boom = raise_on("d1.npz", err)
    boom.real = momu_data.extract.write_bytes
    monkeypatch.setattr(momu_data.extract, "write_bytes", boom)
    r = extract(src, "--audio", src, "--out", out, *COCO, code=1)
    err_line = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert len(err_line) == 1 and os.strerror(err) in err_line[0] and "d1.npz" in err_line[0]
    assert hint in err_line[0] and str(out) in err_line[0]
    assert "Traceback" not in r.output and "ZipFile" not in r.output and "failed" not in r.output
    assert sorted(p.name for p in (out / "items").glob("*.json")) == ["d0.json"]  # d1 not recorded as failed
    monkeypatch.undo()
    r = extract(src, "--audio", src, "--out", out, *COCO)
    assert "skipping 1 finished of 2" in r.output
    assert [v["status"] for v in pq.read_table(out / "videos.parquet").to_pylist()] == ["ok", "ok"]


def test_full_disk_on_the_record_and_the_manifest(tmp_path, monkeypatch):
    src, out = tmp_path / "src", tmp_path / "data"
    make_coco_item(src, "d0", seconds=3.0, seed=0)
    boom = raise_on("d0.json", errno.ENOSPC)
    boom.real = momu_data.extract.write_json
    monkeypatch.setattr(momu_data.extract, "write_json", boom)
    with pytest.raises(EnvironmentFailure, match=r"^No space left on device: .*d0\.json \(extracting .* into"):
        momu_data.jobs.extract_dataset([src], out, ExtractConfig(pose_source="coco", fps=30), audio=src, n_jobs=1)
    assert not (out / "items" / "d0.json").exists()
    monkeypatch.undo()

    def pyarrow_full(data):  # pyarrow's OSError carries no errno, only the text
        raise OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(momu_data.jobs, "compile_manifests", pyarrow_full)
    r = extract(src, "--audio", src, "--out", out, *COCO, code=1)
    (line,) = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: No space left on device (extracting into {out}): free some space")
    assert "Traceback" not in r.output


def test_a_recorded_environment_failure_is_retried(tmp_path):
    src, out = tmp_path / "src", tmp_path / "data"
    make_coco_item(src, "d0", seconds=3.0, seed=0)
    extract(src, "--audio", src, "--out", out, *COCO)
    p = out / "items" / "d0.json"
    rec = json.loads(p.read_text())
    # What runs before the fix recorded for a full disk.
    rec.update(status="failed", views=[], reason="error: OSError: [Errno 28] No space left on device (np.savez)")
    p.write_text(json.dumps(rec))
    r = extract(src, "--audio", src, "--out", out, *COCO)
    assert "skipping" not in r.output and json.loads(p.read_text())["status"] == "ok"
    rec.update(reason="too short: 0.20 s of overlapping audio and video (minimum 1 s)")  # the input's fault
    p.write_text(json.dumps(rec))
    assert "skipping 1 finished of 1" in extract(src, "--audio", src, "--out", out, *COCO, code=1).output


def test_an_input_without_read_permission_is_not_the_inputs_failure(tmp_path, monkeypatch):
    """PyAV's PermissionError on opening an input stops the run (root cannot be denied by
    chmod, so the decoder's open is made to refuse, as it does for other users)."""
    import av

    src, out = tmp_path / "src", tmp_path / "data"
    make_coco_item(src, "d0", seconds=3.0, seed=0)
    real_open = av.open

    def denied(path, *a, **k):
        if str(path).endswith("d0.wav"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(av, "open", denied)
    r = extract(src, "--audio", src, "--out", out, *COCO, code=1)
    (line,) = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: Permission denied: {src / 'd0.wav'} (extracting {src / 'd0.json'} into {out})")
    assert not (out / "items" / "d0.json").exists()
    monkeypatch.undo()
    assert "skipping" not in extract(src, "--audio", src, "--out", out, *COCO).output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: chmod cannot deny it")
def test_read_only_output_folder(tmp_path):
    src, out = tmp_path / "src", tmp_path / "data"
    make_coco_item(src, "d0", seconds=3.0, seed=0)
    (out / "items").mkdir(parents=True)
    (out / "items").chmod(0o555)
    try:
        r = extract(src, "--audio", src, "--out", out, *COCO, code=1)
        assert "Permission denied" in r.output and str(out / "items") in r.output and "Traceback" not in r.output
        assert not list((out / "items").glob("*.json"))
    finally:
        (out / "items").chmod(0o755)
    assert "skipping" not in extract(src, "--audio", src, "--out", out, *COCO).output


# ------------------------------------------------------------------ item 8: long videos


STANDING = 0.8 * np.array(
    [[50, 20], [50, 30], [40, 30], [36, 45], [34, 60], [60, 30], [64, 45], [66, 60], [44, 60], [44, 80], [44, 98]]
    + [[56, 60], [56, 80], [56, 98]]
)


def stand_in_calls(segments: range, per_segment: int = 10, warmup_segments: int = 2) -> int:
    """Pose-model calls of a video of 1 s segments: each segment's frames and its warm-up."""
    return sum(per_segment * (1 + min(k, warmup_segments)) for k in segments)


class StandInPose:
    """A pose model with memory, like mediapipe's tracker: each output depends on the frame
    and on every frame this instance has seen, so a resumed run only matches an
    uninterrupted one if both start their trackers at the same frames."""

    calls = 0
    delay = 0.0

    def __init__(self, model_complexity=1, **kw):
        self.state = 0.0

    def __call__(self, rgb, scale_to=None):
        type(self).calls += 1
        time.sleep(self.delay)
        self.state = 0.8 * self.state + 0.2 * float(rgb.mean()) / 50
        xy = STANDING + self.state + rgb[::7, ::7].mean(axis=(0, 1))[:2] / 100  # inside a 96 x 96 frame
        return xy.astype(np.float32), np.full(14, 0.9, np.float32), True

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.fixture(scope="module")
def clip6(tmp_path_factory):
    from momu_data.synth import synthesize_one

    return synthesize_one(0, 6.0, tmp_path_factory.mktemp("synth"), seed=0, fps=10, width=96, height=96)


def test_seeking_gives_the_frames_of_a_full_decode(clip6):
    full = list(iter_frames(clip6))
    part = list(iter_frames(clip6, start=2.35))
    assert len(full) == 60 and part[0][0] == pytest.approx(2.4)
    for (ta, a), (tb, b) in zip(full[-len(part) :], part):
        assert ta == tb and np.array_equal(a, b)


def test_pose_checkpoint_resumes_mid_video_with_the_same_result(clip6, tmp_path, monkeypatch):
    monkeypatch.setattr(mp_pose, "MediapipePose", StandInPose)
    whole = mp_pose.estimate_video(clip6, segment_seconds=2.0)
    ckpt = tmp_path / "pose.npz"

    def stop_at_45(i):
        if i == 45:
            raise KeyboardInterrupt  # as a user's Ctrl-C: no clean-up of the checkpoint

    with pytest.raises(KeyboardInterrupt):
        mp_pose.estimate_video(clip6, segment_seconds=2.0, checkpoint=ckpt, checkpoint_key="k", on_frame=stop_at_45)
    with np.load(ckpt) as z:
        assert int(z["segment"]) == 2 and len(z["times"]) == 40  # two segments of 2 s at 10 fps kept
    StandInPose.calls = 0
    resumed = mp_pose.estimate_video(clip6, segment_seconds=2.0, checkpoint=ckpt, checkpoint_key="k")
    assert StandInPose.calls == 20 + 20  # the last segment and its 2 s warm-up only
    for k in ("xy", "conf", "person", "times"):
        assert np.array_equal(getattr(whole, k), getattr(resumed, k)), k
    # A checkpoint of other content or settings (another key) is not used.
    StandInPose.calls = 0
    mp_pose.estimate_video(clip6, segment_seconds=2.0, checkpoint=ckpt, checkpoint_key="other")
    assert StandInPose.calls == 60 + 2 * 20


KILL_SCRIPT = """
import sys
sys.path[:0] = [{tests!r}, {tests_data!r}]
import momu_data.pose.mediapipe_pose as mp_pose
from test_extract_faults import StandInPose
StandInPose.delay = 0.05
mp_pose.MediapipePose = StandInPose
from momu_data.cli.data import main
sys.argv = ["momu-data", *sys.argv[1:]]
main()
"""


def test_kill_9_mid_video_then_a_rerun_continues(clip6, tmp_path, monkeypatch):
    src = tmp_path / "v"
    src.mkdir()
    shutil.copy(clip6, src / "long.mp4")
    out = tmp_path / "data"
    args = [src / "long.mp4", "--out", out, "--clip-seconds", "2", "--segment-seconds", "1", "-j", "1"]
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=str(ROOT / "tests"), tests_data=str(ROOT / "tests" / "data")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(
        [sys.executable, str(script), "extract", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt = out / "work" / "long" / "pose.npz"
    deadline = time.time() + 60
    while time.time() < deadline and not ckpt.exists() and p.poll() is None:
        time.sleep(0.02)
    p.kill()  # SIGKILL mid-video
    p.wait()
    assert ckpt.exists() and not (out / "items" / "long.json").exists()
    with np.load(ckpt) as z:
        saved = int(z["segment"])
    assert 1 <= saved < 6
    monkeypatch.setattr(mp_pose, "MediapipePose", StandInPose)
    StandInPose.calls = 0
    extract(*args)
    assert StandInPose.calls == stand_in_calls(range(saved, 6))  # only the segments not saved
    assert not (out / "work" / "long").exists()
    rec = json.loads((out / "items" / "long.json").read_text())
    assert rec["status"] == "ok", rec["reason"]
    # The same result as a run never killed.
    extract(args[0], "--out", tmp_path / "whole", *args[3:])
    a, b = load_item(out, "long"), load_item(tmp_path / "whole", "long")
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.slow
def test_real_pose_model_resumes_with_the_same_result(tmp_path):
    """mediapipe itself: a fresh tracker per segment, warmed up on the frames before it, gives
    the same poses in a resumed run (without the warm-up they differ). 4 s at 5 fps keep the
    model's calls few: 2 segments of 10 frames."""
    pytest.importorskip("mediapipe")
    from momu_data.synth import synthesize_one

    clip = synthesize_one(0, 4.0, tmp_path, seed=0, fps=5, width=96, height=96)
    whole = mp_pose.estimate_video(clip, segment_seconds=2.0)
    ckpt = tmp_path / "pose.npz"

    def stop(i):
        if i == 15:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mp_pose.estimate_video(clip, segment_seconds=2.0, checkpoint=ckpt, checkpoint_key="k", on_frame=stop)
    with np.load(ckpt) as z:
        assert int(z["segment"]) == 1 and len(z["times"]) == 10
    resumed = mp_pose.estimate_video(clip, segment_seconds=2.0, checkpoint=ckpt, checkpoint_key="k")
    assert whole.person.all() and len(whole.times) == 20
    for k in ("xy", "conf", "person", "times"):
        assert np.array_equal(getattr(whole, k), getattr(resumed, k), equal_nan=k == "xy"), k


def test_long_audio_features_in_blocks_match_the_whole(monkeypatch):
    """Memory stays flat in length: long signals are transformed in blocks, same frames."""
    import librosa

    rng = np.random.default_rng(0)
    y = (rng.standard_normal(16000 * 5 + 77) * np.repeat(rng.random(41), 2000)[: 16000 * 5 + 77]).astype(np.float32)
    whole = log_mel(y)
    parts = blockwise_frames(lambda s: log_mel(s), y, HOP, N_FFT, block_seconds=0.7)
    assert parts.shape == whole.shape and np.allclose(parts, whole, atol=1e-5)
    y = np.tile(y, 14)[: 16000 * 65]  # past one 60 s block
    assert np.array_equal(onsets(y), librosa.onset.onset_detect(y=y, sr=SR, units="time", **ONSET_KWARGS))


# ------------------------------------------------------------------ item 9: names starting with '-'


def test_a_name_starting_with_a_dash_goes_after_double_dash(tmp_path, monkeypatch):
    r = runner.invoke(app, ["extract", "--help"], terminal_width=200)
    assert "`--`" in r.output and "-take1.mp4" in r.output
    make_coco_item(tmp_path, "-lead", seconds=3.0, seed=0)
    r = runner.invoke(
        app, ["extract", "--out", str(tmp_path / "d"), *COCO, "--audio", str(tmp_path / "-lead.wav"), "-lead.json"]
    )
    assert r.exit_code == 2 and "No such option" in r.output  # what Click does without `--`
    monkeypatch.chdir(tmp_path)
    extract("--out", tmp_path / "d", *COCO, "--audio", tmp_path / "-lead.wav", "--", "-lead.json")
    assert [v["id"] for v in pq.read_table(tmp_path / "d" / "videos.parquet").to_pylist()] == ["-lead"]
