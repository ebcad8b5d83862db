"""Exports for pose-guided video tools (momu_data.export): the BODY_25 OpenPose JSON read with
plain `json` and back through our OpenPose importer, frame-rate resampling, placement on a
canvas or in a reference dancer's frame, ControlNet's colours in the control frames, csv/npz
with names and units, and `momu-data export` on an extracted item."""

from __future__ import annotations

import csv
import json

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from momu_data.cli.data import app
from momu_data.export import (
    BODY25,
    OPENPOSE_COLOURS,
    OPENPOSE_LIMBS,
    ExportError,
    ExportSettings,
    Placement,
    draw_openpose,
    export_motion,
    fit_placement,
    load_motion,
    retime,
)
from momu_data.pose.importers.openpose import load_openpose
from momu_data.skeleton import JOINTS, J

runner = CliRunner()

# A standing figure in torso units (neck to mid-hip = 1.6 here), x right, y down.
STAND = np.array(
    [
        [0.0, -2.3],
        [0.0, -1.6],
        [-0.45, -1.6],
        [-0.75, -0.9],
        [-0.9, -0.2],
        [0.45, -1.6],
        [0.75, -0.9],
        [0.9, -0.2],
        [-0.3, 0.0],
        [-0.35, 1.0],
        [-0.35, 2.0],
        [0.3, 0.0],
        [0.35, 1.0],
        [0.35, 2.0],
    ]
)


def dance(frames: int = 63, fps: float = 62.5) -> np.ndarray:
    """The figure swaying and travelling: [frames, 14, 2] torso units."""
    t = np.arange(frames)[:, None, None] / fps
    pose = STAND[None] + 0.3 * np.sin(2 * np.pi * 1.5 * t) * np.array([1.0, 0.2])
    pose[:, [J["left_wrist"], J["right_wrist"]], 1] -= 0.8 * np.abs(np.sin(2 * np.pi * t[:, :, 0]))
    return pose


def test_openpose_json_has_the_body25_layout_in_plain_json(tmp_path):
    pose = dance(63)  # 1.008 s at 62.5 frames/s -> 30 frames at 30
    s = ExportSettings.parse(["openpose"], 30, "512x768")
    w = export_motion(pose, tmp_path, "take", s)
    files = sorted((tmp_path / "take_openpose").iterdir())
    assert w["frames"] == 30 and len(files) == 30
    assert [f.name for f in files[:2]] == ["take_000000000000_keypoints.json", "take_000000000001_keypoints.json"]
    px = s.placement(pose).to_pixels(retime(pose, 62.5, 30)[0])
    ours = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]
    assert [BODY25[i] for i in ours] == [
        "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
        "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle",
    ]  # fmt: skip
    for k, f in enumerate(files):
        data = json.loads(f.read_text())  # plain json
        assert data["canvas_width"] == 512 and data["canvas_height"] == 768
        (person,) = data["people"]
        kp = np.array(person["pose_keypoints_2d"], dtype=float).reshape(25, 3)
        assert len(person["pose_keypoints_2d"]) == 75
        assert (kp[ours, 2] == 1).all()
        others = [i for i in range(25) if i not in ours]
        assert (kp[others] == 0).all()  # MidHip, eyes, ears, feet: 0, 0, 0
        np.testing.assert_allclose(kp[ours, :2], px[k], atol=5e-4)  # rounded to 3 decimals
    meta = json.loads((tmp_path / "take_export.json").read_text())
    assert meta["fps"] == 30 and meta["frames"] == 30 and meta["canvas"] == [512, 768]
    assert meta["joints"] == list(JOINTS) and meta["body25_slots"] == ours


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0])
def test_resampling_keeps_the_timing(fps):
    # Motion linear in time is reproduced exactly by the resampler: frame k lies at k / fps.
    t = np.arange(125) / 62.5
    pose = STAND[None] + t[:, None, None] * np.array([0.5, -0.25])
    out, times = retime(pose, 62.5, fps)
    assert len(out) == int(2.0 * fps) and np.allclose(times, np.arange(len(out)) / fps)
    np.testing.assert_allclose(out, STAND[None] + times[:, None, None] * np.array([0.5, -0.25]), atol=1e-5)


def test_round_trip_through_the_openpose_importer(tmp_path):
    pose = dance(94)
    s = ExportSettings.parse(["openpose", "npz"], 25, "640x480")
    export_motion(pose, tmp_path, "rt", s)
    (track,) = load_openpose(tmp_path / "rt_openpose", fps=25, width=640, height=480)
    with np.load(tmp_path / "rt_pose.npz", allow_pickle=False) as z:
        px, times = z["pose_px"], z["times"]
    assert track.meta["format"] == "BODY_25" and len(track) == len(px) == 37
    np.testing.assert_allclose(track.xy, px, atol=5e-4)  # same keypoints within the rounding
    assert (track.conf == 1).all() and track.person.all()
    np.testing.assert_allclose(track.times, times)


