"""2D motion out to the tools that read pose sequences: pose-guided video generators
(ControlNet-OpenPose, MusePose, UniAnimate, AnimateAnyone-style pipelines) and users' own code.

Formats (`FORMATS`), each at a chosen frame rate resampled from the motion's own (62.5 frames/s):

- ``openpose``: a folder of per-frame OpenPose JSON files, ``<stem>_<frame:012d>_keypoints.json``
  with ``people[0].pose_keypoints_2d`` in the BODY_25 layout (75 numbers: x, y, confidence per
  slot): our 14 joints in their BODY_25 slots (skeleton.BODY25_TO_14) with confidence 1, every
  other slot (MidHip, eyes, ears, feet) 0, 0, 0. The importer (pose/importers/openpose.py)
  reads it back.
- ``pose-video`` (``<stem>_pose.mp4``, H.264) and ``pose-frames`` (``<stem>_pose/`` PNGs): the
  skeleton drawn as ControlNet's OpenPose annotator draws a body (its colours, limb order, limb
  and joint sizes) on black, without any overlay: control frames.
- ``csv``: one row per frame, named columns in pixels and in torso units.
- ``npz``: the same arrays with the joint names, times, canvas and placement.

Every export writes ``<stem>_export.json`` beside it: frame rate, frame count, canvas,
placement, joint names and units. Motion comes in torso units (docs/data.md,
Normalisation); pixels are ``pose * scale + centre`` on a ``width`` x ``height`` canvas, with
one placement for the whole sequence (`Placement`): the source's own pixel frame for extracted
motion, a reference dancer's frame (`reference_placement`), or the whole sequence's bounding
box fitted into the canvas (`fit_placement`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from momu_data.io import atomic_path, write_bytes, write_json
from momu_data.optional import import_optional
from momu_data.pose.interpolate import resample
from momu_data.skeleton import BODY25_TO_14, JOINTS, NUM_JOINTS, J
from momu_data.timebase import FPS

FORMATS = ("openpose", "pose-video", "pose-frames", "csv", "npz")
DEFAULT_FPS = 30.0
DEFAULT_CANVAS = (512, 768)  # width x height: the portrait frame of AnimateAnyone / MusePose
MARGIN = 0.1  # fraction of the canvas kept free on each side when the motion is fitted into it
DECIMALS = 3  # pixel coordinates in the JSON and CSV files are rounded to this many decimals

# BODY_25's slots by name (OpenPose doc/02_output.md); ours are BODY25_TO_14, the importer's mapping.
BODY25 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip", "RKnee",
    "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
    "RSmallToe", "RHeel",
)  # fmt: skip
BODY25_SLOTS = tuple(int(s) for s in BODY25_TO_14)  # slot of each of our joints (one source each)

# The palette of ControlNet's OpenPose annotators (draw_bodypose in controlnet_aux open_pose/util.py,
# DWPose, ControlNet's annotator/openpose/util.py): one RGB colour per COCO-18 keypoint, limb i
# drawn in colour i. COCO-18's first 14 keypoints are ours, in our order.
OPENPOSE_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
# Its limbs in its drawing order (later ones cover earlier ones where they cross); the
# annotator's last limbs join the eyes and ears, which our skeleton does not have.
OPENPOSE_LIMBS = tuple(
    (J[a], J[b])
    for a, b in (
        ("neck", "right_shoulder"),
        ("neck", "left_shoulder"),
        ("right_shoulder", "right_elbow"),
        ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_elbow"),
        ("left_elbow", "left_wrist"),
        ("neck", "right_hip"),
        ("right_hip", "right_knee"),
        ("right_knee", "right_ankle"),
        ("neck", "left_hip"),
        ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"),
        ("neck", "nose"),
    )
)
LIMB_SHADE = 0.6  # limbs are filled with int(colour * 0.6) on black, joints in full colour on top
STICK_WIDTH = 4  # half-width of a limb's ellipse, pixels
JOINT_RADIUS = 4  # pixels


class ExportError(ValueError):
    """A motion, an option or a reference that cannot be exported; the message is one line."""


@dataclass(frozen=True)
class Placement:
    """Pixels = pose (torso units) * scale + centre, on a width x height canvas. how: where it
    came from ("fit", "source", "reference ...")."""

    width: int
    height: int
    scale: float
    centre: tuple[float, float]
    how: str = "fit"

    def to_pixels(self, pose: np.ndarray) -> np.ndarray:
        return np.asarray(pose, dtype=np.float64) * self.scale + np.asarray(self.centre, dtype=np.float64)

    def into(self, canvas: tuple[int, int] | None) -> Placement:
        """This frame resized into `canvas` as a video is resized to it: scaled to fit whole,
        aspect kept, centred (letterboxed). The same placement when canvas is None."""
        if canvas is None or tuple(canvas) == (self.width, self.height):
            return self
        w, h = canvas
        k = min(w / self.width, h / self.height)
        off = ((w - k * self.width) / 2, (h - k * self.height) / 2)
        centre = (self.centre[0] * k + off[0], self.centre[1] * k + off[1])
        return Placement(w, h, self.scale * k, centre, f"{self.how}, resized to {w}x{h}")

    def as_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "scale": self.scale, "centre": list(self.centre)}


def fit_placement(pose: np.ndarray, canvas: tuple[int, int] = DEFAULT_CANVAS, margin: float = MARGIN) -> Placement:
    """The placement that fits the whole sequence's bounding box into the canvas, keeping the
    aspect, with `margin` of the canvas free on each side, centred. One scale and offset for every
    frame, so travel and jumps stay movement on the canvas."""
    w, h = canvas
    pts = np.asarray(pose, dtype=np.float64).reshape(-1, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    size = np.maximum(hi - lo, 1e-6)
    scale = float(min(w * (1 - 2 * margin) / size[0], h * (1 - 2 * margin) / size[1]))
    mid = (lo + hi) / 2
    return Placement(w, h, scale, (w / 2 - scale * mid[0], h / 2 - scale * mid[1]), "fit")


def frame_placement(view: dict, how: str) -> Placement | None:
    """An extracted item's own pixel frame, from its record (centre, scale, width, height), or
    None when the source had no frame size (keypoint files without a video)."""
    if not view.get("width") or not view.get("height") or "centre" not in view or "scale" not in view:
        return None
    centre = tuple(float(c) for c in view["centre"])
    return Placement(int(view["width"]), int(view["height"]), float(view["scale"]), centre, how)


# ---------------------------------------------------------------------------------------
# Options.


def parse_formats(values) -> tuple[str, ...]:
    """["openpose,csv", "npz"] -> ("openpose", "csv", "npz"): repeatable or comma lists."""
    out: list[str] = []
    for v in values or ():
        for f in str(v).split(","):
            f = f.strip().lower()
            if not f:
                continue
            if f not in FORMATS:
                raise ExportError(f"unknown export format {f!r}; choose from {', '.join(FORMATS)}")
            if f not in out:
                out.append(f)
    return tuple(out)


def parse_canvas(text: str | None) -> tuple[int, int] | None:
    """Parse a canvas size: "512x768" -> (512, 768) (width x height)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16:
        raise ExportError(f"canvas must be WIDTHxHEIGHT in pixels, each at least 16, e.g. 512x768; got {text!r}")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class ExportSettings:
    """What to export and how: formats, frame rate, canvas (width, height; None: the frame of the
    reference or the source, else DEFAULT_CANVAS) and an optional reference placement."""

    formats: tuple[str, ...]
    fps: float = DEFAULT_FPS
    canvas: tuple[int, int] | None = None
    reference: Placement | None = None

    @classmethod
    def parse(cls, formats, fps: float = DEFAULT_FPS, canvas: str | None = None, reference=None) -> ExportSettings:
        """Settings from command-line values (formats: repeatable or comma lists; canvas
        "WxH"; reference: a video or an extracted item, see reference_placement). Raises
        ExportError with a one-line reason."""
        fmts = parse_formats(formats)
        if not fmts:
            raise ExportError(f"no export format given; choose from {', '.join(FORMATS)}")
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= 1000):
            raise ExportError(f"export frame rate must be a positive number of frames/s, got {fps!r}")
        size = parse_canvas(canvas)
        ref = reference_placement(reference) if reference is not None else None
        settings = cls(fmts, float(fps), size, ref)
        if "pose-video" in fmts and size is not None and (size[0] % 2 or size[1] % 2):
            raise ExportError(f"pose-video needs an even canvas width and height (H.264 4:2:0), got {canvas}")
        return settings

    def canvas_for(self, frame: Placement | None) -> tuple[int, int]:
        """The canvas an export gets: the given one, else the reference's or source's frame."""
        if self.canvas is not None:
            return self.canvas
        ref = self.reference or frame
        return (ref.width, ref.height) if ref is not None else DEFAULT_CANVAS

    def placement(self, pose: np.ndarray, frame: Placement | None = None) -> Placement:
        """The reference's frame, else the source's own frame (extracted motion), each resized
        into the canvas when one is given; else the motion fitted into the canvas."""
        base = self.reference or frame
        if base is not None:
            return base.into(self.canvas)
        return fit_placement(pose, self.canvas or DEFAULT_CANVAS)


