"""2D pose from video frames with mediapipe Pose, mapped to the paper's 14 keypoints.

mediapipe 0.10.21 ships the pose landmark model inside its wheel, so this runs offline.
We use the legacy `mp.solutions.pose` API in tracking mode (static_image_mode=False): after
the first detection the landmark model follows the person from frame to frame, which is
both faster and steadier than detecting every frame. model_complexity=1 is the paper-scale
"full" model. Frames are downscaled to `max_side` before inference: the landmark network
works on a 256x256 crop anyway, so full-resolution conversion would only cost time.
"""

from __future__ import annotations

import io
import logging
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from momu_data import shots
from momu_data.io import write_bytes
from momu_data.media import MediaError, iter_frames, probe_video
from momu_data.native_logs import quiet_native_logs
from momu_data.optional import import_optional
from momu_data.pose.track import PoseTrack
from momu_data.skeleton import MEDIAPIPE_TO_14, map_keypoints

log = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 640
# A video is estimated in segments of this many seconds, each by a fresh tracker that first
# watches the WARMUP_SECONDS before its segment (those outputs dropped): a segment's poses
# depend on its own frames only, so a run can stop after any segment and continue there with
# the same result (see estimate_video's checkpoint).
SEGMENT_SECONDS = 60.0
WARMUP_SECONDS = 2.0


class MediapipePose:
    """Callable: rgb uint8 [H, W, 3] -> (xy [14, 2] pixels, conf [14], person: bool)."""

    def __init__(
        self, model_complexity: int = 1, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5
    ):
        # mediapipe's C++ side logs several warnings per process; keep the progress bars readable.
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        mp = import_optional("mediapipe", purpose="extracting poses", install="'momu[data]'")

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=False,
            model_complexity=model_complexity,
            smooth_landmarks=True,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def __call__(self, rgb: np.ndarray, scale_to: tuple[int, int] | None = None):
        h, w = rgb.shape[:2]
        W, H = scale_to or (w, h)
        res = self._pose.process(rgb)
        if res.pose_landmarks is None:
            return np.full((14, 2), np.nan, np.float32), np.zeros(14, np.float32), False
        lm = res.pose_landmarks.landmark
        # Landmarks are normalised to the image; scale to the original (upright) frame.
        xy33 = np.array([[p.x * W, p.y * H] for p in lm], dtype=np.float32)
        vis33 = np.array([p.visibility for p in lm], dtype=np.float32)
        xy, conf = map_keypoints(xy33, vis33, MEDIAPIPE_TO_14)
        return xy, np.clip(conf, 0.0, 1.0), True

    def close(self):
        self._pose.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def estimate_video(
    path,
    max_side: int = DEFAULT_MAX_SIDE,
    model_complexity: int = 1,
    on_frame=None,
    *,
    segment_seconds: float | None = SEGMENT_SECONDS,
    checkpoint=None,
    checkpoint_key: str = "",
) -> PoseTrack:
    """Run mediapipe over every frame of a video; memory stays constant in video length
    apart from the 14-joint output arrays. on_frame(i) is called after each frame.

    The frames are estimated in segments of segment_seconds (None: one segment), each by a
    fresh tracker warmed up on the WARMUP_SECONDS before it. With checkpoint (a .npz path)
    the track so far is saved there after each segment, and a later call with the same
    checkpoint and checkpoint_key (say, the video's sha256 and the settings) continues
    after the last saved segment: a run killed mid-video loses at most one segment, and
    the result equals an uninterrupted run's.

    The camera cuts found on the same frames (momu_data.shots) are in meta["cuts"]: the
    time of each new shot's first frame. mediapipe's native log lines are kept off stderr
    (native_logs.quiet_native_logs; MOMU_NATIVE_LOGS=1 shows them)."""
    info = probe_video(path)
    seg = float(segment_seconds) if segment_seconds else math.inf
    done = _load_checkpoint(checkpoint, checkpoint_key, seg)
    xs, cs, ps, ts, scores = done["xy"], done["conf"], done["person"], done["times"], done["shot_score"]
    k = int(done["segment"])
    i = len(ts)
    if k:
        log.info("%s: continuing pose estimation at %.0f s (checkpoint)", Path(path).name, k * seg)
    with quiet_native_logs():
        while True:
            t0, t1 = k * seg, (k + 1) * seg
            more = None  # the time of the first frame after the segment
            prev = None  # the previous frame's signature (a warm-up frame's at a segment's start)
            with MediapipePose(model_complexity=model_complexity) as est:
                start = max(0.0, t0 - WARMUP_SECONDS) if k else 0.0
                for t, img in iter_frames(path, max_side=max_side, start=start):
                    if t >= t1:
                        more = t
                        break
                    xy, conf, person = est(img, scale_to=(info.width, info.height))
                    sig = shots.frame_signature(img)
                    score, prev = shots.content_score(prev, sig), sig
                    if t < t0:
                        continue  # warm-up of the tracker on the frames before the segment
                    xs.append(xy)
                    cs.append(conf)
                    ps.append(person)
                    ts.append(t)
                    scores.append(score)
                    if on_frame is not None:
                        on_frame(i)
                    i += 1
            if more is None:
                break
            k = max(k + 1, int(more // seg))  # segments without frames (a late first timestamp) skipped
            if checkpoint is not None:
                _save_checkpoint(checkpoint, checkpoint_key, seg, k, xs, cs, ps, ts, scores)
    if not ts:
        raise MediaError("no decodable video frame")
    cuts = shots.detect_cuts(ts, scores)
    return PoseTrack(
        xy=np.stack(xs).astype(np.float32),
        conf=np.stack(cs).astype(np.float32),
        times=np.asarray(ts, np.float64),
        person=np.asarray(ps, bool),
        width=info.width,
        height=info.height,
        source="mediapipe",
        meta={"fps": info.fps, "codec": info.codec, "rotation": info.rotation, "cuts": [ts[c] for c in cuts]},
    )


def save_checkpoint(path, key: str, seg: float, **arrays) -> None:
    """Write a pose-estimation checkpoint (npz, atomically): the video's identity key, the
    segment length it was cut with, and the arrays of the part done so far."""
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), segment_seconds=np.float64(seg), **arrays)
    write_bytes(path, buf.getbuffer())


