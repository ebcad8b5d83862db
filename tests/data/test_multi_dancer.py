"""Every dancer of a group video (`--dancers all`): BlazePose decoding, identity-safe
tracking, one item per dancer, and the accuracy against a synthetic group's own truth."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from momu_data.extract import ExtractConfig, dancer_item_id
from momu_data.jobs import extract_dataset
from momu_data.media import load_audio
from momu_data.pose.blazepose import (
    DETECTOR_SIZE,
    NUM_ANCHORS,
    Detection,
    Landmarks,
    decode_detections,
    detection_tiles,
    roi_from_points,
    ssd_anchors,
    weighted_nms,
)
from momu_data.pose.multi import parse_dancers
from momu_data.pose.tracking import MultiPoseTracker
from momu_data.shards import write_shards
from momu_data.synth.group import (
    evaluate_group,
    load_group_gt,
    make_group_clip,
    match_track,
    render_group_frames,
    synthesize_group_one,
)

# -- the detector's decoding -------------------------------------------------------------


def test_anchors_follow_mediapipes_ssd_layout():
    a = ssd_anchors()
    assert a.shape == (NUM_ANCHORS, 2) == (2254, 2)
    # stride 8: 28x28 cells, 2 anchors each; stride 16: 14x14 x 2; three stride-32 layers: 7x7 x 6.
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28])  # row-major: x advances first
    np.testing.assert_allclose(a[56], [0.5 / 28, 1.5 / 28])
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14])
    np.testing.assert_allclose(a[1960:1966], np.tile([0.5 / 7, 0.5 / 7], (6, 1)))
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])


def test_detections_decode_against_their_anchor():
    anchors = ssd_anchors()
    raw = np.zeros((NUM_ANCHORS, 12), np.float32)
    logits = np.full(NUM_ANCHORS, -10.0, np.float32)
    j = 1000
    raw[j, :4] = [22.4, -11.2, 44.8, 67.2]  # centre offset (+0.1, -0.05), size 0.2 x 0.3
    raw[j, 4:12] = [0.0, 22.4, 0.0, -44.8, 11.2, 0.0, -11.2, 0.0]
    logits[j] = 2.0
    logits[5] = 0.1  # sigmoid 0.525: kept at 0.5, dropped at 0.6
    boxes, kps, scores = decode_detections(raw, logits, anchors, min_score=0.6)
    assert len(scores) == 1
    cx, cy = anchors[j] + [0.1, -0.05]
    np.testing.assert_allclose(boxes[0], [cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], anchors[j] + [0.0, 0.1], atol=1e-6)
    np.testing.assert_allclose(kps[0, 1], anchors[j] + [0.0, -0.2], atol=1e-6)
    assert scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert len(decode_detections(raw, logits, anchors, min_score=0.5)[2]) == 2
    assert DETECTOR_SIZE == 224


def test_weighted_nms_merges_overlaps_and_keeps_others():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float64)
    kps = np.array([[[0, 0]], [[3, 0]], [[9, 9]]], np.float64)
    out = weighted_nms(boxes, kps, np.array([0.9, 0.3, 0.8]))
    assert len(out) == 2
    box, kp, score = out[0]
    assert score == 0.9
    np.testing.assert_allclose(box, [0.25, 0, 10.25, 10])  # (0.9 * 0 + 0.3 * 1) / 1.2
    np.testing.assert_allclose(kp, [[0.75, 0]])
    np.testing.assert_allclose(out[1][0], boxes[2])


def test_roi_from_points_is_mediapipes_alignment_rect():
    up = roi_from_points((100.0, 200.0), (100.0, 100.0))  # scale point straight above the hips
    assert up.angle == pytest.approx(0.0) and up.size == pytest.approx(250.0)  # 2 x 100 x 1.25
    np.testing.assert_allclose(up.to_image([0.5, 0.0]), [100.0, 75.0])
    np.testing.assert_allclose(up.box(), [-25, 75, 225, 325])
    side = roi_from_points((100.0, 200.0), (200.0, 200.0))  # lying, head to the right
    assert side.angle == pytest.approx(np.pi / 2)
    np.testing.assert_allclose(side.to_image([0.5, 0.0]), [225.0, 200.0], atol=1e-9)


def test_detection_tiles_cover_wide_and_tall_frames():
    assert detection_tiles(384, 384) == [(0, 0, 384, 384)]
    assert detection_tiles(768, 384) == [(0, 0, 384, 384), (192, 0, 384, 384), (384, 0, 384, 384)]
    tall = detection_tiles(360, 640)
    assert tall[0] == (0, 0, 360, 360) and tall[-1] == (0, 280, 360, 360) and len(tall) == 3


def test_parse_dancers():
    assert [parse_dancers(v) for v in ("main", "ALL", "3", " 02 ")] == ["main", "all", "3", "2"]
    for bad in ("0", "-1", "two", ""):
        with pytest.raises(ValueError, match="--dancers"):
            parse_dancers(bad)


def test_dancers_setting_keeps_earlier_digests():
    base = ExtractConfig()
    assert ExtractConfig(dancers="main").digest() == base.digest()  # earlier extractions stay valid
    assert len({base.digest(), ExtractConfig(dancers="all").digest(), ExtractConfig(dancers="2").digest()}) == 3


# -- tracking rules, on a scripted model -------------------------------------------------


def _person(x: float, y: float = 200.0, torso: float = 60.0) -> np.ndarray:
    """14 keypoints of an upright figure with its mid-hip at (x, y)."""
    kp = np.zeros((14, 2), np.float32)
    kp[:, 0] = x
    kp[:, 1] = y - np.linspace(1.5, -1.5, 14) * torso
    kp[1] = (x, y - torso)  # neck
    kp[8], kp[11] = (x - 10, y), (x + 10, y)  # hips
    return kp


class ScriptedModel:
    """detect() returns the people of the current frame; landmarks(roi) returns the person
    whose hips lie nearest the ROI's centre (as a landmark model snaps to the person there)."""

    def __init__(self, frames):
        self.frames, self.i = frames, 0

    def detect(self, rgb):
        return [Detection(np.zeros(4), np.array([[x, 200.0], [x, 80.0]]), 0.9) for x in self.frames[self.i]]

    def landmarks(self, rgb, roi):
        xs = self.frames[self.i]
        x = min(xs, key=lambda v: abs(v - roi.cx)) if xs else roi.cx
        kp = _person(x)
        return Landmarks(kp, np.ones(33), 1.0 if xs else 0.0, roi_from_points((x, 200.0), (x, 80.0)), kp, np.ones(14))


