"""Decoding edge cases: rotation metadata, variable frame rate, audio and video of
different lengths, streaming (frames are yielded one by one)."""

import struct
from fractions import Fraction

import av
import numpy as np
import pytest
from media import write_av

from momu_data.extract import ExtractConfig, build_features
from momu_data.media import iter_frames, load_audio, probe_video
from momu_data.pose.track import PoseTrack


def _marker_frame(i):
    img = np.zeros((48, 64, 3), np.uint8)
    img[:12, :16] = (255, 0, 0)  # a red block in the top-left corner
    return img


def test_rotation_metadata_gives_upright_frames(tmp_path):
    src = write_av(tmp_path / "plain.mp4", seconds=0.4, size=(64, 48), audio=False, frame_fn=_marker_frame)
    # Phones store portrait video as landscape frames plus a display matrix in the track
    # header; write the matrix of a 90-degree clockwise display rotation.
    ident = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    rot = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    b = src.read_bytes()
    j = b.index(ident, b.index(b"tkhd"))
    (tmp_path / "rot.mp4").write_bytes(b[:j] + rot + b[j + len(rot) :])
    info = probe_video(tmp_path / "rot.mp4")
    assert (info.width, info.height) == (48, 64) and info.rotation == 270
    t, img = next(iter_frames(tmp_path / "rot.mp4"))
    assert img.shape == (64, 48, 3)
    red = img[..., 0] > 128
    ys, xs = np.nonzero(red)
    assert ys.max() < 20 and xs.min() > 28  # top-left of the stored frame is top-right upright
    _, small = next(iter_frames(tmp_path / "rot.mp4", max_side=32))
    assert small.shape[:2] == (32, 24)


def test_variable_frame_rate_keeps_timestamps(tmp_path):
    path = tmp_path / "vfr.mp4"
    pts = [0, 1, 2, 5, 6, 10, 11, 12]  # in 1/30 s: gaps of 3 and 4 frames
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 30)
        for p in pts:
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * p, np.uint8), format="rgb24")
            f.pts = p
            f.time_base = Fraction(1, 30)
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    times = [t for t, _ in iter_frames(path)]
    assert np.allclose(times, np.array(pts) / 30, atol=1e-3)


def test_audio_shorter_than_video_trims_the_span(tmp_path):
    n = 90  # 3 s of poses at 30 fps
    xy = np.tile(np.linspace(10, 60, 28).reshape(1, 14, 2), (n, 1, 1)).astype(np.float32)
    xy[:, 1] = [35, 20]  # neck above the hips
    xy[:, 8], xy[:, 11] = [30, 60], [40, 60]
    track = PoseTrack(
        xy=xy,
        conf=np.ones((n, 14), np.float32),
        times=np.arange(n) / 30.0,
        person=np.ones(n, bool),
        width=100,
        height=100,
    )
    y = (0.1 * np.sin(np.arange(32000) / 16000 * 2 * np.pi * 440)).astype(np.float32)  # 2 s
    feats, info = build_features(track, y, 0.5, ExtractConfig(clip_seconds=1.0))
    # audio spans 0.5-2.5 s, video 0-3 s: the common span is 0.5-2.5 s
    assert (
        info["t0"] == pytest.approx(0.5)
        and info["audio_trim_start"] == 0
        and info["video_trim_start"] == pytest.approx(0.5)
    )
    assert len(info["audio"]) == 32000 and feats["mel"].shape[1] == 1 + 32000 // 256 == feats["pose"].shape[0]


def test_audio_start_offset_is_reported(tmp_path):
    write_av(tmp_path / "av.mp4", seconds=1.0, video=False, sr=16000)
    y, start = load_audio(tmp_path / "av.mp4")
    assert start >= 0 and abs(len(y) - 16000) < 2048
