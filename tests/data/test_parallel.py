"""Thread budgets of pool workers (momu_data.parallel): each worker's libraries keep to its
share of the cores, and the decoder, scaler and pose model give the same values with it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from momu_data import parallel
from momu_data.parallel import THREADS_ENV, default_jobs, map_unordered, thread_budget

TASKS = Path("/proc/self/task")
needs_proc = pytest.mark.skipif(not TASKS.is_dir(), reason="counts threads in /proc/self/task (Linux)")


def threads_now() -> dict[str, str]:
    """{thread id: name} of this process's threads."""
    out = {}
    for t in TASKS.iterdir():
        try:
            out[t.name] = (t / "comm").read_text().strip()
        except OSError:  # ended meanwhile
            pass
    return out


def report(_item) -> dict:
    """What a worker's libraries are limited to (run in the worker)."""
    from threadpoolctl import threadpool_info

    try:
        import cv2

        cv2_threads = cv2.getNumThreads()
    except ImportError:
        cv2_threads = None
    return {
        "pid": os.getpid(),
        "budget": thread_budget(),
        "env": {v: os.environ.get(v) for v in parallel.NATIVE_THREADS_ENV},
        "blas": sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}),
        "cv2": cv2_threads,
    }


def test_pool_workers_keep_to_their_share_of_the_cores(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    share = max(1, default_jobs() // 2)
    got = list(map_unordered(report, [0, 1], n_jobs=2))
    assert len(got) == 2
    for r in got:
        assert r["pid"] != os.getpid()  # a worker process
        assert r["budget"] == share
        assert set(r["env"].values()) == {str(share)}
        assert r["blas"] in ([], [share])  # every BLAS the worker loaded
        assert r["cv2"] in (None, share)
    # One item runs in this process, with the libraries' defaults.
    (r,) = map_unordered(report, [0], n_jobs=2)
    assert r["pid"] == os.getpid() and r["budget"] is None


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from momu_data.synth import synthesize_one

    return synthesize_one(0, 2.0, tmp_path_factory.mktemp("clip"), seed=0)


@needs_proc
@pytest.mark.parametrize("max_side", [None, 200])  # as decoded, and downscaled by the scaler
def test_a_budget_of_one_decodes_and_scales_on_the_calling_thread_alone(clip, max_side, monkeypatch):
    from momu_data.media import iter_frames

    monkeypatch.delenv(THREADS_ENV, raising=False)
    default = [img for _, img in iter_frames(clip, max_side=max_side)]
    monkeypatch.setenv(THREADS_ENV, "1")
    before, extra, frames = set(threads_now()), set(), []
    for _, img in iter_frames(clip, max_side=max_side):
        extra |= set(threads_now()) - before
        frames.append(img)
    assert not extra  # no decoder or scaler thread started
    assert len(frames) == len(default) == 60
    assert all(np.array_equal(a, b) for a, b in zip(frames, default))  # the same pixels
    assert frames[0].shape[:2] == ((200, 200) if max_side else (384, 384))


@needs_proc
def test_pose_model_executor_threads_and_landmarks(clip):
    mp = pytest.importorskip("mediapipe")
    from momu_data.media import iter_frames
    from momu_data.pose.mediapipe_pose import MediapipePose
    from momu_data.skeleton import MEDIAPIPE_TO_14, map_keypoints

    frames = [img for _, img in iter_frames(clip)][:20] + [np.zeros((384, 384, 3), np.uint8)]
    ref = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1)
    try:
        expected = []
        for img in frames:
            res = ref.process(img)
            if res.pose_landmarks is None:
                expected.append(None)
                continue
            lm = res.pose_landmarks.landmark
            xy33 = np.array([[p.x * 384, p.y * 384] for p in lm], dtype=np.float32)
            vis33 = np.array([p.visibility for p in lm], dtype=np.float32)
            xy, conf = map_keypoints(xy33, vis33, MEDIAPIPE_TO_14)
            expected.append((xy, np.clip(conf, 0, 1)))
    finally:
        ref.close()
    assert expected[-1] is None and all(e is not None for e in expected[:-1])  # the blank frame has nobody
    before = set(threads_now())
    with MediapipePose(threads=1) as est:
        got = [est(img, (384, 384)) for img in frames]
        started = [name for t, name in threads_now().items() if t not in before]
    assert sum(name.startswith("mediapipe") for name in started) == 1, started  # one graph executor thread
    for g, e in zip(got, expected):
        if e is None:
            assert not g[2] and np.isnan(g[0]).all() and not g[1].any()
        else:  # mediapipe's own Pose.process, mapped to the 14 joints: the same values
            assert g[2] and np.array_equal(g[0], e[0]) and np.array_equal(g[1], e[1])
