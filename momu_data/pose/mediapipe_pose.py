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
from momu_data.parallel import thread_budget
from momu_data.pose.track import PoseTrack
from momu_data.skeleton import MEDIAPIPE_TO_14

log = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 640
# A video is estimated in segments of this many seconds, each by a fresh tracker that first
# watches the WARMUP_SECONDS before its segment (those outputs dropped): a segment's poses
# depend on its own frames only, so a run can stop after any segment and continue there with
# the same result (see estimate_video's checkpoint).
SEGMENT_SECONDS = 60.0
WARMUP_SECONDS = 2.0


class MediapipePose:
    """Callable: rgb uint8 [H, W, 3] -> (xy [14, 2] pixels, conf [14], person: bool).

    threads: the graph executor's threads (None: this process's thread_budget, which outside
    a pool worker leaves mediapipe's default, one per core). Every frame waits for the graph
    to finish, so a second executor thread seldom has anything to run in parallel; in a pool
    worker it only contends with the other workers. The landmarks do not depend on it."""

    def __init__(
        self,
        model_complexity: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        threads: int | None = None,
    ):
        # mediapipe's C++ side logs several warnings per process; keep the progress bars readable.
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        mp = import_optional("mediapipe", purpose="extracting poses", install="'momu[data]'")

        self._pose = _pose_class(mp)(
            threads=thread_budget() if threads is None else threads,
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
        lm = self._pose.landmarks(rgb)
        if lm is None:
            return np.full((14, 2), np.nan, np.float32), np.zeros(14, np.float32), False
        # Landmarks are normalised to the image; scale to the original (upright) frame.
        xy33 = np.array([[p.x * W, p.y * H] for p in lm], dtype=np.float32)
        vis33 = np.array([p.visibility for p in lm], dtype=np.float32)
        xy, conf = _to_14(xy33, vis33)
        return xy, np.clip(conf, 0.0, 1.0), True

    def close(self):
        self._pose.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# skeleton.map_keypoints(xy33, vis33, MEDIAPIPE_TO_14) for one frame, as index arrays (the same
# values: the neck is the mean of the shoulders and their lowest visibility).
_SINGLE = np.array([src if isinstance(src, int) else 0 for src in MEDIAPIPE_TO_14])
_MEAN = [(j, list(src)) for j, src in enumerate(MEDIAPIPE_TO_14) if not isinstance(src, int)]


def _to_14(xy33: np.ndarray, vis33: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xy, conf = xy33[_SINGLE], vis33[_SINGLE]
    for j, src in _MEAN:
        xy[j] = xy33[src].mean(axis=0)
        conf[j] = vis33[src].min()
    return xy, conf


_POSE_CLASS: list = []  # mediapipe's Pose subclass below, made on first use (mediapipe is optional)


def _pose_class(mp):
    """mediapipe's legacy Pose with the graph executor's thread count set (`threads`; None or
    0: mediapipe's default) and `landmarks(rgb)`: Pose.process's pose_landmarks alone (None
    when nobody is found). process also converts the world landmarks and builds a namedtuple
    class on every call, a third of the Python time of a frame; the landmarks are the same.
    Written against mediapipe 0.10.21 (pinned in pyproject.toml): SolutionBase's graph,
    output callbacks and timestamps."""
    if _POSE_CLASS:
        return _POSE_CLASS[0]

    class Pose(mp.solutions.pose.Pose):
        def __init__(self, threads: int | None = None, **kwargs):
            self._threads = threads
            super().__init__(**kwargs)

        def _initialize_graph_interface(self, *args, **kwargs):
            config = super()._initialize_graph_interface(*args, **kwargs)
            if self._threads:
                _set_executor_threads(config, self._threads)
            return config

        def landmarks(self, rgb: np.ndarray):
            if rgb.ndim != 3 or rgb.shape[2] != 3:
                raise ValueError("Input image must contain three channel rgb data.")
            self._graph_outputs.clear()
            self._simulated_timestamp += 33333  # as process: a 30 frames/s clock
            packet = self._make_packet(self._input_stream_type_info["image"], rgb)
            self._graph.add_packet_to_input_stream(stream="image", packet=packet.at(self._simulated_timestamp))
            self._graph.wait_until_idle()
            out = self._graph_outputs.get("pose_landmarks")
            if out is None:
                return None
            found = self._get_packet_content(self._output_stream_type_info["pose_landmarks"], out)
            return None if found is None else found.landmark

    _POSE_CLASS.append(Pose)
    return Pose


def _set_executor_threads(config, n: int) -> None:
    """n threads for a mediapipe graph config's default executor (its pose graph declares one,
    with mediapipe's default of a thread per core)."""
    from mediapipe.framework.thread_pool_executor_pb2 import ThreadPoolExecutorOptions

    default = [e for e in config.executor if not e.name]
    if not default:
        config.num_threads = n
    for e in default:
        e.options.Extensions[ThreadPoolExecutorOptions.ext].num_threads = n


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
