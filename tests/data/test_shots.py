"""Camera cuts: the detector on constructed frames, clips within shots, pose resampling that
never crosses a cut, and a synthetic video with hard cuts between two camera framings
extracted end to end (zero clips across a cut)."""

import json

import numpy as np
import pytest

from momu_data import shots
from momu_data.clips import shot_clips
from momu_data.extract import ExtractConfig, resample_track
from momu_data.pose.track import PoseTrack
from momu_data.synth.cuts import FRAMINGS, framing_matrix, reframe
from momu_data.timebase import FPS


def scene(i: int, size=(96, 128)) -> np.ndarray:
    """A floor, a wall and a 'dancer' (a block swinging fast, half a frame wide)."""
    h, w = size
    img = np.empty((h, w, 3), np.uint8)
    img[: h * 2 // 3] = (200, 190, 215)
    img[h * 2 // 3 :] = (110, 110, 140)
    x = int(w / 2 + 0.2 * w * np.sin(i * 0.9))
    img[h // 4 : h * 3 // 4, max(0, x - 16) : x + 16] = (20, 30, 160)
    return img


def scores_of(frames) -> np.ndarray:
    prev, out = None, []
    for f in frames:
        sig = shots.frame_signature(f)
        out.append(shots.content_score(prev, sig))
        prev = sig
    return np.asarray(out)


def test_detector_finds_hard_cuts_between_framings_and_nothing_else():
    h, w = 96, 128
    mats = [framing_matrix(*FRAMINGS[k % 2], w, h) for k in range(3)]
    cuts = [20, 45]  # frames that start a new shot; 25 frames/s: 0.8 s and 1.0 s apart
    shot = np.searchsorted(cuts, np.arange(70), side="right")
    frames = [reframe(scene(i), mats[shot[i]]) for i in range(70)]
    times = np.arange(70) / 25.0
    s = scores_of(frames)
    assert shots.detect_cuts(times, s).tolist() == cuts
    # The same dance in one framing: fast motion alone is no cut.
    assert shots.detect_cuts(times, scores_of([scene(i) for i in range(70)])).tolist() == []
    # A cut closer than min_shot_seconds to the start (or the last cut) is not one.
    assert shots.detect_cuts(times, s, min_shot_seconds=1.1).tolist() == [45]
    assert shots.shot_spans(70, cuts) == [(0, 20), (20, 45), (45, 70)]


def test_shot_clips_never_span_a_cut_and_record_what_they_drop():
    clips = shot_clips(1000, [300, 700], clip_seconds=2.0, min_seconds=1.0, cut_times=[4.8, 11.2])
    assert [(c["start"], c["end"], c["shot"]) for c in clips] == [
        (0, 125, 0),
        (125, 250, 0),
        (250, 300, 0),  # 0.8 s before the cut: dropped (under 1 s)
        (300, 425, 1),
        (425, 550, 1),
        (550, 675, 1),
        (675, 700, 1),
        (700, 825, 2),
        (825, 950, 2),  # the video's end: 0.8 s dropped silently, as without cuts
    ]
    dropped = [c for c in clips if c.get("reason")]
    assert [(c["start"], c["end"]) for c in dropped] == [(250, 300), (675, 700)]
    assert dropped[0]["reason"] == "cut short by a camera cut at 4.80 s: 0.80 s left (minimum 1 s)"
    # Long enough before the cut: kept, ending at it.
    kept = shot_clips(1000, [300], clip_seconds=2.0, min_seconds=0.5)
    assert (250, 300) in [(c["start"], c["end"]) for c in kept] and not any(c.get("reason") for c in kept)
    # Without cuts: cut_clips' clips.
    assert [(c["start"], c["end"]) for c in shot_clips(300, [], 2.0)] == [(0, 125), (125, 250)]


def test_pose_is_not_interpolated_across_a_cut():
    """Shot 1 films the body at x=100, shot 2 at x=300: no mel frame lies in between, and
    a joint missing at the end of shot 1 is not filled from shot 2."""
    n, fps = 40, 20.0
    times = np.arange(n) / fps
    body = np.random.default_rng(0).uniform(-20, 20, (14, 2))
    xy = np.where(np.arange(n)[:, None, None] < 20, 100.0, 300.0) + body
    conf = np.ones((n, 14), np.float32)
    conf[17:20, 3] = 0  # joint 3 missing over the last frames of shot 1
    tr = PoseTrack(xy.astype(np.float32), conf, times, np.ones(n, bool), 640, 480, meta={"cuts": [1.0]})
    t_mel = np.arange(int(1.95 * FPS)) / FPS
    m = resample_track(tr, ExtractConfig(), t_mel, cuts=[1.0])
    x = m["pose"][..., 0] * m["scale"] + m["centre"][0]  # back to pixels
    shift = x - body[None, :, 0]
    before, after = t_mel < 1.0, t_mel >= 1.0
    np.testing.assert_allclose(shift[before], 100.0, atol=1e-3)  # held at shot 1's last frame, joint 3 too
    np.testing.assert_allclose(shift[after], 300.0, atol=1e-3)
    # Without the cut the same track is interpolated between the framings.
    x0 = resample_track(tr, ExtractConfig(), t_mel)["pose"][..., 0]
    assert np.ptp(x0[before & (t_mel > 0.96), 3]) > 0.1


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory):
    from momu_data.synth.cuts import synthesize_with_cuts

    root = tmp_path_factory.mktemp("cuts")
    return synthesize_with_cuts(1, 4.0, root / "videos", cuts=(1.6, 2.9))


@pytest.mark.slow  # mediapipe on 4 s of video: 16 s on a busy 2-core machine
def test_extracted_clips_never_span_a_camera_cut(cut_video, tmp_path):
    from momu_data.jobs import extract_dataset

    cfg = ExtractConfig(clip_seconds=1.0)
    res = extract_dataset([cut_video.parent], tmp_path / "data", cfg, n_jobs=1)
    gt = json.loads(cut_video.with_suffix(".gt.json").read_text())
    rec = json.loads((tmp_path / "data" / "items" / f"{cut_video.stem}.json").read_text())
    view = rec["views"][0]
    assert rec["status"] == "ok"
    np.testing.assert_allclose(view["cuts"], gt["cuts"], atol=1e-6)  # found on the exact frames
    t0 = view["t0"]
    cut_frames = [(c - t0) * FPS for c in gt["cuts"]]
    for c in res.clips:
        assert not any(c["frame_start"] < f <= c["frame_end"] - 1 for f in cut_frames), c  # zero clips across a cut
    ok = [c for c in res.clips if c["status"] == "ok"]
    assert len(ok) >= 3 and {c["shot"] for c in ok} == {0, 1, 2}
    # 1.6 s -> 2.9 s: one 1 s clip and 0.3 s that the cut at 2.9 s leaves, recorded as dropped.
    dropped = [c for c in res.clips if "camera cut" in c["reason"]]
    assert len(dropped) == 1 and dropped[0]["shot"] == 1 and dropped[0]["status"] == "rejected"
    assert dropped[0]["reason"].startswith("cut short by a camera cut at 2.90 s")