def read_checkpoint(path, key: str, seg: float, names: tuple[str, ...]) -> dict | None:
    """The arrays `names` of a checkpoint `save_checkpoint` wrote for this video and segment
    length; None when there is none, it is of another video, settings or segment length, or
    it is unreadable or lacks one of them (logged: the work is redone)."""
    if path is None or not Path(path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or float(z["segment_seconds"]) != seg:
                return None
            return {k: z[k] for k in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # damaged: start over
        log.warning("%s: ignoring an unreadable pose checkpoint (%s)", path, e)
        return None


def _save_checkpoint(path, key: str, seg: float, segment: int, xs, cs, ps, ts, scores) -> None:
    save_checkpoint(
        path,
        key,
        seg,
        segment=np.int64(segment),
        xy=np.asarray(xs, np.float32).reshape(-1, 14, 2),
        conf=np.asarray(cs, np.float32).reshape(-1, 14),
        person=np.asarray(ps, bool),
        times=np.asarray(ts, np.float64),
        shot_score=np.asarray(scores, np.float64),
    )


def _load_checkpoint(path, key: str, seg: float) -> dict:
    """The saved part of the track as lists (empty, segment 0, when there is none or it is
    of another video, settings or segment length, or unreadable)."""
    z = read_checkpoint(path, key, seg, ("xy", "conf", "person", "times", "shot_score", "segment"))
    if z is None:
        return {"xy": [], "conf": [], "person": [], "times": [], "shot_score": [], "segment": 0}
    return {
        "xy": list(z["xy"]),
        "conf": list(z["conf"]),
        "person": z["person"].tolist(),
        "times": z["times"].tolist(),
        "shot_score": z["shot_score"].tolist(),
        "segment": int(z["segment"]),
    }