def _run(frames, **kw):
    model = ScriptedModel(frames)
    tracker = MultiPoseTracker(model, detect_every=4, **kw)
    for i in range(len(frames)):
        model.i = i
        tracker.update(i, None)
    return tracker.finish()


def test_tracker_keeps_two_people_apart_and_cuts_a_jump():
    # Two people 400 px apart walking slowly; at frame 10 the left one vanishes and the
    # right one's ROI is nearest... itself; a teleport of the right one at frame 20 is cut.
    frames = [[100.0 + i, 500.0 - i] for i in range(10)] + [[490.0 - i] for i in range(10, 20)]
    frames += [[200.0] for _ in range(20, 30)]
    tracks = _run(frames)
    by_start = [(t.start, len(t.xy), t.end_reason) for t in tracks]
    assert by_start[0] == (0, 10, "jump")  # the left one's ROI snapped onto the right one: cut
    assert by_start[1] == (0, 20, "jump")  # the right one, until it teleports
    assert by_start[2][0] == 20  # a new identity where it reappears
    assert len({t.id for t in tracks}) == len(tracks)


def test_tracker_cuts_both_identities_where_people_overlap():
    # Two people walk into each other and out again: both identities end where their
    # body squares overlap, and nobody starts there until the contested time is over.
    xs = np.concatenate([np.linspace(0, 150, 20), np.linspace(150, 300, 20)])
    frames = [[100.0 + x, 500.0 - x] for x in xs]
    tracks = _run(frames, contest_frames=6)
    first = [t for t in tracks if t.start == 0]
    assert len(first) == 2 and {t.end_reason for t in first} == {"overlap"}
    cut = first[0].start + len(first[0].xy)
    later = [t for t in tracks if t.start > 0]
    assert later and all(t.start >= cut + 6 for t in later)
    for t in tracks:  # no identity ever moves more than a walking step between frames
        xy = np.stack(t.xy)
        assert np.abs(np.diff(xy[:, 8, 0])).max() < 10


def test_tracker_max_people_keeps_the_first_found():
    frames = [[100.0, 400.0, 700.0] for _ in range(6)]
    tracks = _run(frames, max_people=2)
    assert len(tracks) == 2 and all(len(t.xy) == 6 for t in tracks)


# -- a synthetic group, end to end -------------------------------------------------------