# ---------------------------------------------------------------------------------------
# Arrays: time, BODY_25, drawing.


def check_motion(pose, name: str = "motion") -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 3 or pose.shape[1:] != (NUM_JOINTS, 2) or len(pose) < 1:
        raise ExportError(f"{name}: expected keypoints [T, {NUM_JOINTS}, 2], got {list(pose.shape)}")
    if not np.isfinite(pose).all():
        raise ExportError(f"{name}: keypoints contain NaN or infinite values")
    return pose


def retime(pose: np.ndarray, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Motion at fps_in (frame i at i / fps_in) resampled to fps_out over the same span: frames
    k / fps_out for k < T * fps_out / fps_in, with the data's own resampler (PCHIP, clamped at
    the ends: pose.interpolate.resample). Returns (pose [N, 14, 2], times [N] seconds)."""
    n_in = len(pose)
    n_out = max(1, int(math.floor(n_in * fps_out / fps_in + 1e-9)))
    t_out = np.arange(n_out) / fps_out
    if fps_out == fps_in:
        return np.asarray(pose, dtype=np.float64), t_out
    t_in = np.arange(n_in) / fps_in
    flat = resample(np.asarray(pose, dtype=np.float64).reshape(n_in, -1), t_in, t_out)
    return flat.reshape(n_out, NUM_JOINTS, 2).astype(np.float64), t_out


def body25_keypoints(xy: np.ndarray) -> list[float]:
    """One frame's 14 pixel positions as BODY_25 pose_keypoints_2d: 75 numbers, x, y, c per slot."""
    kp = np.zeros((len(BODY25), 3), dtype=np.float64)
    kp[list(BODY25_SLOTS), :2] = np.round(xy, DECIMALS)
    kp[list(BODY25_SLOTS), 2] = 1.0
    return [float(v) for v in kp.ravel()]


