"""2D pose from video frames with mediapipe Pose, mapped to the paper's 14 keypoints.

mediapipe 0.10.21 ships the pose landmark model inside its wheel, so this runs offline.
We use the legacy `mp.solutions.pose` API in tracking mode (static_image_mode=False): after
the first detection the landmark model follows the person from frame to frame, which is
both faster and steadier than detecting every frame. model_complexity=1 is the paper-scale
"full" model. Frames are downscaled to `max_side` before inference: the landmark network
works on a 256x256 crop anyway, so full-resolution conversion would only cost time.
"""

from __future__ import annotations

import os

import numpy as np

from momu_data.media import MediaError, iter_frames, probe_video
from momu_data.pose.track import PoseTrack
from momu_data.skeleton import MEDIAPIPE_TO_14, map_keypoints

DEFAULT_MAX_SIDE = 640


class MediapipePose:
    """Callable: rgb uint8 [H, W, 3] -> (xy [14, 2] pixels, conf [14], person: bool)."""

    def __init__(
        self, model_complexity: int = 1, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5
    ):
        # mediapipe's C++ side logs several warnings per process; keep the progress bars readable.
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import mediapipe as mp

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


def estimate_video(path, max_side: int = DEFAULT_MAX_SIDE, model_complexity: int = 1, on_frame=None) -> PoseTrack:
    """Run mediapipe over every frame of a video; memory stays constant in video length
    apart from the 14-joint output arrays. on_frame(i) is called after each frame."""
    info = probe_video(path)
    xs, cs, ps, ts = [], [], [], []
    with MediapipePose(model_complexity=model_complexity) as est:
        for i, (t, img) in enumerate(iter_frames(path, max_side=max_side)):
            xy, conf, person = est(img, scale_to=(info.width, info.height))
            xs.append(xy)
            cs.append(conf)
            ps.append(person)
            ts.append(t)
            if on_frame is not None:
                on_frame(i)
    if not ts:
        raise MediaError("no decodable video frame")
    return PoseTrack(
        xy=np.stack(xs),
        conf=np.stack(cs),
        times=np.asarray(ts, np.float64),
        person=np.asarray(ps, bool),
        width=info.width,
        height=info.height,
        source="mediapipe",
        meta={"fps": info.fps, "codec": info.codec, "rotation": info.rotation},
    )