def test_fit_placement_fills_the_canvas_within_the_margin():
    pose = dance(63)
    p = fit_placement(pose, (512, 768), margin=0.1)
    px = p.to_pixels(pose)
    lo, hi = px.reshape(-1, 2).min(0), px.reshape(-1, 2).max(0)
    assert (lo >= 51.2 - 1e-6).all() and hi[0] <= 512 - 51.2 + 1e-6 and hi[1] <= 768 - 76.8 + 1e-6
    # Fitted by one side, centred on both.
    assert np.isclose(hi[0] - lo[0], 512 * 0.8) or np.isclose(hi[1] - lo[1], 768 * 0.8)
    assert np.allclose((lo + hi) / 2, [256, 384])


def test_a_reference_frame_is_resized_into_the_canvas_like_its_video():
    ref = Placement(1920, 1080, 200.0, (960.0, 700.0), "reference")
    assert ref.into(None) is ref
    small = ref.into((960, 960))  # half size, letterboxed: 270 px bands above and below
    assert small.scale == 100.0 and small.centre == (480.0, 350.0 + 210.0)
    s = ExportSettings(("csv",), reference=ref)
    assert s.placement(dance(10)) is ref and s.canvas_for(None) == (1920, 1080)


def test_control_frames_use_controlnets_colours(tmp_path):
    px = Placement(512, 768, 110.0, (256.0, 400.0)).to_pixels(STAND)
    img = draw_openpose(px, 512, 768)
    assert img.shape == (768, 512, 3) and img.dtype == np.uint8
    for i, (a, b) in enumerate(OPENPOSE_LIMBS):
        x, y = ((px[a] + px[b]) / 2).astype(int)
        assert tuple(img[y, x]) == tuple(int(c * 0.6) for c in OPENPOSE_COLOURS[i]), JOINTS[b]
    for j in range(14):
        x, y = px[j].astype(int)
        assert tuple(img[y, x]) == OPENPOSE_COLOURS[j], JOINTS[j]
    assert tuple(OPENPOSE_COLOURS[OPENPOSE_LIMBS.index((J["neck"], J["right_shoulder"]))]) == (255, 0, 0)
    assert img[:40].max() == 0  # black, nothing drawn over it

    pose = np.repeat(STAND[None], 20, axis=0)
    s = ExportSettings.parse(["pose-frames", "pose-video"], 25, "512x768")
    s = ExportSettings(s.formats, s.fps, s.canvas, Placement(512, 768, 110.0, (256.0, 400.0), "test"))
    export_motion(pose, tmp_path, "cf", s)
    pngs = sorted((tmp_path / "cf_pose").glob("*.png"))
    assert len(pngs) == 8  # 20 frames at 62.5 = 0.32 s -> 8 at 25
    first = draw_openpose(s.placement(pose).to_pixels(retime(pose, 62.5, 25)[0][0]), 512, 768)
    assert np.array_equal(cv2.imread(str(pngs[0]))[..., ::-1], first)  # lossless
    with av.open(str(tmp_path / "cf_pose.mp4")) as c:
        v = c.streams.video[0]
        assert (v.width, v.height, float(v.average_rate)) == (512, 768, 25.0) and not c.streams.audio
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    assert len(frames) == 8
    x, y = ((px[J["neck"]] + px[J["right_hip"]]) / 2).astype(int)
    assert np.abs(frames[0][y, x].astype(int) - img[y, x]).max() <= 24  # H.264 4:2:0 is lossy


