"""Pure feature functions on hand-made inputs: mel, onsets, directogram, kinematic
amplitude, kinematic beats, interpolation, clip cutting."""

import numpy as np
import pytest
from media import click_track

from momu_data import features
from momu_data import timebase as A
from momu_data.clips import assess_clip, cut_clips
from momu_data.pose.interpolate import fill_missing, missing_mask, nearest_index, normalisation, resample
from momu_data.pose.track import PoseTrack
from momu_data.skeleton import BODY25_TO_14, COCO17_TO_14, J, map_keypoints, torso_size


def test_mel_shape_and_frame_rate():
    sr = A.SR
    y = np.random.default_rng(0).standard_normal(sr * 3).astype(np.float32) * 0.1
    mel = features.log_mel(y)
    assert mel.shape == (80, 1 + len(y) // 256) == (80, 188)
    assert mel.dtype == np.float32
    assert A.FPS == 62.5
    # silence hits the log floor exactly
    assert np.allclose(features.log_mel(np.zeros(sr, np.float32)), np.log(1e-5))
    with pytest.raises(ValueError, match="16000"):
        features.log_mel(y, sr=22050)


def test_mel_puts_a_tone_in_the_right_band():
    import librosa

    t = np.arange(A.SR * 2) / A.SR
    mel = features.log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    freqs = librosa.mel_frequencies(n_mels=80, fmin=0, fmax=8000)
    peak = freqs[np.argmax(mel[:, 20:-20].mean(1))]
    assert abs(peak - 1000) < 80


def test_onsets_on_click_track():
    y, beats = click_track(6.0, 120)
    on = features.onsets(y)
    assert len(on) == len(beats)
    # librosa reports onsets 1-3 frames after the click (flux of centred frames)
    assert np.all(on - beats > -0.01) and np.max(np.abs(on - beats)) < 0.05


def _still(T):
    rng = np.random.default_rng(0)
    return np.repeat(rng.standard_normal((1, 14, 2)), T, axis=0)


def test_directogram_bins_direction_and_magnitude():
    pose = _still(5)
    pose[2:, J["right_wrist"], 0] += 2.0  # wrist moves +x by 2 between frames 1 and 2
    pose[3:, J["left_ankle"], 1] += 0.5  # ankle moves +y (angle pi/2) between 2 and 3
    d = features.directogram(pose, bins=8)
    assert d.shape == (5, 8)
    assert d[2, 0] == pytest.approx(2.0) and d[2].sum() == pytest.approx(2.0)
    assert d[3, 2] == pytest.approx(0.5) and d[3].sum() == pytest.approx(0.5)
    assert d[4].sum() == 0 and np.allclose(d[0], d[1])


def test_directogram_angle_bins_all_directions():
    K = 8
    for k in range(K):
        ang = (k + 0.5) * 2 * np.pi / K
        pose = _still(3)
        pose[2, 0] += [np.cos(ang), np.sin(ang)]
        d = features.directogram(pose, bins=K)
        assert np.argmax(d[2]) == k


def test_kinematic_amplitude_peaks_at_direction_change():
    T = 60
    pose = _still(T)
    x = np.concatenate([np.linspace(0, 1, 31), np.linspace(1, 0, 30)[1:]])[:T]
    pose[:, J["right_wrist"], 0] += np.pad(x, (0, T - len(x)), mode="edge")
    amp = features.kinematic_amplitude(pose)
    assert amp.min() >= 0 and amp.max() == pytest.approx(1.0)
    assert abs(int(np.argmax(amp)) - 31) <= 1  # the reversal frame
    assert features.kinematic_amplitude(_still(10)).max() == 0  # no motion, no amplitude


def test_kinematic_beats_of_periodic_reversals():
    fps, bpm, T = A.FPS, 120, int(8 * A.FPS)
    t = np.arange(T) / fps
    period = 60 / bpm
    tri = np.abs(((t / period) % 2) - 1)  # reverses direction every beat
    pose = _still(T)
    pose[:, J["right_wrist"], 1] += 0.5 * tri
    pose[:, J["left_wrist"], 1] += 0.5 * tri
    beats = features.kinematic_beats(pose, fps)
    expected = np.arange(period, t[-1] - 0.1, period)
    assert len(beats) >= len(expected) - 1
    near = [np.min(np.abs(beats - e)) for e in expected]
    assert np.median(near) < 0.035


def test_one_outlier_frame_does_not_erase_the_kinematic_beats():
    """A single frame far off (a tracking glitch, a decoder artefact) used to dwarf every real
    beat after min-max scaling and leave the peak picker almost nothing; clip_spikes lowers it
    to the tallest regular peak and the beats survive. Envelopes without a spike are untouched."""
    fps, bpm, T = A.FPS, 120, int(10 * A.FPS)
    t = np.arange(T) / fps
    tri = np.abs(((t / (60 / bpm)) % 2) - 1)
    pose = _still(T)
    pose[:, J["right_wrist"], 1] += 0.5 * tri
    pose[:, J["left_ankle"], 0] += 0.3 * tri
    clean = features.kinematic_beats(pose, fps)
    flux = features.kinematic_flux(features.directogram(pose))
    assert np.array_equal(features.clip_spikes(flux), flux)  # nothing to clip: unchanged
    spiked = pose.copy()
    spiked[300] += 5.0  # one frame, every joint 5 torso units off
    kept = features.kinematic_beats(spiked, fps)
    found = [np.min(np.abs(kept - b)) < 0.02 for b in clean]
    assert len(clean) >= 18 and np.mean(found) >= 0.9, (len(clean), len(kept))
    # what min-max scaling alone makes of it
    raw = features.beats_from_envelope(features.normalise01(features.kinematic_flux(features.directogram(spiked))))
    assert len(raw) < 0.3 * len(clean)


def test_resample_to_fps_keeps_duration():
    x = np.random.default_rng(0).standard_normal((30, 14, 2))
    y = features.resample_to_fps(x, 30.0, 62.5)
    assert y.shape[1:] == (14, 2) and y.shape[0] == int(29 / 30 * 62.5) + 1
    assert np.allclose(y[0], x[0], atol=1e-6)


def _track(xy, conf=None, times=None, person=None, w=100, h=100):
    n = len(xy)
    return PoseTrack(
        xy=xy.astype(np.float32),
        conf=(np.ones((n, 14)) if conf is None else conf).astype(np.float32),
        times=np.arange(n) / 10.0 if times is None else times,
        person=np.ones(n, bool) if person is None else person,
        width=w,
        height=h,
    )


def test_interpolation_fills_gaps_linearly():
    n = 11
    xy = np.tile(np.linspace(10, 60, 14)[None, :, None], (n, 1, 2)).astype(np.float32)
    xy[:, J["right_wrist"], 0] = np.arange(n) * 5.0  # moves linearly
    conf = np.ones((n, 14))
    conf[3:7, J["right_wrist"]] = 0.1  # low confidence -> missing
    xy[3:7, J["right_wrist"]] = np.nan
    person = np.ones(n, bool)
    person[9] = False  # no person in frame 9: every joint missing there
    xy[9] = np.nan
    tr = _track(xy, conf, person=person)
    miss = missing_mask(tr, 0.5)
    assert miss[3:7, J["right_wrist"]].all() and miss[9].all() and miss.sum() == 4 + 14
    filled = fill_missing(tr.xy, miss, tr.times)
    assert np.isfinite(filled).all()
    assert np.allclose(filled[:, J["right_wrist"], 0], np.arange(n) * 5.0)
    static = [j for j in range(14) if j != J["right_wrist"]]
    assert np.allclose(filled[9, static], xy[8, static])  # frames 8 and 10 hold equal static joints


def test_outside_frame_counts_as_missing_and_never_seen_joint_goes_to_parent():
    n = 4
    xy = np.full((n, 14, 2), 50.0, np.float32)
    xy[:, J["left_ankle"]] = [50, 150]  # below the 100-pixel frame
    xy[:, J["left_knee"]] = [40, 80]
    tr = _track(xy)
    miss = missing_mask(tr)
    assert miss[:, J["left_ankle"]].all() and miss.sum() == n
    filled = fill_missing(tr.xy, miss, tr.times)
    assert np.allclose(filled[:, J["left_ankle"]], [40, 80])


def test_normalisation_and_resample():
    xy = np.zeros((3, 14, 2), np.float32)
    xy[:, J["neck"]] = [50, 20]
    xy[:, J["right_hip"]] = [40, 60]
    xy[:, J["left_hip"]] = [60, 60]
    centre, scale = normalisation(xy, np.ones(3, bool))
    assert np.allclose(centre, [50, 60]) and scale == pytest.approx(40)
    norm = (xy - centre) / scale
    assert torso_size(norm)[0] == pytest.approx(1.0)
    times = np.array([0.0, 0.1, 0.2])
    v = np.array([0.0, 1.0, 2.0])[:, None]
    out = resample(v, times, np.array([0.05, 0.15, 0.3]))
    assert np.allclose(out[:, 0], [0.5, 1.5, 2.0])  # linear data stays linear; clamped at the end
    assert list(nearest_index(times, np.array([0.01, 0.06, 0.19, 5.0]))) == [0, 1, 2, 2]


def test_keypoint_mappings():
    coco = np.arange(17 * 2, dtype=np.float32).reshape(17, 2)
    c = np.linspace(0.1, 0.9, 17).astype(np.float32)
    xy, conf = map_keypoints(coco, c, COCO17_TO_14)
    assert np.allclose(xy[J["neck"]], (coco[5] + coco[6]) / 2) and conf[J["neck"]] == pytest.approx(min(c[5], c[6]))
    assert np.allclose(xy[J["right_wrist"]], coco[10]) and np.allclose(xy[J["left_ankle"]], coco[15])
    b25 = np.arange(25 * 2, dtype=np.float32).reshape(25, 2)
    xy, _ = map_keypoints(b25, np.ones(25), BODY25_TO_14)
    assert np.allclose(xy[J["right_hip"]], b25[9]) and np.allclose(xy[J["neck"]], b25[1])


def test_cut_clips_policy():
    fps = A.FPS
    T = int(12 * fps)  # 750 frames
    # 312 frames = 4.992 s clips; the 2.0 s remainder is under half a clip: dropped
    assert cut_clips(T, 5.0) == [(0, 312), (312, 624)]
    assert cut_clips(T, 5.0, min_seconds=2.0) == [(0, 312), (312, 624), (624, 750)]
    assert cut_clips(T, 4.0, hop_seconds=2.0)[:2] == [(0, 250), (125, 375)]
    assert cut_clips(T, 4.0, hop_seconds=2.0)[-1][1] == T
    assert cut_clips(100, 10.0) == []  # shorter than half a clip


def test_assess_clip():
    interp = np.zeros((10, 14), bool)
    person = np.ones(10, bool)
    assert assess_clip(interp, person, 0.3, 0.2)["status"] == "ok"
    person[:3] = False
    q = assess_clip(interp, person, 0.3, 0.2)
    assert q["status"] == "rejected" and "no person" in q["reason"] and q["no_person_frac"] == pytest.approx(0.3)
    interp[:, :5] = True
    q = assess_clip(interp, np.ones(10, bool), 0.3, 0.2)
    assert q["status"] == "rejected" and q["interp_frac"] == pytest.approx(5 / 14)


@pytest.mark.slow
def test_two_processes_on_an_empty_numba_cache(tmp_path):
    """Two extraction workers on a fresh clone compile librosa's numba functions into one
    empty cache at once; without features._librosa's lock one of them read the other's
    half-written entries and segfaulted in the peak picker (reproduced 2 of 2 before)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from momu_data import features\n"
        "y = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32)\n"
        "pose = np.random.default_rng(1).standard_normal((190, 14, 2)).astype(np.float32)\n"
        "b = features.clip_beats(pose, y)\n"
        "print(len(b['onsets']), len(b['kinematic']))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-500:] for _, e in outs]
    assert outs[0][0] == outs[1][0] and outs[0][0].strip()  # same beats from both


def test_warm_up_prepares_librosa_under_the_cache_lock(tmp_path, monkeypatch):
    """`features.warm_up` (what `make demo` runs while it draws its videos) does what the
    first feature call of a process does: compiles or loads librosa's numba functions under
    the lock file in NUMBA_CACHE_DIR, once per process."""
    from momu_data import features

    features._librosa()  # compiled in this process with the suite's cache (numba reads the folder at import)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    monkeypatch.setattr(features, "_LIBROSA_READY", False)
    features.warm_up()
    assert features._LIBROSA_READY and (tmp_path / "numba" / ".momu-numba.lock").exists()
    (tmp_path / "numba" / ".momu-numba.lock").unlink()
    features.warm_up()  # ready: the lock is not taken again
    assert not (tmp_path / "numba" / ".momu-numba.lock").exists()
