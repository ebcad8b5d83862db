"""Post-processing of generated poses (finish_motion): the bone-length correction of
appendix E, then temporal smoothing.

Order: the correction is a threshold rule, so a bone hovering around 1.3 x its mean is
snapped to the mean in one frame and left alone in the next: a jump of 0.3 bone lengths
between frames. The kinematic amplitude (eq. 2) is normalised by its maximum, so one such
jump flattens every real beat of the clip. Measured on 3 generated 6 s clips (music-to-dance,
small): smoothing first and correcting after left 3, 10 and 4 kinematic beats for 22, 24
and 18 music onsets; correcting first and smoothing after, 9, 19 and 11. Smoothing after
the correction keeps its guarantee: a Gaussian is a convex combination of frames, so a
smoothed bone vector is no longer than the longest of the (corrected) bones it averages.

Smoothing (our addition, docs/diffusion.md "Motion smoothing"): the motion VAE decodes at the
mel frame rate (62.5 frames/s) and leaves frame-to-frame jitter that real poses, tracked from
25-60 fps video and interpolated, do not have. The kinematic amplitude (eq. 2) is a flux of
frame differences scaled by its maximum, so a little jitter both adds spurious peaks and
shrinks the real ones below the peak picker's threshold. A Gaussian low-pass with sigma 32 ms
(-3 dB near 5.9 Hz; dance motion lives well below) removes it and leaves the beats.

Generated keypoints can drift apart and stretch a bone. The paper computes the mean length of
every bone over the training data and, in each generated frame, resets any bone longer than
1.3 x its mean to the mean length.

Traversal: the skeleton's BONES form a tree; we root it at the neck (every limb and the nose
hang from it) and walk it breadth-first, so each joint is placed after its parent:

    new[child] = new[parent] + s * (old[child] - old[parent]),
    s = mean / length if length > ratio * mean else 1.

The bone keeps its direction; only a too-long bone is shortened. Because a child is placed
relative to its parent's *corrected* position, every joint below a corrected bone moves with
it (shortening the upper arm carries the elbow, forearm and wrist along) and the bones below
keep their own lengths. The root (neck) never moves. BONES lists (nose, neck) with the nose
first; rooted at the neck, the nose is the child.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from momu_data.skeleton import BONES, NUM_JOINTS, J, bone_lengths

ROOT = J["neck"]
SMOOTH_SECONDS = 0.032  # Gaussian sigma of smooth_motion (2 frames at 62.5 frames/s)


def smooth_motion(pose: np.ndarray, fps: float, sigma_seconds: float = SMOOTH_SECONDS) -> np.ndarray:
    """Gaussian low-pass of a pose sequence [T, 14, 2] along time (edges held, not zero-padded).
    sigma_seconds 0 returns an unchanged copy."""
    from scipy.ndimage import gaussian_filter1d

    pose = np.asarray(pose, dtype=np.float32)
    if sigma_seconds <= 0 or pose.shape[0] < 2:
        return pose.copy()
    return gaussian_filter1d(pose, sigma_seconds * fps, axis=0, mode="nearest").astype(np.float32)


def _tree_order(root: int = ROOT) -> list[tuple[int, int, int]]:
    """(parent, child, bone index) in breadth-first order from the root."""
    adj: dict[int, list[tuple[int, int]]] = {j: [] for j in range(NUM_JOINTS)}
    for b, (p, c) in enumerate(BONES):
        adj[p].append((c, b))
        adj[c].append((p, b))
    order, seen, queue = [], {root}, deque([root])
    while queue:
        p = queue.popleft()
        for c, b in adj[p]:
            if c not in seen:
                seen.add(c)
                order.append((p, c, b))
                queue.append(c)
    if len(seen) != NUM_JOINTS:
        raise ValueError("BONES do not connect every joint to the root")
    return order


TREE = _tree_order()


def mean_bone_lengths(poses) -> np.ndarray:
    """Mean length of each bone in BONES, [len(BONES)], over all frames of all sequences.

    poses: an array [..., 14, 2] (e.g. [N, T, 14, 2]) or a list of [T_i, 14, 2] arrays of
    different lengths. Non-finite coordinates (missing joints) are left out of the mean.
    """
    seqs = [poses] if isinstance(poses, np.ndarray) else list(poses)
    if not seqs:
        raise ValueError("no poses given")
    lengths = []
    for p in seqs:
        p = np.asarray(p, dtype=np.float64)
        if p.shape[-2:] != (NUM_JOINTS, 2):
            raise ValueError(f"poses must end in ({NUM_JOINTS}, 2), got {p.shape}")
        lengths.append(bone_lengths(p).reshape(-1, len(BONES)))
    lengths = np.concatenate(lengths)
    if not np.isfinite(lengths).any(axis=0).all():
        raise ValueError("some bone has no finite length in the data")
    return np.nanmean(np.where(np.isfinite(lengths), lengths, np.nan), axis=0)


def finish_motion(
    pose: np.ndarray,
    fps: float,
    mean_lengths: np.ndarray | None = None,
    sigma_seconds: float = SMOOTH_SECONDS,
    ratio: float = 1.3,
) -> np.ndarray:
    """A generated pose sequence [T, 14, 2] as momu-generate writes it: bones corrected
    (when mean_lengths is given), then smoothed (sigma_seconds 0: not smoothed)."""
    if mean_lengths is not None:
        pose = correct_bones(pose, mean_lengths, ratio)
    return smooth_motion(pose, fps, sigma_seconds)


def correct_bones(pose: np.ndarray, mean_lengths: np.ndarray, ratio: float = 1.3) -> np.ndarray:
    """Shorten every bone longer than ratio x its mean to the mean (see the module docstring).

    pose [..., 14, 2] (one frame, or [T, 14, 2], or any leading shape); mean_lengths
    [len(BONES)] in BONES order. Returns a corrected copy.
    """
    old = np.asarray(pose)
    mean_lengths = np.asarray(mean_lengths, dtype=np.float64)
    if old.shape[-2:] != (NUM_JOINTS, 2):
        raise ValueError(f"pose must end in ({NUM_JOINTS}, 2), got {old.shape}")
    if mean_lengths.shape != (len(BONES),):
        raise ValueError(f"mean_lengths must have {len(BONES)} entries, got {mean_lengths.shape}")
    new = old.astype(np.float64, copy=True)
    for p, c, b in TREE:
        v = old[..., c, :] - old[..., p, :]
        length = np.linalg.norm(v, axis=-1, keepdims=True)
        too_long = length > ratio * mean_lengths[b]
        scale = np.where(too_long, mean_lengths[b] / np.where(too_long, length, 1.0), 1.0)
        new[..., c, :] = new[..., p, :] + scale * v
    return new.astype(old.dtype if np.issubdtype(old.dtype, np.floating) else np.float64)