def test_csv_and_npz_name_joints_and_units(tmp_path):
    pose = dance(63)
    s = ExportSettings.parse(["csv,npz"], 24, "512x512")
    export_motion(pose, tmp_path, "n", s)
    with open(tmp_path / "n_pose.csv", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    assert head[:4] == ["frame", "time_s", "nose_x_px", "nose_y_px"] and "left_ankle_y_torso" in head
    assert len(head) == 2 + 14 * 4 and len(rows) == 1 + 24
    with np.load(tmp_path / "n_pose.npz", allow_pickle=False) as z:
        assert list(z["joints"]) == list(JOINTS) and float(z["fps"]) == 24 and list(z["canvas"]) == [512, 512]
        assert any(u.startswith("pose_torso: torso units") for u in z["units"])
        row = np.array(rows[1 + 5][2:], dtype=float)  # rows[0] is the header
        np.testing.assert_allclose(row[:28], z["pose_px"][5].ravel(), atol=1e-3)
        np.testing.assert_allclose(row[28:], z["pose_torso"][5].ravel(), atol=1e-5)
        np.testing.assert_allclose(z["pose_px"], z["pose_torso"] * z["scale"] + z["centre"], atol=1e-3)
        assert float(z["times"][5]) == pytest.approx(float(rows[1 + 5][1]), abs=1e-6) == 5 / 24


def test_bad_options_and_motion_are_one_line_errors(tmp_path):
    cases = [
        (lambda: ExportSettings.parse(["openpose,gif"]), "unknown export format 'gif'"),
        (lambda: ExportSettings.parse([]), "no export format"),
        (lambda: ExportSettings.parse(["csv"], canvas="512"), "WIDTHxHEIGHT"),
        (lambda: ExportSettings.parse(["csv"], fps=0), "positive"),
        (lambda: ExportSettings.parse(["pose-video"], canvas="511x768"), "even canvas"),
        (lambda: ExportSettings.parse(["csv"], reference=tmp_path / "none.mp4"), "no such file"),
        (lambda: export_motion(np.full((5, 14, 2), np.nan), tmp_path, "x", ExportSettings(("csv",))), "NaN"),
        (lambda: load_motion(tmp_path), "not a data folder"),
    ]
    for call, text in cases:
        with pytest.raises(ExportError, match=text) as e:
            call()
        assert "\n" not in str(e.value)


def test_momu_data_export_of_an_extracted_item_reads_back(toy_shards, tmp_path):
    data = toy_shards.parent / "data"  # the session's extracted keypoint-file dances (tests/conftest.py)
    out = tmp_path / "x"
    r = runner.invoke(
        app, ["export", str(data), "--item", "d0", "-f", "openpose", "-f", "npz", "--fps", "25", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["d0_export.json", "d0_openpose", "d0_pose.npz"]
    item = np.load(data / "items" / "d0.npz", allow_pickle=False)["pose"]
    meta = json.loads((out / "d0_export.json").read_text())
    assert meta["canvas"] == [512, 768] and meta["placement"]["how"] == "fit"  # keypoints without a frame size
    assert meta["frames"] == int(len(item) * 25 / 62.5)
    (track,) = load_openpose(out / "d0_openpose", fps=25, width=512, height=768)
    with np.load(out / "d0_pose.npz", allow_pickle=False) as z:
        np.testing.assert_allclose(track.xy, z["pose_px"], atol=5e-4)
        np.testing.assert_allclose(z["pose_torso"][10], item[25], atol=1e-5)  # 0.4 s: frame 10 at 25, 25 at 62.5

    # An item as a reference dancer: its frame size is needed (keypoint files have none).
    npz = str(data / "items" / "d0.npz")
    r = runner.invoke(app, ["export", npz, "--reference-dancer", npz, "-o", str(tmp_path / "y")])
    assert r.exit_code == 2 and "has no frame size" in r.output and "Traceback" not in r.output


def fake_item(data, item_id, pose, **view):
    """An extracted item as `momu-data extract` leaves it: items/<id>.npz and its job's record."""
    (data / "items").mkdir(parents=True, exist_ok=True)
    np.savez(data / "items" / f"{item_id}.npz", pose=pose.astype(np.float32))
    rec = {"id": item_id, "status": "ok", "views": [{"id": item_id, "t0": 0.0, **view}]}
    (data / "items" / f"{item_id}.json").write_text(json.dumps(rec))


def test_extracted_motion_goes_back_to_its_own_pixels_or_a_references(tmp_path):
    data = tmp_path / "data"
    pose = dance(125)
    fake_item(data, "v1", pose, centre=[640.0, 500.0], scale=90.0, width=1280, height=720)
    fake_item(data, "v2", pose, centre=[300.0, 900.0], scale=250.0, width=1080, height=1920)
    (src,) = load_motion(data / "items" / "v1.npz")
    assert src.name == "v1" and src.frame == Placement(1280, 720, 90.0, (640.0, 500.0), "source")
    assert [s.name for s in load_motion(data)] == ["v1", "v2"] and len(load_motion(data, ["v2"])) == 1

    # Its own frame: the pixels the dancer had in the video.
    w = export_motion(src.pose, tmp_path / "a", "v1", ExportSettings(("npz",), fps=62.5), frame=src.frame)
    with np.load(w["npz"], allow_pickle=False) as z:
        assert list(z["canvas"]) == [1280, 720]
        np.testing.assert_allclose(z["pose_px"], pose * 90.0 + [640.0, 500.0], atol=1e-3)
    # v2's dancer as the reference, in a 540x960 canvas (the 1080x1920 frame at half size).
    s = ExportSettings.parse(["npz"], 62.5, "540x960", reference=data / "items" / "v2.npz")
    w = export_motion(src.pose, tmp_path / "b", "v1", s, frame=src.frame)
    with np.load(w["npz"], allow_pickle=False) as z:
        assert list(z["canvas"]) == [540, 960]
        np.testing.assert_allclose(z["pose_px"], pose * 125.0 + [150.0, 450.0], atol=1e-3)
    with pytest.raises(ExportError, match="no finished extraction record"):
        load_motion(tmp_path / "a" / "v1_pose.npz")


def test_an_odd_source_frame_is_padded_for_the_pose_video(tmp_path):
    frame = Placement(301, 401, 50.0, (150.0, 200.0), "source")
    w = export_motion(dance(10), tmp_path, "odd", ExportSettings(("pose-video", "npz"), fps=25), frame=frame)
    with av.open(w["pose-video"]) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (302, 402)
    with np.load(w["npz"], allow_pickle=False) as z:  # every format shares the padded canvas, same pixels
        assert list(z["canvas"]) == [302, 402] and float(z["scale"]) == 50.0 and list(z["centre"]) == [150, 200]
