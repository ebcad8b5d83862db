"""momu-generate --export: generated motion written for pose-guided video tools beside the
sample's own files (momu_data.export; the formats themselves are tested in tests/data/test_export.py)."""

import csv
import json

import numpy as np
import typer
from typer.testing import CliRunner

from momu_data.export import retime
from momu_models.cli.generate import generate

runner = CliRunner()


def invoke(*args):
    app = typer.Typer()
    app.command()(generate)
    return runner.invoke(app, [str(a) for a in args])


def test_generate_exports_openpose_and_csv(runs, tmp_path):
    out = tmp_path / "o"
    r = invoke(
        "--joint", "--length", "1s", "--steps", "2", "--vocoder", "griffinlim", "--checkpoints", runs, "--out", out,
        "--export", "openpose,csv", "--export-fps", "25", "--canvas", "256x384",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "exported 25 frames at 25 fps" in r.output
    pose = np.load(out / "joint_s0_0.npy")  # 63 frames at 62.5 frames/s -> 25 at 25
    files = sorted((out / "joint_s0_0_openpose").glob("*_keypoints.json"))
    assert len(pose) == 63 and len(files) == 25
    kp = np.array(json.loads(files[7].read_text())["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    assert kp[8].tolist() == [0, 0, 0] and (kp[[0, 1, 9, 14], 2] == 1).all()  # MidHip empty; nose, neck, hips, ankle
    assert ((kp[kp[:, 2] == 1, :2] >= 0) & (kp[kp[:, 2] == 1, :2] <= [256, 384])).all()  # fitted into the canvas
    with open(out / "joint_s0_0_pose.csv", newline="") as f:
        rows = list(csv.reader(f))
    torso = np.array(rows[1 + 7][30:], dtype=float).reshape(14, 2)
    np.testing.assert_allclose(torso, retime(pose, 62.5, 25)[0][7], atol=1e-5)
    meta = json.loads((out / "joint_s0_0_export.json").read_text())
    assert meta["canvas"] == [256, 384] and meta["fps"] == 25 and meta["source_fps"] == 62.5


def test_generate_export_option_errors(runs, tmp_path):
    base = ["--joint", "--checkpoints", runs, "--out", tmp_path]
    for extra, text in [
        (["--export", "openpose,gif"], "unknown export format 'gif'"),
        (["--canvas", "512x768"], "go with --export"),
        (["--export", "csv", "--canvas", "big"], "WIDTHxHEIGHT"),
        (["--export", "csv", "--reference-dancer", tmp_path / "none.mp4"], "no such file"),
    ]:
        r = invoke(*base, *extra)
        assert r.exit_code == 2 and text in r.output and "Traceback" not in r.output, r.output
    assert not list(tmp_path.iterdir())  # refused before generating anything
