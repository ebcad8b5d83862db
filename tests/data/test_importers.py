"""Keypoint importers (OpenPose, AlphaPose/COCO, AIST++) and the restricted unpickler."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from media import SHARED_DATA

from momu_data.media import MediaError
from momu_data.pose.importers import find_keypoint_items, load_keypoints
from momu_data.pose.importers.aistpp import load_aistpp, parse_aist_name
from momu_data.pose.importers.coco import image_index, load_coco
from momu_data.pose.importers.openpose import load_openpose
from momu_data.safe_pickle import UnsafePickleError, safe_load
from momu_data.skeleton import J

REAL = SHARED_DATA / "keypoints"


def needs_real(test):
    skip = pytest.mark.skipif(not REAL.is_dir(), reason=f"real keypoint files not present ({REAL})")
    return pytest.mark.shared(skip(test))


# ----------------------------------------------------------------------------- OpenPose


def body25(x0: float, conf: float = 0.9, missing=()) -> list[float]:
    """BODY_25 values with joint k at (x0 + 10k, 100 + 5k); joints in missing are (0,0,0)."""
    out = []
    for k in range(25):
        out += [0.0, 0.0, 0.0] if k in missing else [x0 + 10 * k, 100.0 + 5 * k, conf]
    return out


def write_op(folder: Path, name: str, people: list[list[float]]):
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p} for p in people]}
    (folder / name).write_text(json.dumps(doc))


def test_openpose_mapping_gaps_and_people(tmp_path):
    d = tmp_path / "op"
    write_op(d, "clip_000000000000_keypoints.json", [body25(0)])
    # Two people: the first is more confident, the second has larger coordinates.
    write_op(d, "clip_000000000001_keypoints.json", [body25(0, 0.9, missing={4}), body25(500, 0.5)])
    # Frame 2 has no file (a gap); frame 4 has nobody.
    write_op(d, "clip_000000000003_keypoints.json", [body25(500, 0.6)])
    write_op(d, "clip_000000000004_keypoints.json", [])
    (t,) = load_openpose(d, fps=25, width=1280, height=720)
    assert len(t) == 5 and t.xy.shape == (5, 14, 2) and t.conf.shape == (5, 14)
    np.testing.assert_allclose(t.times, np.arange(5) / 25)
    assert t.person.tolist() == [True, True, False, True, False]
    # BODY_25 maps by index with MidHip (8) dropped: 9 -> right_hip, 14 -> left_ankle.
    np.testing.assert_allclose(t.xy[0, J["nose"]], [0, 100])
    np.testing.assert_allclose(t.xy[0, J["neck"]], [10, 105])
    np.testing.assert_allclose(t.xy[0, J["left_wrist"]], [70, 135])
    np.testing.assert_allclose(t.xy[0, J["right_hip"]], [90, 145])
    np.testing.assert_allclose(t.xy[0, J["left_ankle"]], [140, 170])
    np.testing.assert_allclose(t.conf[0], 0.9, rtol=1e-6)
    # Frame 1 keeps the more confident first person; its right wrist (c == 0) is missing.
    assert t.xy[1, J["nose"], 0] == 0
    assert np.isnan(t.xy[1, J["right_wrist"]]).all() and t.conf[1, J["right_wrist"]] == 0
    assert np.isfinite(t.xy[1, J["right_elbow"]]).all()
    assert t.xy[3, J["nose"], 0] == 500
    for f in (2, 4):
        assert np.isnan(t.xy[f]).all() and (t.conf[f] == 0).all()
    assert (t.width, t.height, t.source, t.view) == (1280, 720, "openpose", "")
    assert t.meta["format"] == "BODY_25" and t.meta["multi_person_frames"] == 1


def test_openpose_numeric_order_start_index_and_num_frames(tmp_path):
    d = tmp_path / "op"
    # Unpadded numbers: "10" sorts before "2" as text, not as frame numbers.
    write_op(d, "v_10_keypoints.json", [body25(10)])
    write_op(d, "v_2_keypoints.json", [body25(2)])
    (t,) = load_openpose(d, fps=10)
    assert len(t) == 11 and np.flatnonzero(t.person).tolist() == [2, 10]
    assert t.xy[2, 0, 0] == 2 and t.xy[10, 0, 0] == 10
    (t,) = load_openpose(d, fps=10, start_index=2, num_frames=12)
    assert len(t) == 12 and np.flatnonzero(t.person).tolist() == [0, 8]
    np.testing.assert_allclose(t.times[[0, 8]], [0.0, 0.8])


def test_openpose_follow_keeps_the_same_person(tmp_path):
    d = tmp_path / "op"
    write_op(d, "a_0_keypoints.json", [body25(100, 0.9), body25(800, 0.5)])
    # Frame 1: the first person moved slightly and is now less confident than the other.
    write_op(d, "a_1_keypoints.json", [body25(800, 0.8), body25(105, 0.4)])
    (t,) = load_openpose(d, fps=30)
    assert t.xy[1, 0, 0] == 800  # largest summed confidence
    (t,) = load_openpose(d, fps=30, follow=True)
    assert t.xy[0, 0, 0] == 100 and t.xy[1, 0, 0] == 105


def test_openpose_coco18_layout(tmp_path):
    d = tmp_path / "op"
    vals = []
    for k in range(18):
        vals += [float(k), 2.0 * k, 0.8]
    write_op(d, "x_0_keypoints.json", [vals])
    (t,) = load_openpose(d, fps=30)
    np.testing.assert_allclose(t.xy[0, :, 0], np.arange(14))  # identity on the first 14
    assert t.meta["format"] == "COCO-18"


def test_openpose_errors(tmp_path):
    d = tmp_path / "bad"
    write_op(d, "v_000000000012_keypoints.json", [body25(0)[:74]])
    with pytest.raises(MediaError, match="openpose: frame 12 has 74 values, expected 75"):
        load_openpose(d, fps=30)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MediaError, match="no keypoints found"):
        load_openpose(empty, fps=30)
    nobody = tmp_path / "nobody"
    write_op(nobody, "v_0_keypoints.json", [])
    write_op(nobody, "v_1_keypoints.json", [body25(0, 0.0)])  # a person with every c == 0
    with pytest.raises(MediaError, match="no keypoints found"):
        load_openpose(nobody, fps=30)
    dup = tmp_path / "dup"
    write_op(dup, "a_0_keypoints.json", [body25(0)])
    write_op(dup, "b_000_keypoints.json", [body25(0)])
    with pytest.raises(MediaError, match="frame 0 appears twice"):
        load_openpose(dup, fps=30)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "v_0_keypoints.json").write_text("{not json")
    with pytest.raises(MediaError, match="frame 0 .*not readable JSON"):
        load_openpose(broken, fps=30)
    with pytest.raises(ValueError, match="fps"):
        load_openpose(d, fps=0)


# ------------------------------------------------------------------------- AlphaPose/COCO


def coco17(x0: float, score: float = 0.9, zero=()) -> list[float]:
    """COCO-17 values with joint k at (x0 + 10k, 200 + 3k); joints in zero have score 0."""
    out = []
    for k in range(17):
        out += [x0 + 10 * k, 200.0 + 3 * k, 0.0 if k in zero else score]
    return out


def test_coco_mapping_selection_and_num_frames(tmp_path):
    kp0 = coco17(0)
    kp0[5 * 3 + 2] = 0.7  # left shoulder less sure: the neck takes the minimum
    entries = [
        {"image_id": "0.jpg", "category_id": 1, "keypoints": kp0, "score": 2.0},
        {"image_id": 1, "category_id": 1, "keypoints": coco17(300), "score": 1.0},
        {"image_id": 1, "category_id": 1, "keypoints": coco17(600), "score": 2.5, "idx": 3},
        {"image_id": "frame_000003.png", "keypoints": coco17(50, zero={5}), "score": 1.5},
    ]
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps(entries))
    (t,) = load_coco(path, fps=20, width=960, height=540, num_frames=6)  # every joint in the frame
    assert len(t) == 6
    np.testing.assert_allclose(t.times, np.arange(6) / 20)
    assert t.person.tolist() == [True, True, False, True, False, False]
    # neck = mid-shoulders (COCO 5, 6); right = COCO's right-side (even) joints.
    np.testing.assert_allclose(t.xy[0, J["neck"]], [55, 216.5])
    assert t.conf[0, J["neck"]] == pytest.approx(0.7)
    np.testing.assert_allclose(t.xy[0, J["right_shoulder"]], [60, 218])
    np.testing.assert_allclose(t.xy[0, J["right_wrist"]], [100, 230])
    np.testing.assert_allclose(t.xy[0, J["right_hip"]], [120, 236])
    np.testing.assert_allclose(t.xy[0, J["left_hip"]], [110, 233])
    np.testing.assert_allclose(t.xy[0, J["left_ankle"]], [150, 245])
    assert t.xy[1, J["nose"], 0] == 600  # the higher-scored detection of image 1
    # Frame 3: left shoulder score 0 -> left shoulder and neck missing.
    for j in ("left_shoulder", "neck"):
        assert np.isnan(t.xy[3, J[j]]).all() and t.conf[3, J[j]] == 0
    assert np.isfinite(t.xy[3, J["right_shoulder"]]).all()
    assert np.isnan(t.xy[[2, 4, 5]]).all() and (t.conf[[2, 4, 5]] == 0).all()
    assert (t.width, t.height, t.source) == (960, 540, "coco")
    assert t.meta["multi_person_frames"] == 1 and t.meta["out_of_range"] == 0
    (t,) = load_coco(path, fps=20)  # without num_frames: up to the last image with an entry
    assert len(t) == 4


@pytest.mark.parametrize(
    "image_id, index",
    [
        (12, 12),
        ("12.jpg", 12),
        ("frame_000012.png", 12),
        ("clips/v3/frame_000012.png", 12),
        ("000007", 7),
        (4.0, 4),
        ("image.jpg", None),
        (True, None),
        (None, None),
    ],
)
def test_image_index(image_id, index):
    assert image_index(image_id) == index


def test_coco_halpe26_uses_the_body_joints(tmp_path):
    kp = coco17(0) + [999.0, 999.0, 0.9] * 9
    path = tmp_path / "halpe.json"
    path.write_text(json.dumps([{"image_id": "0.jpg", "keypoints": kp, "score": 1.0}]))
    (t,) = load_coco(path, fps=30)
    assert np.nanmax(t.xy) < 999


def test_coco_errors(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps([{"image_id": "12.jpg", "keypoints": [0.0] * 54, "score": 1}]))
    with pytest.raises(MediaError, match="has 54 values, expected 51"):
        load_coco(p, fps=30)
    p.write_text("[]")
    with pytest.raises(MediaError, match="no keypoints found"):
        load_coco(p, fps=30)
    p.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(MediaError, match="annotation file"):
        load_coco(p, fps=30)
    p.write_text(json.dumps([{"image_id": "x.jpg", "keypoints": coco17(0)}]))
    with pytest.raises(MediaError, match="without a frame number"):
        load_coco(p, fps=30)
    p.write_text(json.dumps([{"image_id": 9, "keypoints": coco17(0)}]))
    with pytest.raises(MediaError, match="beyond num_frames=5"):
        load_coco(p, fps=30, num_frames=5)


# ---------------------------------------------------------------------------------- AIST++


def write_aist(path: Path, protocol: int = 4) -> dict:
    """3 cameras x 5 frames; camera c at x offset 100c; joint k at (x + 10k, 500 + 2k)."""
    kp = np.zeros((3, 5, 17, 3), np.float32)
    for c in range(3):
        for k in range(17):
            kp[c, :, k] = [100 * c + 10 * k, 500 + 2 * k, 0.8]
    kp[:, :, :, 0] += np.arange(5)[None, :, None]  # moves 1 px per frame
    kp[0, 4] = np.nan  # c01 frame 4: no detection (NaN)
    kp[1, 3] = 0.0  # c02 frame 3: no detection (zeros)
    kp[2, 1, 9, 2] = 0.0  # c03 frame 1: left wrist not detected
    det = np.full((3, 5), 0.9, np.float32)
    det[2, 2] = 0.0  # c03 frame 2: detector score 0
    ts = (np.arange(5) * 1e6 / 60).round().astype(np.int64)
    data = {"keypoints2d": kp, "det_scores": det, "timestamps": ts}
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return data


def test_aistpp_views_masks_and_times(tmp_path):
    path = tmp_path / "gBR_sBM_cAll_d04_mBR0_ch01.pkl"
    write_aist(path)
    tracks = load_aistpp(path)
    assert [t.view for t in tracks] == ["c01", "c02", "c03"]
    for t in tracks:
        assert len(t) == 5 and (t.width, t.height, t.source) == (1920, 1080, "aistpp")
        np.testing.assert_allclose(t.times, np.arange(5) / 60, atol=1e-6)
        assert t.meta["genre"] == "gBR" and t.meta["dancer"] == "d04" and t.meta["choreo"] == "ch01"
    c1, c2, c3 = tracks
    assert c1.person.tolist() == [True, True, True, True, False]
    assert c2.person.tolist() == [True, True, True, False, True]
    assert c3.person.tolist() == [True, True, False, True, True]
    assert np.isnan(c1.xy[4]).all() and (c3.conf[2] == 0).all() and np.isnan(c3.xy[2]).all()
    # c02 frame 1: x = 100 + 10k + 1; neck = mid of COCO 5 and 6.
    np.testing.assert_allclose(c2.xy[1, J["neck"]], [100 + 55 + 1, 511])
    np.testing.assert_allclose(c2.xy[1, J["right_hip"]], [100 + 120 + 1, 524])
    np.testing.assert_allclose(c2.conf[1], 0.8, rtol=1e-6)
    assert np.isnan(c3.xy[1, J["left_wrist"]]).all() and c3.conf[1, J["left_wrist"]] == 0
    assert c1.meta["camera"] == "c01" and c1.meta["video"] == "gBR_sBM_c01_d04_mBR0_ch01"


def test_out_of_range_joints_are_missing_in_every_importer(tmp_path):
    """Issue 16: a joint outside the frame (known size), or far outside the track's own
    extent (unknown size), is missing like an undetected one, and counted."""
    d = tmp_path / "op"
    for i in range(6):
        kp = body25(100 + i)
        if i == 2:
            kp[3 * 7 : 3 * 7 + 2] = [1e30, -1e30]  # BODY_25 7 = left wrist
        write_op(d, f"v_{i:012d}_keypoints.json", [kp])
    (t,) = load_openpose(d, fps=30)  # no frame size: the track's own extent is the bound
    assert t.meta["out_of_range"] == 1 and t.conf[2, J["left_wrist"]] == 0
    assert np.isnan(t.xy[2, J["left_wrist"]]).all() and np.isfinite(t.xy[[0, 1, 3, 4, 5]]).all()
    (t,) = load_openpose(d, fps=30, width=300, height=300)  # the frame is the bound: all else inside
    assert t.meta["out_of_range"] == 1 and t.person.all()
    # BODY_25 joints 10-14 (x = 200 + i ... 240 + i) lie right of a 200 px frame, but for joint
    # 10 of frame 0 on its edge: 5 * 6 - 1, and the wrist.
    (t,) = load_openpose(d, fps=30, width=200, height=300)
    assert t.meta["out_of_range"] == 5 * 6 - 1 + 1 and np.isnan(t.xy[:, J["left_ankle"]]).all()
    assert np.isfinite(t.xy[0, J["right_knee"]]).all() and np.isfinite(t.xy[:, J["neck"]]).all()
    path = tmp_path / "gBR_sBM_cAll_d04_mBR0_ch01.pkl"
    data = write_aist(path)
    data["keypoints2d"][1, 1, 9, :2] = [5000, 500]  # c02's left wrist right of the 1920 x 1080 frame
    with open(path, "wb") as f:
        pickle.dump(data, f)
    c1, c2, c3 = load_aistpp(path)
    assert c2.meta["out_of_range"] == 1 and np.isnan(c2.xy[1, J["left_wrist"]]).all()
    assert c1.meta["out_of_range"] == c3.meta["out_of_range"] == 0


def test_aistpp_camera_selection_and_fps(tmp_path):
    path = tmp_path / "seq.pkl"  # not an AIST name: loads, without name meta
    write_aist(path)
    assert [t.view for t in load_aistpp(path, cameras=2)] == ["c02"]
    assert [t.view for t in load_aistpp(path, cameras=[1, 3])] == ["c01", "c03"]
    assert [t.view for t in load_aistpp(path, cameras="c03")] == ["c03"]
    (t,) = load_aistpp(path, cameras=1, fps=30)
    np.testing.assert_allclose(t.times, np.arange(5) / 30)
    assert "genre" not in t.meta
    with pytest.raises(ValueError, match="out of range"):
        load_aistpp(path, cameras=4)
    with pytest.raises(ValueError, match="cameras"):
        load_aistpp(path, cameras=0.5)


def test_parse_aist_name():
    assert parse_aist_name("gBR_sBM_cAll_d04_mBR0_ch01") == {
        "genre": "gBR",
        "situation": "sBM",
        "camera": "cAll",
        "dancer": "d04",
        "music": "mBR0",
        "choreo": "ch01",
        "genre_name": "break",
        "situation_name": "basic dance",
    }
    m = parse_aist_name("/data/aist/gHO_sFM_c05_d12_mHO3_ch19.pkl")
    assert (m["genre"], m["situation"], m["camera"], m["music"], m["genre_name"]) == (
        "gHO",
        "sFM",
        "c05",
        "mHO3",
        "house",
    )
    with pytest.raises(ValueError, match="not an AIST sequence name"):
        parse_aist_name("dance_video_01")


def test_aistpp_errors(tmp_path):
    p = tmp_path / "bad.pkl"
    with open(p, "wb") as f:
        pickle.dump({"keypoints2d": np.zeros((3, 5, 18, 3), np.float32)}, f)
    with pytest.raises(MediaError, match=r"keypoints2d has shape \(3, 5, 18, 3\)"):
        load_aistpp(p)
    p.write_bytes(b"not a pickle")
    with pytest.raises(MediaError, match="aistpp: unreadable pickle"):
        load_aistpp(p)
    marker = tmp_path / "pwned"
    p.write_bytes(pickle.dumps(_Evil(f"touch {marker}")))
    with pytest.raises(MediaError, match="unsafe pickle.*system"):
        load_aistpp(p)
    assert not marker.exists()


# ------------------------------------------------------------------------------ safe_pickle


class _Evil:
    """Pickles as a call to os.system; only ever dumped, never loaded with pickle."""

    def __init__(self, cmd: str):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _EvalEvil:
    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


class _Plain:
    pass


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_safe_load_numpy_and_containers(tmp_path, protocol):
    data = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        "strided": np.arange(10.0)[::3],
        "bool": np.array([True, False]),
        "rec": np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "scalar": np.float32(1.5),
        "zero_d": np.array(7),
        "od": collections.OrderedDict(a=1, b=[1, 2]),
        "misc": (b"\x00\xff", {1, 2}, frozenset({3}), 1 + 2j, None, True, "text", range(3), slice(1, 2)),
    }
    path = tmp_path / f"p{protocol}.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    out = safe_load(path)
    assert set(out) == set(data)
    for k in ("f32", "fortran", "strided", "bool", "rec", "zero_d"):
        assert out[k].dtype == data[k].dtype
        np.testing.assert_array_equal(out[k], data[k])
    assert out["scalar"] == np.float32(1.5) and type(out["scalar"]) is np.float32
    assert out["od"] == data["od"] and isinstance(out["od"], collections.OrderedDict)
    assert out["misc"] == data["misc"]
    # A file object and in-memory bytes load the same way.
    with open(path, "rb") as f:
        assert safe_load(f)["f32"].shape == (3, 4)
    assert safe_load(path.read_bytes())["zero_d"] == 7


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_safe_load_refuses_code_execution(tmp_path, protocol):
    marker = tmp_path / "pwned"
    cases = [
        (_Evil(f"touch {marker}"), "system"),
        (_EvalEvil(f"open({str(marker)!r}, 'w').close()"), "builtins.eval"),
        (_Plain(), "_Plain|copyreg._reconstructor"),  # protocols 0-1 name copyreg first
        ({"ok": np.zeros(2), "bad": _Evil(f"touch {marker}")}, "system"),
    ]
    for obj, name in cases:
        blob = pickle.dumps(obj, protocol=protocol)
        with pytest.raises(UnsafePickleError, match=name):
            safe_load(io.BytesIO(blob))
        assert not marker.exists()


def test_safe_load_refuses_hand_written_globals():
    # Protocol-0 GLOBAL opcodes written by hand (no class of ours involved).
    for blob, name in [
        (b"cos\nsystem\n(S'echo pwned'\ntR.", "os.system"),
        (b"cbuiltins\ngetattr\n(cbuiltins\nobject\nS'__subclasses__'\ntR.", "builtins.getattr"),
        (b"c__builtin__\neval\n(S'1+1'\ntR.", "builtins.eval"),  # Python 2 spelling
        (b"c_codecs\nencode\n(S'abc'\nS'rot13'\ntR.", "rot13"),
    ]:
        with pytest.raises(UnsafePickleError, match=name):
            safe_load(blob)
    assert issubclass(UnsafePickleError, pickle.UnpicklingError)


# --------------------------------------------------------------------- dispatch and search


def test_load_keypoints_dispatch_and_find_items(tmp_path):
    write_op(tmp_path / "a", "v_0_keypoints.json", [body25(0)])
    write_op(tmp_path / "b" / "sub", "w_0_keypoints.json", [body25(0)])
    (tmp_path / "res.json").write_text(json.dumps([{"image_id": 0, "keypoints": coco17(0), "score": 1}]))
    write_aist(tmp_path / "b" / "gBR_sBM_cAll_d04_mBR0_ch01.pkl")
    assert find_keypoint_items("openpose", tmp_path) == [
        (tmp_path / "a").resolve(),
        (tmp_path / "b" / "sub").resolve(),
    ]
    assert find_keypoint_items("openpose", tmp_path / "a" / "v_0_keypoints.json") == [(tmp_path / "a").resolve()]
    # The OpenPose per-frame files are not COCO results.
    assert find_keypoint_items("coco", [tmp_path, tmp_path / "res.json"]) == [(tmp_path / "res.json").resolve()]
    assert find_keypoint_items("aistpp", str(tmp_path)) == [
        (tmp_path / "b" / "gBR_sBM_cAll_d04_mBR0_ch01.pkl").resolve()
    ]
    with pytest.raises(FileNotFoundError):
        find_keypoint_items("coco", tmp_path / "missing")
    with pytest.raises(ValueError, match="not a .pkl file"):
        find_keypoint_items("aistpp", tmp_path / "res.json")
    with pytest.raises(ValueError, match="unknown keypoint source 'mediapipe'"):
        find_keypoint_items("mediapipe", tmp_path)

    assert len(load_keypoints("openpose", tmp_path / "a", fps=30)[0]) == 1
    assert load_keypoints("coco", tmp_path / "res.json", fps=30, num_frames=3)[0].person.tolist() == [
        True,
        False,
        False,
    ]
    assert len(load_keypoints("aistpp", tmp_path / "b" / "gBR_sBM_cAll_d04_mBR0_ch01.pkl", cameras=[2])) == 1
    with pytest.raises(ValueError, match="expected one of openpose, coco, aistpp"):
        load_keypoints("vitpose", tmp_path)


# ------------------------------------------------------------------------------ real files


@needs_real
def test_real_openpose_footskate():
    (t,) = load_keypoints("openpose", REAL / "openpose_body25_footskate_dance", fps=23.976, width=1280, height=720)
    assert len(t) == 69 and t.person.all()
    np.testing.assert_allclose(t.times[-1], 68 / 23.976)
    assert 0 <= np.nanmin(t.xy[..., 0]) and np.nanmax(t.xy[..., 0]) <= 1280
    assert 0 <= np.nanmin(t.xy[..., 1]) and np.nanmax(t.xy[..., 1]) <= 720
    # Upright dancer: neck above the hips in every frame (y grows downwards).
    hips = np.nanmean(t.xy[:, [J["right_hip"], J["left_hip"]], 1], axis=1)
    assert np.all(t.xy[:, J["neck"], 1] < hips)
    # Spot-check the mapping against the file: BODY_25 joint 9 (RHip) -> right_hip.
    raw = json.loads((REAL / "openpose_body25_footskate_dance" / "dance_000000000000_keypoints.json").read_text())
    kp = np.array(raw["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    np.testing.assert_allclose(t.xy[0, J["right_hip"]], kp[9, :2], rtol=1e-6)


@needs_real
def test_real_alphapose_jacky():
    path = REAL / "alphapose_coco17_jacky_dance.json"
    (t,) = load_keypoints("coco", path, fps=29.93)
    assert len(t) == 57 and t.person.all()
    (t,) = load_coco(path, fps=29.93, width=540, height=960, num_frames=65)
    assert len(t) == 65 and t.person[:57].all() and not t.person[57:].any()
    raw = {e["image_id"]: np.array(e["keypoints"]).reshape(17, 3) for e in json.loads(path.read_text())}
    np.testing.assert_allclose(t.xy[10, J["neck"]], raw["10.jpg"][[5, 6], :2].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(t.xy[10, J["right_hip"]], raw["10.jpg"][12, :2], rtol=1e-6)


@needs_real
def test_real_aistpp():
    path = REAL / "aistpp_keypoints2d" / "gBR_sBM_cAll_d04_mBR0_ch01.pkl"
    tracks = load_keypoints("aistpp", path)
    assert [t.view for t in tracks] == [f"c{i:02d}" for i in range(1, 10)]
    for t in tracks:
        assert len(t) == 720 and t.person.all() and (t.width, t.height) == (1920, 1080)
        np.testing.assert_allclose(np.diff(t.times), 1 / 60, atol=2e-6)
        assert t.times[0] == 0 and np.nanmax(t.xy[..., 0]) <= 1920 and np.nanmax(t.xy[..., 1]) <= 1080
        assert t.conf.max() <= 1.0  # the file has confidences up to 1.02
        assert t.meta["genre"] == "gBR" and t.meta["music"] == "mBR0"
    raw = safe_load(path)
    np.testing.assert_allclose(tracks[4].xy[100, J["left_knee"]], raw["keypoints2d"][4, 100, 13, :2])