def test_tracker_follows_three_rendered_dancers():
    """The real models on one second of three rendered dancers (frames in memory): each
    identity is one dancer throughout, PCK@0.2 >= 0.95 against that dancer's own truth."""
    clip = make_group_clip(0, 1.0, 3, seed=3)
    tracker = MultiPoseTracker()
    for i, img in enumerate(render_group_frames(clip)):
        tracker.update(i, img)
    tracks = tracker.finish()
    gt = {"frame_times": clip.dances[0].times, "keypoints": np.stack([d.keypoints for d in clip.dances])}
    found = {}
    for t in tracks:
        m = match_track(np.stack(t.xy), clip.dances[0].times[t.frames], gt)
        assert m["switches"] == 0 and m["other_dancer_frames"] == 0, m
        found[m["dancer"]] = m
    assert sorted(found) == [0, 1, 2] and len(tracks) == 3
    assert all(len(t.xy) == clip.n_frames for t in tracks)
    assert min(m["pck@0.2"] for m in found.values()) >= 0.95, found


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """Three dancers for 3.5 s, the first two crossing paths, extracted with --dancers all."""
    root = tmp_path_factory.mktemp("group")
    mp4 = synthesize_group_one(0, 3.5, root / "videos", n_dancers=3, seed=3, crossing=True)
    cfg = ExtractConfig(clip_seconds=1.0, dancers="all")
    res = extract_dataset([root / "videos"], root / "data", cfg, n_jobs=1)
    return {"root": root, "mp4": mp4, "res": res, "eval": evaluate_group(root / "data", "group_000", mp4)}


@pytest.mark.slow  # about 15 s of CPU for the module's extraction
def test_group_sidecar_has_each_dancers_truth(group):
    gt = load_group_gt(group["mp4"])
    assert gt["keypoints"].shape == (3, len(gt["frame_times"]), 14, 2)
    assert gt["crossing"][:2] == [0, 1]
    x0 = gt["keypoints"][:, :, 8:12:3, 0].mean(-1)  # mid-hip x per dancer and frame
    assert x0[0, 0] < x0[1, 0] and x0[0, -1] > x0[1, -1]  # dancers 0 and 1 swapped places
    # Each dancer's own truth against itself: PCK 1, no switch.
    m = match_track(gt["keypoints"][2], gt["frame_times"], gt)
    assert m["dancer"] == 2 and m["switches"] == 0 and m["pck@0.2"] == 1.0


@pytest.mark.slow  # about 15 s of CPU for the module's extraction
def test_every_dancer_found_accurately_without_identity_switches(group):
    ev = group["eval"]
    assert set(ev["dancers"]) == {0, 1, 2}
    for k, d in ev["dancers"].items():
        assert d["items"] >= 1, k
        assert d["pck@0.2"] >= 0.95, (k, d)
        assert d["switches"] == 0, (k, d)
        assert d["coverage"] >= 0.4, (k, d)
    for item, r in ev["items"].items():
        assert r["switches"] == 0 and r["other_dancer_frames"] == 0, (item, r)
    assert ev["dancers"][2]["coverage"] >= 0.9  # the dancer nobody crosses: one identity throughout


@pytest.mark.slow  # about 15 s of CPU for the module's extraction
def test_dancer_items_are_named_and_share_the_videos_audio(group):
    data = group["root"] / "data"
    rec = json.loads((data / "items" / "group_000.json").read_text())
    assert rec["status"] == "ok"
    ids = [v["id"] for v in rec["views"]]
    assert ids == [dancer_item_id("group_000", k) for k in range(len(ids))] and len(ids) >= 3
    assert ids[0] == "group_000__dancer0"
    y, a0 = load_audio(group["mp4"])
    for v in rec["views"]:
        item, sr = sf.read(data / "items" / f"{v['id']}.flac", dtype="float32")
        i0 = int(round((v["t0"] - a0) * sr))
        ref = y[i0 : i0 + len(item)]
        assert len(item) > 0.4 * sr and np.abs(item - ref).max() < 1e-3, v["id"]  # PCM-16 of the same samples
        assert 0 < v["detect_rate"] <= 1


@pytest.mark.slow  # about 15 s of CPU for the module's extraction
def test_a_videos_dancers_go_to_one_split(group):
    data = group["root"] / "data"
    clips = pq.read_table(data / "clips.parquet").to_pylist()
    assert {c["job"] for c in clips} == {"group_000"} and len({c["video"] for c in clips}) >= 3
    info = write_shards(data, group["root"] / "shards", ratios=(1, 1, 1), group_by="video")
    used = [s for s, st in info["splits"].items() if st.get("clips")]
    assert len(used) == 1  # grouped by video: all the dancers' clips in one split
