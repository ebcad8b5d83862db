"""Cost per extra dancer: multi-person tracking (`--dancers all`) on synthetic videos of 1, 2
and 3 dancers, against the single-person path (`--dancers main`: mediapipe's legacy Pose).

Frames are decoded and downscaled (as extraction does, max_side 640) before timing, so the
figures are the pose stage alone. Both wall time and the process's CPU time are reported:
the benchmark machine is shared, and CPU time is what contention distorts least.

Target (issue 13): each additional dancer costs at most +60% of the single-person time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import append_results


def _frames(video: Path, max_side: int):
    from momu_data.media import iter_frames

    return [img for _, img in iter_frames(video, max_side=max_side)]


def _time(fn, frames) -> tuple[float, float]:
    """(wall ms, CPU ms) per frame of fn over the frames, after one warm-up frame."""
    fn(0, frames[0])
    w, c = time.perf_counter(), time.process_time()
    for i, img in enumerate(frames):
        fn(i, img)
    n = len(frames)
    return 1000 * (time.perf_counter() - w) / n, 1000 * (time.process_time() - c) / n


def measure(seconds: float = 4.0, max_side: int = 640, seed: int = 0) -> dict:
    """{"legacy": (wall, cpu), 1: (wall, cpu, identities), 2: ..., 3: ...} in ms per frame."""
    from momu_data.pose.mediapipe_pose import MediapipePose
    from momu_data.pose.tracking import MultiPoseTracker
    from momu_data.synth.group import synthesize_group_one

    out: dict = {}
    with tempfile.TemporaryDirectory() as td:
        videos = {n: synthesize_group_one(0, seconds, Path(td) / f"d{n}", n, seed=seed) for n in (1, 2, 3)}
        frames = {n: _frames(v, max_side) for n, v in videos.items()}
    with MediapipePose() as est:
        out["legacy"] = _time(lambda i, img: est(img), frames[1])
    for n in (1, 2, 3):
        tracker = MultiPoseTracker()
        wall, cpu = _time(tracker.update, frames[n])
        out[n] = (wall, cpu, len(tracker.finish()))
    out["frames"] = len(frames[1])
    return out


def run(seconds: float = 4.0) -> str:
    m = measure(seconds)
    lw, lc = m["legacy"]
    rows = [("video", f"synthetic 768x384, 30 fps, {seconds:g} s ({m['frames']} frames), decoded at max side 640")]
    rows.append(("single person, legacy Pose (`--dancers main`)", f"{lw:.1f} ms/frame wall, {lc:.1f} ms CPU"))
    for n in (1, 2, 3):
        w, c, ids = m[n]
        rows.append(
            (f"{n} dancer(s), multi-person tracker", f"{w:.1f} ms/frame wall, {c:.1f} ms CPU ({ids} identities)")
        )
    w1, c1 = m[1][0], m[1][1]
    extra_w, extra_c = (m[3][0] - w1) / 2, (m[3][1] - c1) / 2
    rows.append(
        (
            "each additional dancer",
            f"+{extra_w:.1f} ms wall = +{100 * extra_w / w1:.0f}% of 1 dancer, +{100 * extra_w / lw:.0f}% of legacy;"
            f" CPU +{extra_c:.1f} ms = +{100 * extra_c / c1:.0f}% of 1 dancer, +{100 * extra_c / lc:.0f}% of legacy",
        )
    )
    return append_results(
        "Cost per extra dancer (multi-person tracking)",
        rows,
        "Target: each additional dancer at most +60% of the single-person time; `--dancers main` keeps the legacy"
        " path, so single-person extraction is unchanged.",
    )


if __name__ == "__main__":
    print(run())