def openpose_frame(xy: np.ndarray, width: int, height: int) -> dict:
    """The JSON object OpenPose writes for a frame with one person (plus the canvas size, which
    the OpenPose editors of ControlNet front-ends read)."""
    return {
        "version": 1.3,
        "canvas_width": int(width),
        "canvas_height": int(height),
        "people": [
            {
                "person_id": [-1],
                "pose_keypoints_2d": body25_keypoints(xy),
                "face_keypoints_2d": [],
                "hand_left_keypoints_2d": [],
                "hand_right_keypoints_2d": [],
                "pose_keypoints_3d": [],
                "face_keypoints_3d": [],
                "hand_left_keypoints_3d": [],
                "hand_right_keypoints_3d": [],
            }
        ],
    }


def draw_openpose(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """One frame [H, W, 3] uint8 RGB: the body drawn as ControlNet's annotator draws it. Each limb
    is an ellipse from joint to joint (half-width STICK_WIDTH) filled with LIMB_SHADE of its
    colour, in OPENPOSE_LIMBS order; then each joint a disc of JOINT_RADIUS in its full colour.
    Positions are truncated to whole pixels as the annotator does."""
    cv2 = import_optional("cv2", purpose="drawing control frames (pose-frames, pose-video)")

    img = np.zeros((height, width, 3), dtype=np.uint8)
    p = np.clip(np.asarray(xy, dtype=np.float64), -4 * max(width, height), 5 * max(width, height))
    for i, (a, b) in enumerate(OPENPOSE_LIMBS):
        (x0, y0), (x1, y1) = p[a], p[b]
        length = math.hypot(x0 - x1, y0 - y1)
        angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
        centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
        poly = cv2.ellipse2Poly(centre, (int(length / 2), STICK_WIDTH), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(img, poly, [int(c * LIMB_SHADE) for c in OPENPOSE_COLOURS[i]])
    for j in range(NUM_JOINTS):
        cv2.circle(img, (int(p[j, 0]), int(p[j, 1])), JOINT_RADIUS, OPENPOSE_COLOURS[j], thickness=-1)
    return img


# ---------------------------------------------------------------------------------------
# Writers.


@contextmanager
def _atomic_dir(path: Path):
    """Yield a temporary folder; it replaces `path` (a folder) only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = path.with_name(f".old-{os.getpid()}-{path.name}")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_openpose(folder: Path, stem: str, px: np.ndarray, width: int, height: int) -> Path:
    """Per-frame OpenPose JSON files <stem>_<frame:012d>_keypoints.json in `folder` (replaced whole)."""
    with _atomic_dir(Path(folder)) as tmp:
        for k, xy in enumerate(px):
            text = json.dumps(openpose_frame(xy, width, height), separators=(",", ":"))
            (tmp / f"{stem}_{k:012d}_keypoints.json").write_text(text, encoding="utf-8")
    return Path(folder)


def write_pose_frames(folder: Path, stem: str, px: np.ndarray, width: int, height: int) -> Path:
    """PNG control frames <stem>_<frame:06d>.png in `folder` (replaced whole), lossless."""
    cv2 = import_optional("cv2", purpose="writing control frames (pose-frames)")

    with _atomic_dir(Path(folder)) as tmp:
        for k, xy in enumerate(px):
            img = draw_openpose(xy, width, height)
            # cv2 writes BGR; compression 1: control frames are mostly black, and level 3 is 3x slower
            if not cv2.imwrite(str(tmp / f"{stem}_{k:06d}.png"), img[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                raise OSError(f"cannot write PNG frames to {tmp}")
    return Path(folder)


def write_pose_video(path: Path, px: np.ndarray, width: int, height: int, fps: float, crf: int = 16) -> Path:
    """The control frames as H.264 mp4 (yuv420p, no audio), frame k at k / fps."""
    av = import_optional("av", purpose="writing the pose video (pose-video)")

    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as c:
            vs = c.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": str(crf)})
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            vs.codec_context.thread_count = 1
            for k, xy in enumerate(px):
                vf = av.VideoFrame.from_ndarray(draw_openpose(xy, width, height), format="rgb24")
                vf.pts, vf.time_base = k, 1 / rate
                for pkt in vs.encode(vf):
                    c.mux(pkt)
            for pkt in vs.encode(None):
                c.mux(pkt)
    return Path(path)


def csv_header() -> list[str]:
    """frame, time_s, then x and y of every joint in pixels, then in torso units."""
    cols = ["frame", "time_s"]
    for unit in ("px", "torso"):
        cols += [f"{name}_{axis}_{unit}" for name in JOINTS for axis in ("x", "y")]
    return cols


def write_csv(path: Path, times: np.ndarray, px: np.ndarray, torso: np.ndarray) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(csv_header())
    for k in range(len(times)):
        w.writerow(
            [k, f"{times[k]:.6f}"]
            + [f"{v:.{DECIMALS}f}" for v in px[k].ravel()]
            + [f"{v:.6f}" for v in torso[k].ravel()]
        )
    write_bytes(path, buf.getvalue().encode("utf-8"))
    return Path(path)


UNITS = {
    "pose_px": "pixels on the canvas, x right, y down (pose_torso * scale + centre)",
    "pose_torso": "torso units: neck to mid-hip distance = 1, centred on the dancer's median mid-hip, x right, y down",
    "times": "seconds from the first frame",
}


def write_npz(path: Path, times, px, torso, fps: float, place: Placement) -> Path:
    """Arrays with their names: pose_px / pose_torso [N, 14, 2] float32, times [N], joints [14],
    body25_slots [14], fps, canvas (width, height), scale, centre, units (one line per array)."""
    buf = io.BytesIO()
    np.savez(
        buf,
        pose_px=np.asarray(px, dtype=np.float32),
        pose_torso=np.asarray(torso, dtype=np.float32),
        times=np.asarray(times, dtype=np.float64),
        joints=np.array(JOINTS),
        body25_slots=np.array(BODY25_SLOTS, dtype=np.int64),
        fps=np.float64(fps),
        canvas=np.array([place.width, place.height], dtype=np.int64),
        scale=np.float64(place.scale),
        centre=np.array(place.centre, dtype=np.float64),
        units=np.array([f"{k}: {v}" for k, v in UNITS.items()]),
    )
    write_bytes(path, buf.getbuffer())
    return Path(path)


def export_motion(
    pose, out, stem: str, settings: ExportSettings, fps_in: float = FPS, frame: Placement | None = None
) -> dict:
    """Write `pose` ([T, 14, 2] torso units at fps_in frames/s) in settings.formats into `out`
    as <stem>_openpose/, <stem>_pose.mp4, <stem>_pose/, <stem>_pose.csv, <stem>_pose.npz, with
    <stem>_export.json describing them. frame: the source's own pixel frame (extracted motion),
    used when there is no reference. Returns {format: path, "export": json path, "frames": N}."""
    pose = check_motion(pose, stem)
    out = Path(out)
    torso, times = retime(pose, fps_in, settings.fps)
    place = settings.placement(pose, frame)
    w, h = place.width, place.height
    if "pose-video" in settings.formats and (w % 2 or h % 2):
        # A video's own odd frame size: one black column or row more, the pixels where they were.
        w, h = w + w % 2, h + h % 2
        place = replace(place, width=w, height=h, how=f"{place.how}, padded to {w}x{h} for H.264")
    px = place.to_pixels(torso)
    written: dict = {}
    for fmt in settings.formats:
        if fmt == "openpose":
            written[fmt] = write_openpose(out / f"{stem}_openpose", stem, px, w, h)
        elif fmt == "pose-video":
            written[fmt] = write_pose_video(out / f"{stem}_pose.mp4", px, w, h, settings.fps)
        elif fmt == "pose-frames":
            written[fmt] = write_pose_frames(out / f"{stem}_pose", stem, px, w, h)
        elif fmt == "csv":
            written[fmt] = write_csv(out / f"{stem}_pose.csv", times, px, torso)
        elif fmt == "npz":
            written[fmt] = write_npz(out / f"{stem}_pose.npz", times, px, torso, settings.fps, place)
    info = {
        "fps": settings.fps,
        "source_fps": fps_in,
        "frames": len(times),
        "seconds": len(times) / settings.fps,
        "canvas": [w, h],
        "placement": {**place.as_dict(), "how": place.how},
        "joints": list(JOINTS),
        "body25_slots": list(BODY25_SLOTS),
        "units": UNITS,
        "files": {k: v.name for k, v in written.items()},
    }
    meta = out / f"{stem}_export.json"
    write_json(meta, info)
    return {**{k: str(v) for k, v in written.items()}, "export": str(meta), "frames": len(times)}


# ---------------------------------------------------------------------------------------
# Inputs: extracted items, generated keypoints, reference dancers.


@dataclass
class MotionSource:
    """Motion to export: pose [T, 14, 2] torso units at fps, its name, and its own pixel frame
    when it has one (extracted from a video); t0: the source time of frame 0, seconds."""

    name: str
    pose: np.ndarray
    fps: float = FPS
    frame: Placement | None = None
    t0: float = 0.0


def _records(data: Path) -> list[tuple[Path, dict]]:
    out = []
    for p in sorted((data / "items").glob("*.json")):
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not one of ours, or damaged: extraction redoes it
        if isinstance(rec, dict) and rec.get("status") == "ok" and isinstance(rec.get("views"), list):
            out.append((p, rec))
    return out


def _view_of(npz: Path) -> dict:
    """The record entry of an extracted item DATA/items/<id>.npz (its job's record names it)."""
    for _, rec in _records(npz.parent.parent):
        for v in rec["views"]:
            if v.get("id") == npz.stem:
                return v
    raise ExportError(f"{npz}: no finished extraction record in {npz.parent} names item {npz.stem!r}")


def _load_view(items: Path, view: dict) -> MotionSource:
    path = items / f"{view['id']}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            pose = z["pose"]
    except (OSError, KeyError, ValueError) as e:
        raise ExportError(f"{path}: not a readable extracted item ({e})") from None
    return MotionSource(view["id"], pose, FPS, frame_placement(view, "source"), float(view.get("t0", 0.0)))


def load_motion(path, items: list[str] | None = None) -> list[MotionSource]:
    """Motion to export from: a data folder (`momu-data extract` output: every finished item, or
    those named in `items`), one extracted item (DATA/items/<id>.npz, or its job's record
    <id>.json: each of its views), or generated keypoints (<name>.npy [T, 14, 2] torso units;
    the frame rate from <name>.json beside it, else 62.5)."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"no such file or folder: {path}")
    if path.is_dir():
        if not (path / "items").is_dir():
            raise ExportError(f"{path}: not a data folder (no items/; run `momu-data extract` into it)")
        views = [v for _, rec in _records(path) for v in rec["views"]]
        if items:
            missing = sorted(set(items) - {v["id"] for v in views})
            if missing:
                raise ExportError(f"{path}: no finished item {', '.join(missing)}")
            views = [v for v in views if v["id"] in set(items)]
        if not views:
            raise ExportError(f"{path}: no finished items to export")
        return [_load_view(path / "items", v) for v in views]
    if path.suffix == ".npz":
        return [_load_view(path.parent, _view_of(path))]
    if path.suffix == ".json":
        rec = _read_json(path)
        if not isinstance(rec.get("views"), list) or rec.get("status") != "ok":
            raise ExportError(f"{path}: not a finished extraction record (status ok, with views)")
        return [_load_view(path.parent, v) for v in rec["views"]]
    if path.suffix == ".npy":
        try:
            pose = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ExportError(f"{path}: not a readable .npy file ({e})") from None
        side = path.with_suffix(".json")
        fps = float(_read_json(side).get("fps", FPS)) if side.is_file() else FPS
        return [MotionSource(path.stem, check_motion(pose, str(path)), fps)]
    raise ExportError(f"{path}: expected a data folder, an item (.npz or record .json) or generated keypoints (.npy)")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


def reference_placement(path) -> Placement:
    """The pixel frame of a reference dancer: its extracted centre, scale and frame size, so that
    exported motion stands where that dancer stands and is as large. path: an extracted item
    (DATA/items/<id>.npz, or a record <id>.json with one view): read from its record; or a video:
    its pose is extracted with mediapipe as `momu-data extract` does (momu_data.extract.
    motion_from_video; about as long as extracting the video)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"reference dancer: no such file: {path}")
    how = f"reference {path.name}"
    if path.suffix in (".npz", ".json"):
        if path.suffix == ".npz":
            view = _view_of(path)
        else:
            views = _read_json(path).get("views") or []
            if len(views) != 1:
                ids = ", ".join(str(v.get("id")) for v in views) or "none"
                raise ExportError(f"{path}: a reference needs one view (this record has: {ids}); pass its .npz")
            view = views[0]
        place = frame_placement(view, how)
        if place is None:
            raise ExportError(f"{path}: the reference has no frame size (keypoints without a video)")
        return place
    from momu_data.extract import motion_from_video
    from momu_data.media import MediaError

    try:
        _, info = motion_from_video(path)
    except MediaError as e:
        raise ExportError(f"reference dancer {path}: {e}") from None
    place = frame_placement(info, how)
    if place is None:
        raise ExportError(f"reference dancer {path}: no frame size")
    return place
