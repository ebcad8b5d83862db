"""Rendering of samples: skeleton mp4, side-by-side with a source video, beat plot."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from media import write_av

from momu_data.skeleton import J
from momu_models.generate import render as R

FPS = 62.5
SR = 16000
BEAT = 0.5  # s between clicks; the arms reverse on every click
CLICK_TIMES = np.arange(0.25, 2.9, BEAT)


def waving(seconds: float = 3.0, travel: float = 0.0) -> np.ndarray:
    """A standing figure [T, 14, 2] (torso units, y down) whose arms swing up and down as a
    triangle wave that reverses at each click, optionally drifting `travel` units to the right."""
    T = int(round(seconds * FPS))
    t = np.arange(T) / FPS
    base = np.array(
        [
            [0, -1.35],
            [0, -1],
            [-0.35, -1],
            [-0.8, -1],
            [-1.25, -1],
            [0.35, -1],
            [0.8, -1],
            [1.25, -1],
            [-0.2, 0],
            [-0.25, 0.9],
            [-0.25, 1.8],
            [0.2, 0],
            [0.25, 0.9],
            [0.25, 1.8],
        ]
    )
    pose = np.repeat(base[None], T, 0)
    # Phase 0 at the first click, so direction reversals land on the clicks.
    tri = np.abs(((t - CLICK_TIMES[0]) / BEAT) % 2 - 1)  # 1 at the clicks' even beats, 0 at odd
    ang = (tri - 0.5) * 1.6  # radians, about +-46 degrees around horizontal
    for side, s in (("right", -1.0), ("left", 1.0)):
        sh = base[J[f"{side}_shoulder"]]
        for name, r in (("elbow", 0.45), ("wrist", 0.9)):
            pose[:, J[f"{side}_{name}"], 0] = sh[0] + s * r * np.cos(ang)
            pose[:, J[f"{side}_{name}"], 1] = sh[1] - r * np.sin(ang)
    pose[..., 0] += travel * t[:, None] / seconds
    return pose.astype(np.float32)


def sine_clicks(seconds: float = 3.0, freq: float = 440.0) -> np.ndarray:
    """A quiet sine with loud 20 ms 2 kHz bursts at CLICK_TIMES."""
    t = np.arange(int(round(seconds * SR))) / SR
    y = 0.05 * np.sin(2 * np.pi * freq * t)
    tb = np.arange(int(0.02 * SR)) / SR
    burst = np.sin(2 * np.pi * 2000 * tb) * np.exp(-tb / 0.005)
    for c in CLICK_TIMES[CLICK_TIMES < seconds - 0.05]:
        i = int(round(c * SR))
        y[i : i + burst.size] += 0.8 * burst[: y.size - i]
    return y.astype(np.float32)


def probe(path):
    """(video stream facts, audio stream facts, decoded RGB frames, decoded mono audio)."""
    with av.open(str(path)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        vs, as_ = c.streams.video[0], c.streams.audio[0]
        v = dict(
            codec=vs.codec_context.name,
            pix_fmt=vs.codec_context.format.name,
            w=vs.codec_context.width,
            h=vs.codec_context.height,
            dur=float(vs.duration * vs.time_base),
            rate=float(vs.average_rate),
        )
        a = dict(codec=as_.codec_context.name, rate=as_.rate, dur=float(as_.duration * as_.time_base))
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        y = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return v, a, frames, y


def dominant_hz(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1.0 / sr)[np.argmax(spec)])


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------------------------------


def test_skeleton_video_streams_duration_and_frames(tmp_path):
    out = R.render_skeleton_video(
        tmp_path / "s.mp4", waving(), sine_clicks(), size=(200, 160), out_fps=25, title="waving"
    )
    assert out == tmp_path / "s.mp4" and out.is_file() and no_temporaries(tmp_path)
    v, a, frames, y = probe(out)
    assert v["codec"] == "h264" and v["pix_fmt"] == "yuv420p" and (v["w"], v["h"]) == (200, 160)
    assert a["codec"] == "aac" and a["rate"] == SR
    assert abs(v["dur"] - 3.0) <= 0.1 and abs(a["dur"] - 3.0) <= 0.1
    assert abs(len(frames) - 75) <= 1 and frames[0].shape == (160, 200, 3)
    assert abs(y.size / a["rate"] - 3.0) <= 0.1
    # The music survives: the 440 Hz sine dominates away from the clicks.
    assert abs(dominant_hz(y[int(0.3 * SR) : int(0.7 * SR)], SR) - 440) < 15


def test_skeleton_is_drawn_where_the_pose_is_and_moves(tmp_path):
    pose, size = waving(), (240, 240)
    out = R.render_skeleton_video(tmp_path / "s.mp4", pose, sine_clicks(), size=size, out_fps=25, beats=False)
    _, _, frames, _ = probe(out)
    bg = np.array(R.BACKGROUND, float)
    drawn = [np.abs(f.astype(float) - bg).sum(-1) > 60 for f in frames]
    assert all(0.005 < d.mean() < 0.3 for d in drawn)  # a figure, not an empty or flooded frame
    # The painter's fixed transform tells where the right wrist must be; its stroke is there,
    # in the right arm's colour, and the place it left a quarter beat later is background.
    painter = R.SkeletonPainter(pose, FPS, size)
    wj = J["right_wrist"]
    k0, k1 = 6, 6 + int(round(BEAT / 2 * 25))  # 0.24 s and 0.48 s: arm down, then up
    p0 = np.rint(painter.pose_at(k0 / 25)[wj] * painter.scale + painter.offset).astype(int)
    p1 = np.rint(painter.pose_at(k1 / 25)[wj] * painter.scale + painter.offset).astype(int)
    assert np.linalg.norm(p0 - p1) > 20  # the wrist travelled across the frame
    for k, p in ((k0, p0), (k1, p1)):
        patch = frames[k][p[1] - 1 : p[1] + 2, p[0] - 1 : p[0] + 2].reshape(-1, 3).astype(float)
        assert np.abs(patch.mean(0) - R.LIMB_COLOURS["right_arm"]).max() < 60, (k, patch.mean(0))
    assert not drawn[k1][p0[1] - 1 : p0[1] + 2, p0[0] - 1 : p0[0] + 2].any()
    assert not drawn[k0][p1[1] - 1 : p1[1] + 2, p1[0] - 1 : p1[0] + 2].any()


def test_whole_motion_fits_one_fixed_frame():
    pose = waving(travel=6.0)  # walks six torso units to the right
    painter = R.SkeletonPainter(pose, FPS, (320, 240), title="t")
    px = pose.reshape(-1, 2) * painter.scale + painter.offset
    assert (px >= 0).all() and (px[:, 0] < 320).all() and (px[:, 1] < 240).all()
    hip0 = pose[0, J["right_hip"], 0] * painter.scale + painter.offset[0]
    hip1 = pose[-1, J["right_hip"], 0] * painter.scale + painter.offset[0]
    assert hip1 - hip0 > 150  # travel shows as movement across the frame, not re-centring


def test_skeleton_duration_follows_the_shorter_input_and_silence(tmp_path):
    out = R.render_skeleton_video(
        tmp_path / "a.mp4", waving(3.0), sine_clicks(2.0), size=(96, 96), out_fps=30, beats=False
    )
    v, a, frames, _ = probe(out)
    assert abs(v["dur"] - 2.0) <= 1 / 30 + 1e-6 and abs(a["dur"] - 2.0) <= 0.1 and abs(len(frames) - 60) <= 1
    out = R.render_skeleton_video(tmp_path / "m.mp4", waving(1.0), None, size=(96, 96), out_fps=30)
    with av.open(str(out)) as c:
        assert not c.streams.audio and len(c.streams.video) == 1
        assert abs(float(c.streams.video[0].duration * c.streams.video[0].time_base) - 1.0) <= 1 / 30 + 1e-6


def test_failed_render_leaves_existing_file_alone(tmp_path):
    dst = tmp_path / "keep.mp4"
    dst.write_bytes(b"old")
    with pytest.raises(ValueError):
        R.render_skeleton_video(dst, np.zeros((10, 13, 2)), sine_clicks(1.0))
    with pytest.raises(ValueError):
        R.render_skeleton_video(dst, waving(1.0), np.full(SR, np.nan, np.float32))
    # An error inside the encoder (AAC has no 12345 Hz mode) happens mid-write.
    with pytest.raises(ValueError):  # av.error.ArgumentError
        R.render_skeleton_video(dst, waving(1.0), sine_clicks(1.0), sr=12345, size=(64, 64), beats=False)
    assert dst.read_bytes() == b"old" and no_temporaries(tmp_path)


def _moving_square(i: int) -> np.ndarray:
    img = np.zeros((120, 160, 3), np.uint8)
    x = 10 + 2 * i  # 2 px per source frame, 50 px per second
    img[40:80, x : x + 40] = (255, 255, 255)
    return img


@pytest.fixture(scope="module")
def source_video(tmp_path_factory):
    """2 s, 25 fps, 160x120: a white square moving right, with a 440 Hz sine."""
    path = tmp_path_factory.mktemp("src") / "src.mp4"
    return write_av(path, seconds=2.0, fps=25, size=(160, 120), sr=SR, freq=440.0, frame_fn=_moving_square)


def test_side_by_side_layout_duration_and_new_audio(tmp_path, source_video):
    new = (0.3 * np.sin(2 * np.pi * 880 * np.arange(int(1.5 * SR)) / SR)).astype(np.float32)
    out = R.render_side_by_side(tmp_path / "sbs.mp4", source_video, waving(1.5), new, height=96)
    assert no_temporaries(tmp_path)
    v, a, frames, y = probe(out)
    # 160x120 scaled to height 96 is 128 wide; the skeleton panel is 96 x 96.
    assert (v["w"], v["h"]) == (128 + 96, 96) and v["codec"] == "h264"
    assert abs(v["rate"] - 25) < 1e-6  # default: the source's rate (under the 30 fps cap)
    assert abs(v["dur"] - 1.5) <= 0.05 and abs(a["dur"] - 1.5) <= 0.1 and abs(len(frames) - 37.5) <= 1
    assert abs(dominant_hz(y, a["rate"]) - 880) < 15  # the new audio, not the source's 440 Hz
    # The left part is the source in sync: the square's left edge at output frame k (time
    # k / 25) is where source frame k put it, scaled by 0.8.
    for k in (0, 20):
        left = frames[k][:, :128].mean(-1)
        cols = np.nonzero(left[48] > 128)[0]
        assert abs(cols[0] - 0.8 * (10 + 2 * k)) <= 2, (k, cols[:3])
    # The right part is the skeleton panel: mostly background, with a figure on it.
    panel = frames[10][:, 128:].astype(float)
    assert 0.005 < (np.abs(panel - np.array(R.BACKGROUND)).sum(-1) > 60).mean() < 0.4


def test_side_by_side_stops_when_the_video_ends(tmp_path, source_video):
    y = sine_clicks(3.0, freq=880.0)  # longer than the 2 s source
    out = R.render_side_by_side(tmp_path / "sbs.mp4", source_video, waving(3.0), y, height=60, out_fps=10, beats=False)
    v, a, frames, _ = probe(out)
    assert v["w"] == 80 + 60 and abs(v["dur"] - 2.0) <= 0.1 + 1e-6 and abs(a["dur"] - 2.0) <= 0.1
    assert abs(len(frames) - 20) <= 1


def test_plot_beats_png_and_beats(tmp_path):
    music, dance = R.plot_beats(tmp_path / "beats.png", sine_clicks(), waving(), title="alignment")
    data = (tmp_path / "beats.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000 and no_temporaries(tmp_path)
    # Every click is found (onsets use 32 ms frames, so allow two of them).
    assert len(music) == len(CLICK_TIMES)
    assert np.abs(music[:, None] - CLICK_TIMES[None]).min(axis=1).max() < 0.07
    # The arms reverse on the clicks; kinematic beats mark reversals.
    assert len(dance) >= 3
    assert np.median(np.abs(dance[:, None] - CLICK_TIMES[None]).min(axis=1)) < 0.1
