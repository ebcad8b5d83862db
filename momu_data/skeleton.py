"""The paper's 14-keypoint 2D skeleton and its mappings from other layouts.

Order (appendix B.2, following Lee et al. 2019): nose, neck, right shoulder, right
elbow, right wrist, left shoulder, left elbow, left wrist, right hip, right knee, right
ankle, left hip, left knee, left ankle. "Right" is the person's right. This is the
OpenPose BODY_25 order with MidHip (index 8) removed, so BODY_25 maps by index.
"""

from __future__ import annotations

import numpy as np

JOINTS = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
)
NUM_JOINTS = len(JOINTS)
J = {name: i for i, name in enumerate(JOINTS)}
# Index of each joint's left-right counterpart (itself for nose and neck): what a pose
# mirrored about the vertical axis has at each slot.
MIRROR = tuple(J[n.replace("right_", "@").replace("left_", "right_").replace("@", "left_")] for n in JOINTS)

# Bones as (parent, child) pairs; used for rendering, bone-length statistics and checks.
BONES = (
    (J["nose"], J["neck"]),
    (J["neck"], J["right_shoulder"]),
    (J["right_shoulder"], J["right_elbow"]),
    (J["right_elbow"], J["right_wrist"]),
    (J["neck"], J["left_shoulder"]),
    (J["left_shoulder"], J["left_elbow"]),
    (J["left_elbow"], J["left_wrist"]),
    (J["neck"], J["right_hip"]),
    (J["right_hip"], J["right_knee"]),
    (J["right_knee"], J["right_ankle"]),
    (J["neck"], J["left_hip"]),
    (J["left_hip"], J["left_knee"]),
    (J["left_knee"], J["left_ankle"]),
)

# Source indices for each of our joints; a tuple means "mean of these" (the neck is the
# mid-point of the shoulders in layouts that have no neck).
MEDIAPIPE_TO_14 = (0, (11, 12), 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27)
COCO17_TO_14 = (0, (5, 6), 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15)
BODY25_TO_14 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14)


def map_keypoints(xy: np.ndarray, conf: np.ndarray, mapping) -> tuple[np.ndarray, np.ndarray]:
    """Map [N, S, 2] coordinates and [N, S] confidences of a source layout to our 14 joints.

    A joint built from several source joints (the neck) takes their mean position and the
    minimum confidence, so it is only as trustworthy as its weakest part.
    """
    xy = np.asarray(xy, dtype=np.float32)
    conf = np.asarray(conf, dtype=np.float32)
    out_xy = np.empty(xy.shape[:-2] + (NUM_JOINTS, 2), dtype=np.float32)
    out_c = np.empty(conf.shape[:-1] + (NUM_JOINTS,), dtype=np.float32)
    for j, src in enumerate(mapping):
        if isinstance(src, tuple):
            out_xy[..., j, :] = xy[..., list(src), :].mean(axis=-2)
            out_c[..., j] = conf[..., list(src)].min(axis=-1)
        else:
            out_xy[..., j, :] = xy[..., src, :]
            out_c[..., j] = conf[..., src]
    return out_xy, out_c


def mid_hip(pose: np.ndarray) -> np.ndarray:
    """Mid-point of the hips, [..., 2]."""
    return 0.5 * (pose[..., J["right_hip"], :] + pose[..., J["left_hip"], :])


def torso_size(pose: np.ndarray) -> np.ndarray:
    """Neck to mid-hip distance, [...]; the scale unit for normalisation and PCK."""
    return np.linalg.norm(pose[..., J["neck"], :] - mid_hip(pose), axis=-1)


def bone_lengths(pose: np.ndarray) -> np.ndarray:
    """Lengths of BONES, [..., len(BONES)]."""
    p = np.asarray(pose)
    a = p[..., [b[0] for b in BONES], :]
    b = p[..., [b[1] for b in BONES], :]
    return np.linalg.norm(a - b, axis=-1)
