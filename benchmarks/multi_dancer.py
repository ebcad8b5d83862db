"""Cost per extra dancer: multi-person tracking (`--dancers all`) on synthetic videos of 1, 2
and 3 dancers, against the single-person path (`--dancers main`: mediapipe's legacy Pose).

Frames are decoded and downscaled (as extraction does, max_side 640) before timing, so the
figures are the pose stage alone. Both wall time and the process's CPU time are reported:
the benchmark machine is shared, and CPU time is what contention distorts least. Each
measure is repeated (the repeats interleaved, so a busy spell hits all of them alike) and
the least CPU time of a measure is kept.

One landmark pass (crop, network, decoding) is also timed alone, with the landmark model
pruned to the outputs we read (what the tracker runs) and as the wheel ships it.

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


def _least(runs: list) -> tuple:
    """The run with the least CPU time (index 1) of several."""
    return min(runs, key=lambda r: r[1])


def measure(seconds: float = 4.0, max_side: int = 640, seed: int = 0, repeats: int = 3) -> dict:
    """{"legacy": (wall, cpu), 1: (wall, cpu, identities), 2: ..., 3: ..., "pass": (wall, cpu),
    "pass_full": (wall, cpu)} in ms per frame (per landmark pass for the last two), each the
    least CPU time of `repeats` interleaved runs."""
    from momu_data.pose.blazepose import BlazePose
    from momu_data.pose.mediapipe_pose import MediapipePose
    from momu_data.pose.tracking import MultiPoseTracker
    from momu_data.synth.group import synthesize_group_one

    with tempfile.TemporaryDirectory() as td:
        videos = {n: synthesize_group_one(0, seconds, Path(td) / f"d{n}", n, seed=seed) for n in (1, 2, 3)}
        frames = {n: _frames(v, max_side) for n, v in videos.items()}
    # The regions the tracker's landmark passes crop in the 3-dancer video (frame index, ROI):
    # before update(i), each active identity holds the ROI frame i is cropped at.
    rois = []
    tracker = MultiPoseTracker()
    for i, img in enumerate(frames[3]):
        rois += [(i, t.roi) for t in tracker.active]
        tracker.update(i, img)
    models = {"pass": BlazePose(), "pass_full": BlazePose(prune=False)}
    runs: dict = {k: [] for k in ("legacy", 1, 2, 3, *models)}
    with MediapipePose() as est:
        for _ in range(max(1, repeats)):
            runs["legacy"].append(_time(lambda i, img: est(img), frames[1]))
            for n in (1, 2, 3):
                tracker = MultiPoseTracker()
                wall, cpu = _time(tracker.update, frames[n])
                runs[n].append((wall, cpu, len(tracker.finish())))
            for key, model in models.items():
                runs[key].append(_time(lambda _, r, m=model: m.landmarks(frames[3][r[0]], r[1]), rois))
    out = {k: _least(v) for k, v in runs.items()}
    out["frames"] = len(frames[1])
    return out


def run(seconds: float = 4.0, repeats: int = 3) -> str:
    m = measure(seconds, repeats=repeats)
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
    (pw, pc), (fw, fc) = m["pass"], m["pass_full"]
    rows.append(
        (
            "one landmark pass (crop, network, decoding)",
            f"pruned model (the tracker's): {pc:.1f} ms CPU ({pw:.1f} wall); as the wheel ships it:"
            f" {fc:.1f} ms CPU ({fw:.1f} wall)",
        )
    )
    return append_results(
        "Cost per extra dancer (multi-person tracking)",
        rows,
        f"Least CPU time of {repeats} interleaved runs each. Target: each additional dancer at most +60% of the"
        " single-person time; `--dancers main` keeps the legacy path, so single-person extraction is unchanged.",
    )


if __name__ == "__main__":
    print(run())
