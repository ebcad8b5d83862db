"""Several people followed through a video, each an identity that never switches.

mediapipe's tracking mode for one person, kept per person: each tracked person's landmarks
give the ROI of its next frame (landmarks 33 and 34, see blazepose), so the detector need not
run every frame. The detector runs on the first frame, every `detect_every` frames, and on
the frame after a person is lost; its detections are assigned to the tracked people by the
Hungarian method (scipy's linear_sum_assignment) on the overlap of their body squares, and a
detection nobody claims starts a new identity.

An identity must never pass from one person to another. Where that could happen a track is
cut (it ends, and whoever is there later starts a new identity):
- lost: the landmark model's pose presence falls below min_presence;
- jump: the median joint moves more than max_jump torso lengths from one frame to the next;
- overlap: two tracked people's body squares overlap by more than overlap_iou (one walks in
  front of the other, or both followed the same person): both tracks end, since which of
  them still holds its own person cannot be told from the poses. No new identity starts
  where it would overlap another one that much, nor for CONTEST_FRAMES inside the region where
  two identities were cut for overlapping (the one behind may be hidden there, and the
  landmarks of the one in front mixed with its limbs), so people stay untracked while they
  overlap and get new identities once apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from momu_data.pose.blazepose import BlazePose, Landmarks, Roi, box_iou, roi_from_points
from momu_data.skeleton import torso_size

DETECT_EVERY = 8  # frames between detector runs while people are tracked (about 4 per second at 30 fps)
MIN_PRESENCE = 0.5  # mediapipe's min_tracking_confidence
MAX_JUMP = 0.5  # torso lengths per frame: the median joint of a dancer moves far less at 24+ frames/s
OVERLAP_IOU = 0.5  # body squares of two identities overlapping more than this: both cut
MATCH_IOU = 0.3  # a detection overlapping a tracked person's body square this much is that person
CONTEST_FRAMES = 24  # frames a region where identities were cut for overlapping starts none


@dataclass
class Track:
    """One identity: the frames it covers (consecutive indices) and its 14 keypoints there."""

    id: int
    start: int
    roi: Roi
    xy: list = field(default_factory=list)
    conf: list = field(default_factory=list)
    presence: list = field(default_factory=list)
    end_reason: str = ""

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.start, self.start + len(self.xy))

    def add(self, lm: Landmarks) -> None:
        self.xy.append(lm.xy)
        self.conf.append(lm.conf)
        self.presence.append(lm.presence)
        self.roi = lm.next_roi


def inside_fraction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How much of each box a [N, 4] lies inside each box b [M, 4] -> [N, M]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area = np.clip((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-9, None)
    return w * h / area[:, None]


def jump(prev_xy: np.ndarray, xy: np.ndarray) -> float:
    """Median joint displacement between two frames, in torso lengths of the earlier one."""
    scale = max(float(torso_size(prev_xy)), 1e-6)
    return float(np.median(np.linalg.norm(np.asarray(xy) - np.asarray(prev_xy), axis=-1))) / scale


class MultiPoseTracker:
    """Feed frames in order with update(i, rgb); finish() returns every identity's Track.

    model: an object with detect(rgb) -> [blazepose.Detection] and landmarks(rgb, roi) ->
    blazepose.Landmarks (a BlazePose by default). max_people: at most this many identities at
    a time (None: everyone found), the detector's most confident first."""

    def __init__(
        self,
        model=None,
        max_people: int | None = None,
        detect_every: int = DETECT_EVERY,
        min_presence: float = MIN_PRESENCE,
        max_jump: float = MAX_JUMP,
        overlap_iou: float = OVERLAP_IOU,
        match_iou: float = MATCH_IOU,
        contest_frames: int = CONTEST_FRAMES,
    ):
        self.model = model if model is not None else BlazePose()
        self.max_people = max_people
        self.detect_every = max(1, int(detect_every))
        self.min_presence, self.max_jump = min_presence, max_jump
        self.overlap_iou, self.match_iou = overlap_iou, match_iou
        self.contest_frames = contest_frames
        self._contested: list[tuple[np.ndarray, int]] = []  # (box, last frame it holds)
        self._frame = 0
        self.active: list[Track] = []
        self.done: list[Track] = []
        self._next_id = 0
        self._last_detect: int | None = None
        self._lost = False
        self.detector_runs = 0
        self.landmark_runs = 0

    def _end(self, tr: Track, reason: str) -> None:
        tr.end_reason = reason
        self.done.append(tr)
        self._lost = True

    def update(self, i: int, rgb: np.ndarray) -> list[Track]:
        """Track frame i (frames must come in order, consecutively); returns the identities
        present in it."""
        self._frame = i
        self._contested = [(b, until) for b, until in self._contested if until >= i]
        kept = []
        for tr in self.active:
            lm = self.model.landmarks(rgb, tr.roi)
            self.landmark_runs += 1
            if lm.presence < self.min_presence:
                self._end(tr, "lost")
            elif jump(tr.xy[-1], lm.xy) > self.max_jump:
                self._end(tr, "jump")
            else:
                tr.add(lm)
                kept.append(tr)
        self.active = self._cut_overlaps(kept)
        full = self.max_people is not None and len(self.active) >= self.max_people
        due = self._last_detect is None or i - self._last_detect >= self.detect_every
        if not self.active or self._lost or (due and not full):
            self._detect(i, rgb)
        return list(self.active)

    def _cut_overlaps(self, tracks: list[Track]) -> list[Track]:
        if len(tracks) < 2:
            return tracks
        iou = box_iou(*(np.stack([t.roi.box() for t in tracks]),) * 2)
        np.fill_diagonal(iou, 0.0)
        bad = np.any(iou > self.overlap_iou, axis=1)
        for a, b in zip(*np.nonzero(np.triu(iou > self.overlap_iou))):
            boxes = np.stack([tracks[a].roi.box(), tracks[b].roi.box()])
            zone = np.concatenate([boxes[:, :2].min(0), boxes[:, 2:].max(0)])
            self._contested.append((zone, self._frame + self.contest_frames))
        for t, b in zip(tracks, bad):
            if b:
                self._end(t, "overlap")
        return [t for t, b in zip(tracks, bad) if not b]

    def _detect(self, i: int, rgb: np.ndarray) -> None:
        from scipy.optimize import linear_sum_assignment

        self._last_detect, self._lost = i, False
        dets = self.model.detect(rgb)
        self.detector_runs += 1
        if not dets:
            return
        rois = [roi_from_points(d.keypoints[0], d.keypoints[1]) for d in dets]
        det_boxes = np.stack([r.box() for r in rois])
        claimed = np.zeros(len(dets), bool)
        if self.active:
            iou = box_iou(np.stack([t.roi.box() for t in self.active]), det_boxes)
            rows, cols = linear_sum_assignment(-iou)
            claimed[cols[iou[rows, cols] >= self.match_iou]] = True
            # A detection overlapping a tracked person much, though assigned to nobody, is no
            # one new either (a second detection of a tracked person, or someone behind them).
            claimed |= np.any(iou > self.overlap_iou, axis=0)
        # Detections overlapping each other (people in front of each other): none starts.
        between = box_iou(det_boxes, det_boxes)
        np.fill_diagonal(between, 0.0)
        claimed |= np.any(between > self.overlap_iou, axis=1)
        for k in np.flatnonzero(~claimed):  # best first (the detector's order)
            if self.max_people is not None and len(self.active) >= self.max_people:
                break
            if self._contested:
                zones = np.stack([z for z, _ in self._contested])
                if np.any(inside_fraction(det_boxes[k], zones) > 0.5):
                    continue  # where two identities were just cut for overlapping
            lm = self.model.landmarks(rgb, rois[k])
            self.landmark_runs += 1
            if lm.presence < self.min_presence:
                continue
            if self.active and np.any(
                box_iou(lm.next_roi.box(), np.stack([t.roi.box() for t in self.active])) > self.overlap_iou
            ):
                continue  # its landmarks lie on someone already tracked
            tr = Track(self._next_id, i, rois[k])
            self._next_id += 1
            tr.add(lm)
            self.active.append(tr)

    def finish(self) -> list[Track]:
        """Every identity, active ones ended, in order of their start (then id)."""
        for tr in self.active:
            tr.end_reason = tr.end_reason or "end"
            self.done.append(tr)
        self.active = []
        return sorted(self.done, key=lambda t: (t.start, t.id))
