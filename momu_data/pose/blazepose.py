"""mediapipe's BlazePose models run directly with LiteRT: a person detector and a landmark
model, so that several people of one frame each get their own landmark pass.

mediapipe's legacy `Pose` graph follows one person; its Tasks `PoseLandmarker(num_poses=)`
refuses a bundle made of the two .tflite files the wheel ships (they lack its metadata). So
we run those two files (`mediapipe/modules/pose_detection/pose_detection.tflite`,
`mediapipe/modules/pose_landmark/pose_landmark_full.tflite`, offline, inside the installed
mediapipe package) with `ai-edge-litert` and decode them as mediapipe's graphs do
(`pose_detection_cpu.pbtxt`, `pose_detection_to_roi.pbtxt`, `pose_landmark_by_roi_cpu.pbtxt`,
`pose_landmarks_to_roi.pbtxt`):

- detector: the frame letterboxed into 224x224 (zero border, values in [-1, 1]); 2254 SSD
  anchors (SsdAnchorsCalculator: 5 layers, strides 8, 16, 32, 32, 32, scales 0.1484375 to 0.75,
  fixed anchor size, offset 0.5); each anchor regresses 12 values (box centre x, y, w, h, then
  4 keypoints x, y), divided by 224 and offset by the anchor's centre; the score is the
  sigmoid of the clipped logit (threshold 0.5); weighted non-maximum suppression at IoU 0.3.
- region of interest (ROI): a square centred on keypoint 0 (the hips' centre), its side twice
  the distance to keypoint 1 (the full-body scale point) times 1.25, rotated so that the line
  from keypoint 0 to keypoint 1 points up (target angle 90 degrees).
- landmarks: the ROI cropped into 256x256 (values in [0, 1], border replicated); 39 landmarks
  x 5 values (x, y in crop pixels, z, visibility and presence logits, sigmoid), plus a pose
  presence score; landmarks 33 and 34 (hips' centre and scale point) give the next frame's
  ROI, as in mediapipe's tracking mode.

The landmark model also computes a segmentation mask (256x256), 39 heatmaps (64x64) and world
landmarks, which we never read; LiteRT runs every operator of a model whatever outputs one
reads, and the mask's and heatmaps' decoder is over a third of the network's work. So the
model is loaded pruned (prune_model: only the operators that compute the landmarks and the
presence score, in memory, from the wheel's file): the same numbers bit for bit, about 0.7x
the CPU time of a landmark pass (benchmarks/multi_dancer.py).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from momu_data.optional import import_optional
from momu_data.skeleton import MEDIAPIPE_TO_14, map_keypoints

# What the pose models need and how a models-only install gets it (momu_data.optional).
PURPOSE = "tracking several dancers (--dancers)"
INSTALL = "'momu[data]'"

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_ANCHORS = 2254
# SsdAnchorsCalculator options of pose_detection_cpu.pbtxt.
ANCHOR_STRIDES = (8, 16, 32, 32, 32)
ANCHOR_MIN_SCALE = 0.1484375
ANCHOR_MAX_SCALE = 0.75
ANCHOR_OFFSET = 0.5
# TensorsToDetectionsCalculator / NonMaxSuppressionCalculator options.
MIN_SCORE = 0.5
SCORE_CLIP = 100.0
NMS_IOU = 0.3
SAME_PERSON_IOU = 0.5  # our own: body squares of two regions' detections that are one person
ROI_SCALE = 1.25  # RectTransformationCalculator scale_x, scale_y (both graphs)
ROI_TARGET_ANGLE = np.pi / 2  # rotation_vector_target_angle_degrees: 90
NUM_LANDMARKS = 39  # 33 body landmarks, then auxiliary ones (33: hips' centre, 34: scale point)
# The landmark model's outputs we read: the 39 landmarks and the pose presence score (the others:
# Identity_2 segmentation mask, Identity_3 heatmaps, Identity_4 world landmarks).
LANDMARK_OUTPUTS = ("Identity", "Identity_1")
TFLITE_FILE_ID = b"TFL3"


def model_path(name: str) -> Path:
    """A model file inside the installed mediapipe package ("pose_detection" or
    "pose_landmark_full")."""
    mediapipe = import_optional("mediapipe", purpose=PURPOSE, install=INSTALL)
    folder = "pose_detection" if name == "pose_detection" else "pose_landmark"
    p = Path(mediapipe.__file__).parent / "modules" / folder / f"{name}.tflite"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: not in the installed mediapipe wheel (mediapipe==0.10.21 ships it)")
    return p


def prune_model(content: bytes, outputs) -> bytes:
    """A .tflite model (its bytes) reduced to the operators its output tensors named `outputs`
    depend on; those become its only outputs, in the model's order. Tensors, weights and
    operators that remain are unchanged, so these outputs are the same numbers as before.
    Raises ValueError for a model with several subgraphs or external (offset) buffers, or
    when an output is not found."""
    schema, flatbuffers = import_optional(
        "ai_edge_litert.schema_py_generated", "flatbuffers", purpose=PURPOSE, install=INSTALL
    )
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    if len(model.subgraphs) != 1:
        raise ValueError(f"prune_model handles one subgraph, not {len(model.subgraphs)}")
    if any(b.offset for b in model.buffers or []):
        raise ValueError("prune_model does not handle buffers stored after the flatbuffer (offset)")
    g = model.subgraphs[0]
    name = lambda i: g.tensors[i].name.decode()  # noqa: E731
    keep = [int(i) for i in g.outputs if name(i) in outputs]
    missing = set(outputs) - {name(i) for i in keep}
    if missing:
        raise ValueError(f"no output tensor named {sorted(missing)} (the model has {[name(i) for i in g.outputs]})")
    needed, ops = set(keep), []
    for op in reversed(g.operators):  # operators are stored in execution order
        if any(int(o) in needed for o in op.outputs):
            ops.append(op)
            needed.update(int(i) for i in op.inputs if i >= 0)
    g.operators, g.outputs = ops[::-1], keep
    for sig in model.signatureDefs or []:
        sig.outputs = [t for t in sig.outputs or [] if t.tensorIndex in keep]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_FILE_ID)
    return bytes(builder.Output())


@functools.lru_cache(maxsize=1)
def landmark_model() -> bytes:
    """pose_landmark_full.tflite pruned to the landmarks and the presence score (LANDMARK_OUTPUTS),
    made once per process from the wheel's file."""
    return prune_model(model_path("pose_landmark_full").read_bytes(), LANDMARK_OUTPUTS)


