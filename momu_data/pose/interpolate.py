"""Clean a PoseTrack: mark missing joints, fill them from neighbouring frames, normalise,
and resample onto the mel time base (62.5 frames/s).

Appendix B.2: "We interpolate the missing detected keypoints from the neighboring frames so
that there are no missing keypoints in all extracted clips." A joint counts as missing when
no person was found, its confidence is below a threshold, or it lies out of range (see
out_of_range: outside the frame, or far outside the track's own extent when the frame size
is unknown).
"""

from __future__ import annotations

import numpy as np

from momu_data.pose.track import PoseTrack
from momu_data.skeleton import BONES, NUM_JOINTS, mid_hip, torso_size

# Parent of each joint in the skeleton tree rooted at the neck (for joints never seen).
PARENT = {child: parent for parent, child in BONES}

# Without a frame size, a joint further than OUTLIER_SPREADS robust spreads from the track's
# median position is not a position (a detector's sentinel, 1e30, a unit mix-up). The spread
# is the median absolute deviation of all the track's joint coordinates (the larger of x and
# y; a body's own height is ~3 of them, and a dancer's travel widens it), which half of the
# coordinates can be wrong without moving. No coordinate beyond MAX_COORD is real either.
OUTLIER_SPREADS = 20.0
MAX_COORD = 1e6


def out_of_range(xy: np.ndarray, width: int | None = None, height: int | None = None) -> np.ndarray:
    """[N, 14] bool: joints that cannot be where they say they are. With the frame size: outside
    the frame. Without: beyond MAX_COORD, or beyond OUTLIER_SPREADS robust spreads of the
    track's own extent. NaN joints are not flagged (they are missing anyway)."""
    xy = np.asarray(xy)
    x, y = xy[..., 0], xy[..., 1]
    with np.errstate(invalid="ignore"):
        if width and height:
            return (x < 0) | (x > width) | (y < 0) | (y > height)
        far = (np.abs(x) > MAX_COORD) | (np.abs(y) > MAX_COORD)
        pts = xy[np.isfinite(xy).all(-1) & ~far].astype(np.float64)
        if not len(pts):
            return far
        med = np.median(pts, axis=0)
        spread = max(float(np.median(np.abs(pts - med), axis=0).max()), 1e-6 * float(np.abs(med).max()), 1e-9)
        lim = OUTLIER_SPREADS * spread
        return far | (np.abs(x - med[0]) > lim) | (np.abs(y - med[1]) > lim)


def missing_mask(track: PoseTrack, conf_threshold: float = 0.5) -> np.ndarray:
    """[N, 14] bool: True where the joint must be filled in."""
    xy = track.xy
    miss = ~track.person[:, None] | (track.conf < conf_threshold) | ~np.isfinite(xy).all(-1)
    return miss | out_of_range(xy, track.width, track.height)


def fill_missing(xy: np.ndarray, missing: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Linearly interpolate each missing joint over time from its valid frames (held
    constant before the first and after the last valid frame). A joint never seen in the
    whole track is placed on its parent (ankle on knee, ...), so the result has no NaN;
    such clips are caught by the interpolated-fraction limit."""
    out = np.array(xy, dtype=np.float64)
    never = []
    for j in range(NUM_JOINTS):
        ok = ~missing[:, j]
        if ok.all():
            continue
        if not ok.any():
            never.append(j)
            continue
        for c in range(2):
            out[~ok, j, c] = np.interp(times[~ok], times[ok], out[ok, j, c])
    # Parents before children: the neck is the root, BONES are listed parent-first.
    for j in sorted(never, key=_depth):
        p = PARENT.get(j)
        if p is None:
            raise ValueError("the neck is never detected: cannot place the skeleton")
        out[:, j] = out[:, p]
    return out.astype(np.float32)


def _depth(j: int) -> int:
    d = 0
    while j in PARENT:
        j = PARENT[j]
        d += 1
    return d


def normalisation(xy: np.ndarray, person: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-video centre (median mid-hip) and scale (median torso size) over frames with a
    person. Using one centre and scale for the whole video keeps the dancer's travel and
    size changes visible in the motion while removing camera framing and resolution."""
    sel = xy[person] if person.any() else xy
    centre = np.median(mid_hip(sel), axis=0)
    scale = float(np.median(torso_size(sel)))
    if not np.isfinite(scale) or scale < 1e-6:
        raise ValueError("degenerate skeleton: torso size is zero")
    return centre.astype(np.float32), scale


def resample(values: np.ndarray, times: np.ndarray, t_out: np.ndarray) -> np.ndarray:
    """Shape-preserving cubic (PCHIP) resampling along axis 0 from times to t_out (clamped
    to the covered range). PCHIP keeps velocities continuous, so the directogram flux has
    no spikes at source-frame boundaries (which linear interpolation would create), and it
    never overshoots the data."""
    from scipy.interpolate import PchipInterpolator

    t = np.clip(t_out, times[0], times[-1])
    if len(times) == 1:
        return np.repeat(values[:1], len(t_out), axis=0).astype(np.float32)
    return PchipInterpolator(times, values, axis=0, extrapolate=False)(t).astype(np.float32)


def nearest_index(times: np.ndarray, t_out: np.ndarray) -> np.ndarray:
    """Index of the source frame nearest to each output time."""
    i = np.clip(np.searchsorted(times, t_out), 1, len(times) - 1) if len(times) > 1 else np.zeros(len(t_out), int)
    if len(times) > 1:
        left = times[i - 1]
        i = np.where(np.abs(t_out - left) <= np.abs(times[i] - t_out), i - 1, i)
    return i
