"""AIST++ keypoints2d pickles -> one PoseTrack per camera.

An AIST++ keypoints2d file is a pickle of a dict: ``keypoints2d`` float32 [9 cameras, N
frames, 17 COCO joints, (x, y, conf)] in 1920x1080 pixels, ``det_scores`` [9, N] and
``timestamps`` [N] in integer microseconds at 60 fps. It is read with safe_pickle, so a
tampered file cannot run code. Cameras are named c01..c09 as in AIST++ (index 0 = c01).

The file name is the sequence name, e.g. gBR_sBM_cAll_d04_mBR0_ch01 = genre Break (gBR),
basic dance (sBM), all cameras (cAll), dancer 04, music mBR0, choreography 01.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from momu_data.media import MediaError
from momu_data.pose.importers.common import check_fps, make_track
from momu_data.pose.track import PoseTrack
from momu_data.safe_pickle import UnsafePickleError, safe_load
from momu_data.skeleton import COCO17_TO_14

WIDTH, HEIGHT = 1920, 1080
AIST_FPS = 60.0

# AIST Dance Video Database codes (https://aistdancedb.ongaaccero.com/).
GENRES = {
    "gBR": "break",
    "gPO": "pop",
    "gLO": "lock",
    "gMH": "middle hip-hop",
    "gLH": "LA-style hip-hop",
    "gHO": "house",
    "gWA": "waack",
    "gKR": "krump",
    "gJS": "street jazz",
    "gJB": "ballet jazz",
}
SITUATIONS = {
    "sBM": "basic dance",
    "sFM": "advanced dance",
    "sMM": "moving camera",
    "sGR": "group dance",
    "sSH": "showcase",
    "sCH": "cypher",
}

_NAME_RE = re.compile(
    r"^(?P<genre>g[A-Z]{2})_(?P<situation>s[A-Z]{2})_(?P<camera>c(?:All|\d{2}))_"
    r"(?P<dancer>d\d{2})_(?P<music>m[A-Z]{2}\d)_(?P<choreo>ch\d{2})$"
)


def parse_aist_name(name) -> dict:
    """Split an AIST/AIST++ sequence name (a path or file name is accepted).

    "gBR_sBM_cAll_d04_mBR0_ch01" -> {"genre": "gBR", "situation": "sBM", "camera": "cAll",
    "dancer": "d04", "music": "mBR0", "choreo": "ch01", "genre_name": "break",
    "situation_name": "basic dance"}. Raises ValueError for a name that does not follow
    the convention.
    """
    stem = Path(str(name)).name
    stem = re.sub(r"\.(pkl|mp4|json|npy|npz)$", "", stem)
    m = _NAME_RE.match(stem)
    if not m:
        raise ValueError(f"not an AIST sequence name: {stem!r}")
    out = m.groupdict()
    out["genre_name"] = GENRES.get(out["genre"], "")
    out["situation_name"] = SITUATIONS.get(out["situation"], "")
    return out


def _camera_indices(cameras, count: int) -> list[int]:
    """0-based indices from "all", a camera number (1 = c01), a name "c01", or a list."""
    if isinstance(cameras, str) and cameras == "all":
        return list(range(count))
    items = list(cameras) if isinstance(cameras, (list, tuple, range, np.ndarray)) else [cameras]
    out = []
    for c in items:
        if isinstance(c, str) and re.fullmatch(r"c\d{2}", c):
            num = int(c[1:])
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            num = int(c)
        else:
            raise ValueError(f"cameras: expected 'all', camera numbers 1-{count} or names like 'c01', got {c!r}")
        if not 1 <= num <= count:
            raise ValueError(f"cameras: camera {c!r} out of range, the file has c01-c{count:02d}")
        out.append(num - 1)
    return out


def _load_dict(path: Path) -> dict:
    try:
        data = safe_load(path)
    except UnsafePickleError as e:
        raise MediaError(f"aistpp: unsafe pickle: {e}") from None
    except Exception as e:  # a corrupt pickle raises any of several types (EOFError, KeyError, ...)
        raise MediaError(f"aistpp: unreadable pickle: {type(e).__name__}: {e}") from None
    if not isinstance(data, dict) or "keypoints2d" not in data:
        raise MediaError("aistpp: expected a dict with 'keypoints2d'")
    return data


def load_aistpp(path, cameras="all", fps: float | None = None) -> list[PoseTrack]:
    """Load an AIST++ keypoints2d pickle as one PoseTrack per requested camera.

    cameras: "all", a camera number (1 = c01, as in the AIST++ names), a name "c01", or
    a list of those. times are the file's timestamps in seconds; with fps given they are
    frame / fps instead (also used when the file has no timestamps, default 60 fps).
    A frame is without a person when its det_score is 0 (or not finite) or its 17
    keypoints are all NaN/0; joints with confidence 0 are missing.
    """
    path = Path(path)
    d = _load_dict(path)
    kp = np.asarray(d["keypoints2d"])
    if kp.ndim != 4 or kp.shape[2:] != (17, 3) or not np.issubdtype(kp.dtype, np.number):
        raise MediaError(f"aistpp: keypoints2d has shape {kp.shape}, expected (cameras, frames, 17, 3)")
    ncam, n = kp.shape[:2]
    if n == 0:
        raise MediaError("aistpp: no keypoints found (0 frames)")
    det = d.get("det_scores")
    if det is None:
        det = np.ones((ncam, n), dtype=np.float32)  # no detector scores: trust the keypoints
    det = np.asarray(det, dtype=np.float64)
    if det.shape != (ncam, n):
        raise MediaError(f"aistpp: det_scores has shape {det.shape}, expected {(ncam, n)}")

    if fps is not None:
        times = np.arange(n) / check_fps(fps)
    elif d.get("timestamps") is not None:
        ts = np.asarray(d["timestamps"])
        if ts.shape != (n,) or not np.issubdtype(ts.dtype, np.number):
            raise MediaError(f"aistpp: timestamps has shape {ts.shape}, expected ({n},)")
        times = ts.astype(np.float64) / 1e6
        if not np.isfinite(times).all() or (n > 1 and not np.all(np.diff(times) > 0)):
            raise MediaError("aistpp: timestamps are not strictly increasing (pass fps= to ignore them)")
    else:
        times = np.arange(n) / AIST_FPS

    try:
        meta = parse_aist_name(path.stem)
    except ValueError:
        meta = {}  # a renamed file: the keypoints are still usable
    meta["sequence"] = path.stem

    tracks = []
    for c in _camera_indices(cameras, ncam):
        k = kp[c].astype(np.float32)
        blank = np.all((k == 0) | np.isnan(k), axis=(1, 2))
        person = np.isfinite(det[c]) & (det[c] > 0) & ~blank
        conf = np.where(person[:, None], k[..., 2], 0.0)
        view = f"c{c + 1:02d}"
        # The track is one camera's view: its meta names that camera, and the AIST video
        # it was estimated from (the sequence name with cAll replaced by the camera).
        m = {**meta, "camera": view}
        if "genre" in meta:
            m["video"] = path.stem.replace("_cAll_", f"_{view}_")
        tracks.append(
            make_track(
                k[..., :2],
                conf,
                COCO17_TO_14,
                times,
                width=WIDTH,
                height=HEIGHT,
                source="aistpp",
                view=view,
                meta=m,
            )
        )
    return tracks