def ssd_anchors() -> np.ndarray:
    """Anchor centres [2254, 2] (x, y in [0, 1]) in the detector's output order.

    As SsdAnchorsCalculator builds them: consecutive layers of the same stride share one grid;
    each layer adds two anchors per cell (aspect ratio 1 and the interpolated scale), so the
    strides 8, 16, 32 give 28x28x2 + 14x14x2 + 7x7x6 = 2254; row-major over cells, the cell's
    anchors consecutive. With fixed_anchor_size every anchor's width and height are 1."""
    out = []
    layer = 0
    while layer < len(ANCHOR_STRIDES):
        stride = ANCHOR_STRIDES[layer]
        last = layer
        while last < len(ANCHOR_STRIDES) and ANCHOR_STRIDES[last] == stride:
            last += 1
        per_cell = 2 * (last - layer)
        n = int(np.ceil(DETECTOR_SIZE / stride))
        ys, xs = np.meshgrid((np.arange(n) + ANCHOR_OFFSET) / n, (np.arange(n) + ANCHOR_OFFSET) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
        layer = last
    return np.concatenate(out).astype(np.float32)


@dataclass
class Detection:
    """A detected person in pixel coordinates: face box (x0, y0, x1, y1), 4 keypoints
    (0: hips' centre, 1: full-body scale point, 2, 3: upper body), score in [0, 1]."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score=MIN_SCORE):
    """Raw detector outputs [2254, 12], [2254] -> (boxes [K, 4] as x0, y0, x1, y1, keypoints
    [K, 4, 2], scores [K]) in the detector input's normalised coordinates, for the anchors
    whose score passes min_score."""
    raw_boxes = np.asarray(raw_boxes, np.float32).reshape(len(anchors), 12)
    scores = _sigmoid(np.clip(np.asarray(raw_scores, np.float64).ravel(), -SCORE_CLIP, SCORE_CLIP))
    keep = scores >= min_score
    b, a = raw_boxes[keep] / DETECTOR_SIZE, anchors[keep]
    cx, cy = b[:, 0] + a[:, 0], b[:, 1] + a[:, 1]
    w, h = b[:, 2], b[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = b[:, 4:12].reshape(-1, 4, 2) + a[:, None, :]
    return boxes, kps, scores[keep]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N, 4] and b [M, 4] (x0, y0, x1, y1) -> [N, M]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: np.clip(r[:, 2] - r[:, 0], 0, None) * np.clip(r[:, 3] - r[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes, keypoints, scores, iou_threshold=NMS_IOU):
    """mediapipe's WEIGHTED non-maximum suppression: the best remaining detection absorbs
    every detection overlapping it by more than iou_threshold; the result's box and
    keypoints are their score-weighted mean, its score the best one's. Best first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    remaining = list(order)
    out = []
    while remaining:
        top = remaining[0]
        ious = box_iou(boxes[[top]], boxes[remaining])[0]
        group = [r for r, v in zip(remaining, ious) if v > iou_threshold or r == top]
        w = np.asarray(scores)[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kp = (keypoints[group].reshape(len(group), -1) * w).sum(0).reshape(-1, 2) / w.sum()
        out.append((box, kp, float(scores[top])))
        remaining = [r for r in remaining if r not in group]
    return out


@dataclass
class Roi:
    """A square region in pixels: centre (cx, cy), side, rotation (radians, clockwise in
    image coordinates: the crop's up direction is the image's up turned by angle)."""

    cx: float
    cy: float
    size: float
    angle: float

    def corners(self) -> np.ndarray:
        """The crop's top-left, top-right, bottom-left corners in image pixels [3, 2]."""
        return self.to_image(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """Normalised crop coordinates [..., 2] (0..1) -> image pixels."""
        d = (np.asarray(uv, np.float64) - 0.5) * self.size
        c, s = np.cos(self.angle), np.sin(self.angle)
        return np.stack([self.cx + c * d[..., 0] - s * d[..., 1], self.cy + s * d[..., 0] + c * d[..., 1]], axis=-1)

    def box(self) -> np.ndarray:
        """The axis-aligned box (x0, y0, x1, y1) around the rotated square."""
        p = self.to_image(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        return np.concatenate([p.min(0), p.max(0)])


def roi_from_points(centre, scale_point, scale: float = ROI_SCALE) -> Roi:
    """AlignmentPointsRectsCalculator + RectTransformationCalculator: a square centred on
    `centre`, side 2 x |scale_point - centre| x scale, turned so that scale_point is up."""
    x0, y0 = float(centre[0]), float(centre[1])
    x1, y1 = float(scale_point[0]), float(scale_point[1])
    side = 2.0 * float(np.hypot(x1 - x0, y1 - y0)) * scale
    angle = ROI_TARGET_ANGLE - np.arctan2(-(y1 - y0), x1 - x0)
    angle = float((angle + np.pi) % (2 * np.pi) - np.pi)
    return Roi(x0, y0, side, angle)


def letterbox(rgb: np.ndarray, size: int = DETECTOR_SIZE):
    """The frame fitted into size x size, keeping its aspect (zero border, centred) ->
    (float tensor [size, size, 3] in [-1, 1], (scale, pad_x, pad_y) in input pixels)."""
    cv2 = import_optional("cv2", purpose=PURPOSE, install=INSTALL)
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[py : py + nh, px : px + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return canvas.astype(np.float32) * (2.0 / 255.0) - 1.0, (s, px, py)


def detection_tiles(width: int, height: int, min_aspect: float = 1.25) -> list[tuple[int, int, int, int]]:
    """Regions (x, y, w, h) the detector searches: the whole frame, or for a frame whose long
    side is at least min_aspect times its short side, squares of the short side along the long
    one, overlapping by half (a face always lies whole in one of them), each scaled into the
    detector's input 1.25 to 2 times larger than the whole frame would be."""
    side, long = min(width, height), max(width, height)
    if long < min_aspect * side:
        return [(0, 0, width, height)]
    out = []
    n = int(np.ceil((long - side) / (side / 2))) + 1
    for i in range(n):
        off = int(round(i * (long - side) / (n - 1)))
        out.append((off, 0, side, side) if width >= height else (0, off, side, side))
    return out


def crop_roi(rgb: np.ndarray, roi: Roi, size: int = LANDMARK_SIZE) -> np.ndarray:
    """The rotated square ROI of the frame as a float tensor [size, size, 3] in [0, 1]."""
    cv2 = import_optional("cv2", purpose=PURPOSE, install=INSTALL)
    src = roi.corners().astype(np.float32)
    dst = np.array([[0, 0], [size, 0], [0, size]], np.float32)
    m = cv2.getAffineTransform(src, dst)
    out = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.astype(np.float32) * (1.0 / 255.0)


@dataclass
class Landmarks:
    """One landmark pass: 33 body landmarks in image pixels [33, 2], their visibility [33],
    the pose presence score, the next frame's ROI, and the 14 keypoints and confidences."""

    xy33: np.ndarray
    vis33: np.ndarray
    presence: float
    next_roi: Roi
    xy: np.ndarray
    conf: np.ndarray


def decode_landmarks(raw: np.ndarray, flag: float, roi: Roi, size: int = LANDMARK_SIZE) -> Landmarks:
    """Landmark model outputs ([195] = 39 x (x, y, z, visibility, presence), the pose
    presence score, which the model already passes through a sigmoid) of a crop of `roi`
    -> Landmarks in image pixels."""
    lm = np.asarray(raw, np.float32).reshape(NUM_LANDMARKS, 5)
    pts = roi.to_image(lm[:, :2] / size)
    vis = _sigmoid(lm[:33, 3]).astype(np.float32)
    xy33 = pts[:33].astype(np.float32)
    xy, conf = map_keypoints(xy33, vis, MEDIAPIPE_TO_14)
    return Landmarks(xy33, vis, float(np.clip(flag, 0, 1)), roi_from_points(pts[33], pts[34]), xy, np.clip(conf, 0, 1))


class BlazePose:
    """The detector and the landmark model of mediapipe's wheel on LiteRT (CPU, XNNPACK).

    detect(rgb) -> [Detection] (pixels, best first); landmarks(rgb, roi) -> Landmarks.
    prune=False runs the landmark model as the wheel ships it (the same landmarks, about 1.4x
    the CPU time: it also computes the outputs we never read, see landmark_model)."""

    def __init__(self, num_threads: int = 1, min_score: float = MIN_SCORE, prune: bool = True):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        Interpreter = import_optional("ai_edge_litert.interpreter", purpose=PURPOSE, install=INSTALL).Interpreter
        self.min_score = min_score
        self.anchors = ssd_anchors()
        self._det = Interpreter(model_path=str(model_path("pose_detection")), num_threads=num_threads)
        if prune:
            self._lm = Interpreter(model_content=landmark_model(), num_threads=num_threads)
        else:
            self._lm = Interpreter(model_path=str(model_path("pose_landmark_full")), num_threads=num_threads)
        for it in (self._det, self._lm):
            it.allocate_tensors()
        self._det_in = self._det.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._det.get_output_details()}
        self._det_boxes, self._det_scores = outs["Identity"], outs["Identity_1"]
        self._lm_in = self._lm.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._lm.get_output_details()}
        self._lm_out, self._lm_flag = outs["Identity"], outs["Identity_1"]

    def detect(self, rgb: np.ndarray, tiles: bool = True) -> list[Detection]:
        """People in the frame, best first. The detector finds a person by the face, which in
        a wide (or tall) frame of several full-body dancers is only a few pixels of its 224x224
        input; with tiles the frame is also searched in overlapping squares (see
        detection_tiles), and the candidates of all of them go through one suppression."""
        regions = detection_tiles(rgb.shape[1], rgb.shape[0]) if tiles else [(0, 0, rgb.shape[1], rgb.shape[0])]
        found = []
        for x, y, w, h in regions:  # mediapipe's suppression within a region, on the face boxes
            found += weighted_nms(*self._candidates(rgb[y : y + h, x : x + w], x, y))
        if len(regions) > 1 and found:
            # Across regions the face box is no guide (its regressed size hardly follows the
            # face below ~20 input pixels): one person seen in two regions has two boxes of
            # different sizes but nearly the same body square (keypoints 0 and 1).
            body = np.stack([roi_from_points(k[0], k[1]).box() for _, k, _ in found])
            kps = np.stack([np.concatenate([b, k.ravel()]) for b, k, _ in found])
            merged = weighted_nms(body, kps, np.array([sc for _, _, sc in found]), SAME_PERSON_IOU)
            found = [(k.ravel()[:4], k.ravel()[4:].reshape(-1, 2), sc) for _, k, sc in merged]
        return [Detection(b, k, sc) for b, k, sc in found]

    def _candidates(self, img: np.ndarray, ox: float, oy: float):
        """Decoded detections of one image region, before suppression, in frame pixels."""
        x, (s, px, py) = letterbox(img)
        self._det.set_tensor(self._det_in, x[None])
        self._det.invoke()
        raw_b = self._det.get_tensor(self._det_boxes)[0]
        raw_s = self._det.get_tensor(self._det_scores)[0]
        boxes, kps, scores = decode_detections(raw_b, raw_s, self.anchors, self.min_score)
        # Letterbox removal: detector input pixels -> region pixels -> frame pixels.
        shift = np.array([px, py], np.float64)
        org = np.array([ox, oy], np.float64)
        boxes = ((boxes.reshape(-1, 2, 2) * DETECTOR_SIZE - shift) / s + org).reshape(-1, 4)
        kps = (kps * DETECTOR_SIZE - shift) / s + org
        return boxes, kps, scores

    def landmarks(self, rgb: np.ndarray, roi: Roi) -> Landmarks:
        self._lm.set_tensor(self._lm_in, crop_roi(rgb, roi)[None])
        self._lm.invoke()
        raw = self._lm.get_tensor(self._lm_out)[0]
        flag = float(self._lm.get_tensor(self._lm_flag).ravel()[0])
        return decode_landmarks(raw, flag, roi)
