"""The landmark model pruned to the outputs we read (blazepose.prune_model): fewer operators,
the same landmarks bit for bit, the same tracks."""

from __future__ import annotations

import numpy as np
import pytest

from momu_data.pose.blazepose import (
    LANDMARK_OUTPUTS,
    BlazePose,
    landmark_model,
    model_path,
    prune_model,
    roi_from_points,
)
from momu_data.pose.tracking import MultiPoseTracker
from momu_data.synth.group import make_group_clip, render_group_frames


def _graph(content: bytes):
    """(operator count, output tensor names) of a .tflite model's only subgraph."""
    from ai_edge_litert import schema_py_generated as schema

    g = schema.Model.GetRootAs(content, 0).Subgraphs(0)
    return g.OperatorsLength(), [g.Tensors(g.Outputs(k)).Name().decode() for k in range(g.OutputsLength())]


def test_pruned_landmark_model_drops_the_unread_outputs_and_their_operators():
    full_ops, full_outputs = _graph(model_path("pose_landmark_full").read_bytes())
    ops, outputs = _graph(landmark_model())
    # The wheel's model: landmarks, presence, segmentation mask, heatmaps, world landmarks.
    assert sorted(full_outputs) == ["Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4"]
    assert sorted(outputs) == sorted(LANDMARK_OUTPUTS) == ["Identity", "Identity_1"]
    # The mask's and heatmaps' decoder (13 convolutions, 10 depthwise ones, 5 resizes, 8 adds,
    # a reshape and the 46 dequantizations of their float16 weights): 83 of 332 operators.
    assert (full_ops, ops) == (332, 249)


def test_prune_model_names_a_missing_output():
    with pytest.raises(ValueError, match=r"no output tensor named \['Mask'\]"):
        prune_model(model_path("pose_landmark_full").read_bytes(), ("Identity", "Mask"))


def test_pruned_model_gives_the_same_landmarks_bit_for_bit():
    clip = make_group_clip(0, 0.2, 2, seed=3)
    pruned, full = BlazePose(), BlazePose(prune=False)
    checked = 0
    for img in render_group_frames(clip):
        for d in pruned.detect(img):
            roi = roi_from_points(d.keypoints[0], d.keypoints[1])
            a, b = pruned.landmarks(img, roi), full.landmarks(img, roi)
            np.testing.assert_array_equal(a.xy33, b.xy33)
            np.testing.assert_array_equal(a.vis33, b.vis33)
            assert a.presence == b.presence > 0.5
            checked += 1
    assert checked >= 2 * clip.n_frames  # both dancers, every frame


def test_tracks_are_the_same_with_the_pruned_model():
    clip = make_group_clip(0, 0.5, 2, seed=3)
    frames = list(render_group_frames(clip))
    tracks = {}
    for prune in (True, False):
        tracker = MultiPoseTracker(BlazePose(prune=prune), detect_every=4)
        for i, img in enumerate(frames):
            tracker.update(i, img)
        tracks[prune] = tracker.finish()
    assert len(tracks[True]) == len(tracks[False]) == 2
    for a, b in zip(tracks[True], tracks[False]):
        assert (a.id, a.start, a.end_reason) == (b.id, b.start, b.end_reason)
        np.testing.assert_array_equal(np.stack(a.xy), np.stack(b.xy))
        np.testing.assert_array_equal(np.stack(a.conf), np.stack(b.conf))
