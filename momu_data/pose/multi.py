"""Every dancer of a video: one identity-consistent PoseTrack per person (`--dancers all|N`).

`estimate_dancers` runs tracking.MultiPoseTracker (mediapipe's BlazePose detector and
landmark models on LiteRT, see blazepose) over the frames and returns one PoseTrack per
identity, covering only the frames of that identity (a track is cut where its identity
could pass to someone else, see tracking, and at every camera cut found on the same frames,
momu_data.shots: so one person may give several tracks). Tracks shorter than
min_seconds are dropped; the rest are numbered 0, 1, ... by start time, then from left to
right, and carry their number in meta["dancer_index"].

As estimate_video for one person, the frames are estimated in segments of segment_seconds,
each by a fresh tracker (an identity never spans two segments), and with a checkpoint the
finished segments are saved, so a killed run continues after the last one with the result
of an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from momu_data import shots
from momu_data.media import MediaError, iter_frames, probe_video
from momu_data.native_logs import quiet_native_logs
from momu_data.pose.mediapipe_pose import DEFAULT_MAX_SIDE, SEGMENT_SECONDS, read_checkpoint, save_checkpoint
from momu_data.pose.track import PoseTrack
from momu_data.pose.tracking import MultiPoseTracker

log = logging.getLogger(__name__)

DETECT_SECONDS = 0.27  # the detector looks for new people this often (8 frames at 30 fps)
CONTEST_SECONDS = 0.8  # a region where two identities were cut for overlapping starts none this long


def parse_dancers(value) -> str:
    """`--dancers`: "main" (one person, mediapipe's legacy Pose as before), "all", or a
    positive count N (at most N people at a time); returns the canonical string."""
    v = str(value).strip().lower()
    if v in ("main", "all"):
        return v
    if v.isdigit() and int(v) > 0:
        return str(int(v))
    raise ValueError(f"--dancers must be main, all or a positive number, not {value!r}")


def estimate_dancers(
    path,
    dancers: str = "all",
    max_side: int = DEFAULT_MAX_SIDE,
    min_seconds: float = 0.0,
    *,
    detect_seconds: float = DETECT_SECONDS,
    segment_seconds: float | None = SEGMENT_SECONDS,
    checkpoint=None,
    checkpoint_key: str = "",
    on_frame=None,
) -> list[PoseTrack]:
    """One PoseTrack per identity found in the video (see the module's docstring); [] when
    nobody is tracked for min_seconds. Coordinates are in the original frame's pixels."""
    dancers = parse_dancers(dancers)
    max_people = None if dancers == "all" else (1 if dancers == "main" else int(dancers))
    info = probe_video(path)
    seg = float(segment_seconds) if segment_seconds else math.inf
    st = _load_checkpoint(checkpoint, checkpoint_key, seg)
    k = st["segment"]
    if k:
        log.info("%s: continuing multi-person tracking at %.0f s (checkpoint)", Path(path).name, k * seg)
    with quiet_native_logs():
        while True:
            t0, t1 = k * seg, (k + 1) * seg
            more = _segment(path, info, st, t0, t1, k, max_people, detect_seconds, max_side, on_frame)
            if more is None:
                break
            k = max(k + 1, int(more // seg))
            st["segment"] = k
            if checkpoint is not None:
                _save_checkpoint(checkpoint, checkpoint_key, seg, st)
    if not st["times"]:
        raise MediaError("no decodable video frame")
    return _tracks(st, info, min_seconds)


def _segment(path, info, st: dict, t0: float, t1: float, k: int, max_people, detect_seconds, max_side, on_frame):
    """Track the frames of [t0, t1) with a fresh tracker, appending to the state st; returns
    the time of the first frame after the segment (None at the end of the video)."""
    more = None
    first = len(st["times"])
    fps = info.fps or 30.0
    tracker = MultiPoseTracker(
        max_people=max_people,
        detect_every=max(1, round(detect_seconds * fps)),
        contest_frames=max(1, round(CONTEST_SECONDS * fps)),
    )
    sx = sy = 1.0
    prev = None  # the previous frame's signature, for the camera cuts
    for t, img in iter_frames(path, max_side=max_side, start=t0 if k else 0.0):
        if t >= t1:
            more = t
            break
        sig = shots.frame_signature(img)
        score, prev = shots.content_score(prev, sig), sig
        if t < t0:
            continue
        sx, sy = info.width / img.shape[1], info.height / img.shape[0]
        tracker.update(len(st["times"]) - first, img)
        st["times"].append(t)
        st["shot_score"].append(score)
        if on_frame is not None:
            on_frame(len(st["times"]) - 1)
    for tr in tracker.finish():
        n = len(tr.xy)
        st["tid"] += [st["next_id"]] * n
        st["frame"] += (tr.frames + first).tolist()
        st["xy"] += list(np.stack(tr.xy) * np.float32([sx, sy]))
        st["conf"] += list(np.stack(tr.conf))
        st["next_id"] += 1
    return more


def _tracks(st: dict, info, min_seconds: float) -> list[PoseTrack]:
    times = np.asarray(st["times"], np.float64)
    tid, frame = np.asarray(st["tid"], np.int64), np.asarray(st["frame"], np.int64)
    xy = np.asarray(st["xy"], np.float32).reshape(-1, 14, 2)
    conf = np.asarray(st["conf"], np.float32).reshape(-1, 14)
    dt = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / 30
    # No identity spans a camera cut: a track crossing one is split there.
    cuts = shots.detect_cuts(times, np.asarray(st["shot_score"], np.float64))
    tid = tid * (len(cuts) + 1) + np.searchsorted(cuts, frame, side="right")
    found = []
    for i in np.unique(tid):
        m = tid == i
        f = frame[m]
        if (times[f[-1]] - times[f[0]] + dt) < min_seconds:
            continue
        found.append((times[f[0]], float(np.nanmedian(xy[m][0, :, 0])), f, xy[m], conf[m]))
    found.sort(key=lambda r: (r[0], r[1]))
    out = []
    for n, (_, _, f, x, c) in enumerate(found):
        out.append(
            PoseTrack(
                xy=x,
                conf=c,
                times=times[f],
                person=np.ones(len(f), bool),
                width=info.width,
                height=info.height,
                source="mediapipe",
                meta={
                    "fps": info.fps,
                    "codec": info.codec,
                    "rotation": info.rotation,
                    "cuts": [],  # none inside: tracks are split at the video's camera cuts
                    "video_cuts": len(cuts),
                    "dancer_index": n,
                    "dancer_start": float(times[f[0]]),
                    # the share of the video's frames this identity was tracked in
                    "detect_rate": float(len(f) / len(times)),
                },
            )
        )
    log.info("%d identities tracked, %d for at least %.1f s", len(np.unique(tid)), len(out), min_seconds)
    return out


def _save_checkpoint(path, key: str, seg: float, st: dict) -> None:
    save_checkpoint(
        path,
        key,
        seg,
        segment=np.int64(st["segment"]),
        next_id=np.int64(st["next_id"]),
        times=np.asarray(st["times"], np.float64),
        shot_score=np.asarray(st["shot_score"], np.float64),
        tid=np.asarray(st["tid"], np.int64),
        frame=np.asarray(st["frame"], np.int64),
        xy=np.asarray(st["xy"], np.float32).reshape(-1, 14, 2),
        conf=np.asarray(st["conf"], np.float32).reshape(-1, 14),
    )


def _load_checkpoint(path, key: str, seg: float) -> dict:
    z = read_checkpoint(path, key, seg, ("times", "shot_score", "tid", "frame", "xy", "conf", "segment", "next_id"))
    if z is None:
        return {
            "times": [],
            "shot_score": [],
            "tid": [],
            "frame": [],
            "xy": [],
            "conf": [],
            "segment": 0,
            "next_id": 0,
        }
    return {
        "times": z["times"].tolist(),
        "shot_score": z["shot_score"].tolist(),
        "tid": z["tid"].tolist(),
        "frame": z["frame"].tolist(),
        "xy": list(z["xy"]),
        "conf": list(z["conf"]),
        "segment": int(z["segment"]),
        "next_id": int(z["next_id"]),
    }
