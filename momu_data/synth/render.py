"""Draw a dancing figure with OpenCV and encode it with its music to mp4 with PyAV.

The figure is a filled, outlined, clothed humanoid (shirt, trousers, shoes, skin-coloured
hands, neck and head with hair, eyes, brows, nose, mouth and ears), not a stick figure:
off-the-shelf pose estimators (mediapipe's BlazePose) find a person in it, so the
synthetic videos exercise the real extraction pipeline. The joints of the ground truth
are the joints of the drawing: limbs are drawn bone to bone between the keypoints, the
nose keypoint is where the nose is drawn, the neck keypoint is the midpoint of the
shoulders, as it is for the mediapipe mapping.

Drawing uses fixed-point coordinates (4 fractional bits) and anti-aliasing, so the
figure moves smoothly by sub-pixel amounts. The background is drawn once per video.

Video: H.264 (libx264, yuv420p, preset veryfast, CRF 20, one thread: callers parallelise
over videos), constant frame rate, frame i at i / fps. Audio: AAC, mono, the song's
sample rate, starting at time 0 with the video.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from momu_data.media import AudioMuxer
from momu_data.skeleton import J
from momu_data.synth.choreography import Body, Dance

SHIFT = 4  # fractional bits of cv2 coordinates
ONE = 1 << SHIFT
AA = cv2.LINE_AA

SKIN_TONES = (
    (255, 224, 196),
    (241, 194, 158),
    (234, 192, 134),
    (224, 172, 105),
    (198, 134, 66),
    (161, 102, 64),
    (141, 85, 36),
    (98, 62, 42),
)
HAIR_COLOURS = (
    (25, 20, 18),
    (60, 40, 25),
    (100, 65, 35),
    (170, 125, 70),
    (220, 190, 120),
    (140, 60, 30),
    (120, 120, 120),
)


def _hsv(h, s, v):
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _luma(c):
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _shade(c, f):
    return tuple(int(np.clip(round(x * f), 0, 255)) for x in c)


@dataclass(frozen=True)
class Look:
    skin: tuple
    hair: tuple
    hair_long: bool
    shirt: tuple
    long_sleeves: bool
    trousers: tuple
    shoes: tuple
    wall: tuple
    floor: tuple
    texture: str  # plain | noise | stripes | boards


def random_look(rng: np.random.Generator) -> Look:
    """Clothes, skin, hair and room colours. Clothes are saturated and darker than the
    light walls, so the figure always stands out from the background."""
    wall = _hsv(rng.random(), rng.uniform(0.05, 0.3), rng.uniform(0.78, 0.95))
    floor = _hsv(rng.random(), rng.uniform(0.1, 0.4), rng.uniform(0.45, 0.7))
    while True:
        shirt = _hsv(rng.random(), rng.uniform(0.5, 0.95), rng.uniform(0.35, 0.8))
        if abs(_luma(shirt) - _luma(wall)) > 60:
            break
    trousers = _hsv(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.45))
    shoes = ((30, 30, 30), (235, 235, 235), (120, 60, 30), (200, 30, 30))[int(rng.integers(4))]
    return Look(
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        hair=HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))],
        hair_long=bool(rng.random() < 0.4),
        shirt=shirt,
        long_sleeves=bool(rng.random() < 0.5),
        trousers=trousers,
        shoes=shoes,
        wall=wall,
        floor=floor,
        texture=("plain", "noise", "stripes", "boards")[int(rng.integers(4))],
    )


def make_background(rng: np.random.Generator, look: Look, body: Body, width: int, height: int) -> np.ndarray:
    """A room: wall above a floor line behind the dancer's knees, a soft vertical light
    gradient and an optional mild texture; RGB uint8 [H, W, 3]."""
    img = np.empty((height, width, 3), np.float32)
    horizon = int(body.ground - rng.uniform(0.55, 0.8) * body.leg)
    img[:horizon] = look.wall
    img[horizon:] = look.floor
    if look.texture == "stripes":  # wallpaper stripes, barely darker
        w = int(rng.integers(12, 40))
        cols = (np.arange(width) // w) % 2 == 1
        img[:horizon, cols] *= 0.94
    elif look.texture == "boards":  # floorboards: faint lines, closer together far away
        k = np.linspace(0.0, 1.0, int(rng.integers(6, 11)))[1:-1] ** 1.6
        for y in horizon + k * (height - horizon):
            img[int(y)] *= 0.88
    elif look.texture == "noise":
        n = rng.standard_normal((height // 4 + 1, width // 4 + 1)).astype(np.float32)
        n = cv2.resize(n, (width, height), interpolation=cv2.INTER_CUBIC)[:height, :width]
        img *= (1.0 + 0.025 * n)[..., None]
    # A light falling off towards the top and the bottom of the frame.
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32)
    img *= (1.04 - 0.1 * y**2)[:, None, None]
    img[horizon - 1 : horizon + 1] *= 0.8  # skirting line
    return np.clip(img, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Primitives on fixed-point coordinates.


def _fx(p):
    return np.rint(np.asarray(p, dtype=np.float64) * ONE).astype(np.int32)


def _pt(p):
    return (int(round(float(p[0]) * ONE)), int(round(float(p[1]) * ONE)))


def _poly(img, pts, colour, outline=None):
    q = _fx(pts).reshape(-1, 1, 2)
    cv2.fillPoly(img, [q], colour, AA, SHIFT)
    if outline is not None:
        cv2.polylines(img, [q], True, outline, 1, AA, SHIFT)


def _disc(img, c, r, colour):
    cv2.circle(img, _pt(c), int(round(r * ONE)), colour, -1, AA, SHIFT)


def _ellipse(img, c, axes, angle_deg, colour, thickness=-1, start=0, end=360):
    cv2.ellipse(
        img,
        _pt(c),
        (int(round(axes[0] * ONE)), int(round(axes[1] * ONE))),
        float(angle_deg),
        start,
        end,
        colour,
        thickness,
        AA,
        SHIFT,
    )


def _limb(img, p, q, w1, w2, colour, outline):
    """A tapered limb with round ends, drawn twice: 1.5 px wider in the outline colour,
    then filled; the outline separates an arm from a torso of the same colour."""
    d = q - p
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(d[0], d[1])), 1e-6)
    for grow, col in ((1.5, outline), (0.0, colour)):
        a, b = w1 / 2 + grow, w2 / 2 + grow
        quad = np.stack([p + n * a, q + n * b, q - n * b, p - n * a])
        cv2.fillPoly(img, [_fx(quad).reshape(-1, 1, 2)], col, AA, SHIFT)
        _disc(img, p, a, col)
        _disc(img, q, b, col)


def _rot(a, v):
    c, s = np.cos(a), np.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


class _Palette(dict):
    """Colours derived from the look (shades, outlines), computed once per video."""

    def __missing__(self, key):
        colour, f = key
        self[key] = _shade(colour, f)
        return self[key]


class FigureRenderer:
    """Draws frame i of a Dance on a fixed background."""

    def __init__(self, dance: Dance, look: Look, background: np.ndarray):
        self.d, self.look, self.bg = dance, look, background
        T = dance.body.torso
        self.T = T
        self.w = dict(
            upper_arm=(0.23 * T, 0.18 * T),
            forearm=(0.17 * T, 0.13 * T),
            thigh=(0.29 * T, 0.22 * T),
            shin=(0.22 * T, 0.15 * T),
        )
        self.pal = _Palette()
        self.outline = lambda c: self.pal[(c, 0.55)]

    def __call__(self, i: int) -> np.ndarray:
        d, look, T = self.d, self.look, self.T
        kp = d.keypoints[i]
        yaw, lean, head = float(d.yaw[i]), float(d.lean[i]), float(d.head[i])
        img = self.bg.copy()
        body = d.body
        # A contact shadow under the feet.
        fx = 0.5 * (kp[J["right_ankle"], 0] + kp[J["left_ankle"], 0])
        _ellipse(img, (fx, body.ground + 0.12 * T), (0.9 * T, 0.1 * T), 0, self.pal[(look.floor, 0.8)])

        # Which side is turned away from the camera: drawn first, behind the trunk.
        far = "left" if yaw > 0.15 else ("right" if yaw < -0.15 else None)
        if look.hair_long:
            self._hair_back(img, kp, head)
        near = [s for s in ("right", "left") if s != far]
        if far is not None:
            self._arm(img, kp, far, dim=0.85)
            self._leg(img, kp, far, dim=0.85)
        for side in near:
            self._leg(img, kp, side)
        self._trunk(img, kp, yaw, lean)
        self._head(img, kp, yaw, head)
        for side in near:
            self._arm(img, kp, side)
        return img

    # -- parts -----------------------------------------------------------------------

    def _arm(self, img, kp, side, dim=1.0):
        look, T = self.look, self.T
        s, e, w = (kp[J[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
        skin, shirt = self.pal[(look.skin, dim)], self.pal[(look.shirt, dim)]
        if look.long_sleeves:  # a sleeve catches less light than the chest: a shade darker
            shirt = self.pal[(look.shirt, 0.88 * dim)]
        wu, wf = self.w["upper_arm"], self.w["forearm"]
        fdir = (w - e) / max(np.hypot(*(w - e)), 1e-6)
        # Hand first, so that the sleeve or forearm overlaps the wrist like a real one.
        hand_c = w + 0.1 * T * fdir
        ang = np.degrees(np.arctan2(fdir[1], fdir[0]))
        _ellipse(img, hand_c, (0.125 * T, 0.08 * T), ang, self.outline(skin))
        _ellipse(img, hand_c, (0.11 * T, 0.068 * T), ang, skin)
        if look.long_sleeves:
            _limb(img, e, w, wf[0], wf[1], shirt, self.outline(shirt))
            _limb(img, s, e, wu[0], wu[1], shirt, self.outline(shirt))
        else:
            _limb(img, e, w, wf[0], wf[1], skin, self.outline(skin))
            _limb(img, s, e, wu[0], wu[1], skin, self.outline(skin))
            sleeve_end = s + 0.45 * (e - s)
            _limb(img, s, sleeve_end, wu[0] * 1.12, wu[0] * 1.08, shirt, self.outline(shirt))

    def _leg(self, img, kp, side, dim=1.0):
        look, T = self.look, self.T
        h, k, a = (kp[J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        pants = self.pal[(look.trousers, dim)]
        # Shoe: a flat ellipse under the ankle, toes turned a little outwards. Its top is
        # a little below the ankle joint, as on a real foot: with the shoe right at the
        # joint, mediapipe put the ankle 0.06 torso too high.
        out = -1.0 if side == "right" else 1.0
        shoe_c = a + np.array([out * 0.05 * T, 0.14 * T])
        _ellipse(img, shoe_c, (0.15 * T, 0.075 * T), out * 10, self.outline(look.shoes))
        _ellipse(img, shoe_c, (0.135 * T, 0.062 * T), out * 10, self.pal[(look.shoes, dim)])
        wt, ws = self.w["thigh"], self.w["shin"]
        _limb(img, k, a, ws[0], ws[1], pants, self.outline(pants))
        _limb(img, h, k, wt[0], wt[1], pants, self.outline(pants))

    def _trunk(self, img, kp, yaw, lean):
        look, T, body = self.look, self.T, self.d.body
        neck = kp[J["neck"]]
        mid_hip = 0.5 * (kp[J["right_hip"]] + kp[J["left_hip"]])
        c = np.cos(yaw)
        # A turned trunk shows its side as well as its front, so its outline narrows
        # less than the distance between the joints does.
        wf = c + 0.35 * abs(np.sin(yaw))
        sh = body.shoulder * c
        hp = body.hip * c

        def at(base, x, y):  # torso-frame offset (x across, y down) from base
            return base + _rot(lean, np.array([x, y]))

        # Trousers' waistband and crotch, then the shirt over them.
        # The crotch sits 0.13 torso below the hip joints, as anatomically; lower, it made
        # mediapipe place the hips lower and wider than the joints.
        pelvis = [
            at(mid_hip, -(hp + 0.13 * T), -0.25 * T),
            at(mid_hip, (hp + 0.13 * T), -0.25 * T),
            at(mid_hip, (hp + 0.13 * T), 0.02 * T),
            at(mid_hip, 0.0, 0.13 * T),
            at(mid_hip, -(hp + 0.13 * T), 0.02 * T),
        ]
        _poly(img, pelvis, look.trousers, self.outline(look.trousers))
        half = lambda x: x * wf  # noqa: E731
        # The shoulder line sits above the shoulder joints, as the top of a real shoulder
        # does, and slopes up to the collar.
        shirt = [
            at(neck, -0.09 * T, -0.13 * T),
            at(neck, -(sh + 0.02 * T), -0.1 * T),
            at(neck, -(sh + 0.1 * T), 0.0),
            at(neck, -(sh + 0.08 * T), 0.12 * T),
            at(neck, -half(0.36 * T), 0.38 * T),
            at(neck, -half(0.31 * T), 0.65 * T),
            at(neck, -(hp + 0.16 * T), 0.86 * T),
            at(neck, (hp + 0.16 * T), 0.86 * T),
            at(neck, half(0.31 * T), 0.65 * T),
            at(neck, half(0.36 * T), 0.38 * T),
            at(neck, (sh + 0.08 * T), 0.12 * T),
            at(neck, (sh + 0.1 * T), 0.0),
            at(neck, (sh + 0.02 * T), -0.1 * T),
            at(neck, 0.09 * T, -0.13 * T),
        ]
        _poly(img, shirt, look.shirt, self.outline(look.shirt))

    def _head_frame(self, kp, head):
        T = self.T
        neck = kp[J["neck"]]
        centre = neck + _rot(head, np.array([0.0, -0.40 * T]))
        return neck, centre

    def _hair_back(self, img, kp, head):
        T = self.T
        _, c = self._head_frame(kp, head)
        hair = self.look.hair
        pts = [
            c + _rot(head, np.array(v) * T)
            for v in ((-0.2, -0.05), (0.2, -0.05), (0.24, 0.32), (0.0, 0.38), (-0.24, 0.32))
        ]
        _poly(img, pts, hair, self.outline(hair))

    def _head(self, img, kp, yaw, head):
        look, T = self.look, self.T
        neck, c = self._head_frame(kp, head)
        nose = kp[J["nose"]]
        skin, dark = look.skin, self.pal[(look.skin, 0.7)]
        ang = np.degrees(head)
        # Neck: from below the collar to the middle of the head.
        _limb(img, neck + _rot(head, np.array([0.0, -0.02 * T])), c, 0.15 * T, 0.15 * T, skin, self.outline(skin))
        # The face turns: features slide sideways with the nose, the ears in the
        # opposite direction; the far ear disappears behind the head.
        face_dx = float(_rot(-head, nose - neck)[0])  # nose offset across the head axis
        s = np.sin(yaw)
        P = lambda x, y: c + _rot(head, np.array([x, y]))  # noqa: E731
        for ex in (-1.0, 1.0):
            if ex * s < 0.35:
                _ellipse(img, P(ex * 0.165 * T - 0.6 * face_dx, -0.01 * T), (0.035 * T, 0.055 * T), ang, dark)
        _ellipse(img, c, (0.172 * T, 0.228 * T), ang, self.outline(skin))
        _ellipse(img, c, (0.165 * T, 0.22 * T), ang, skin)
        # Hair cap over the top of the head (and a fringe line), shifted against the turn.
        _ellipse(img, P(-0.3 * face_dx, -0.045 * T), (0.178 * T, 0.19 * T), ang, look.hair, -1, 180, 360)
        _ellipse(img, P(-0.3 * face_dx, -0.045 * T), (0.178 * T, 0.06 * T), ang, look.hair, -1, 0, 180)
        eye_dx = 0.068 * T * np.cos(yaw)
        for ex in (-1.0, 1.0):
            e = P(face_dx + ex * eye_dx, -0.02 * T)
            _ellipse(img, e, (0.03 * T, 0.018 * T), ang, (250, 250, 250))
            _disc(img, e + _rot(head, np.array([0.35 * face_dx, 0.0])), 0.014 * T, (35, 25, 20))
            b0 = P(face_dx + ex * eye_dx - 0.032 * T, -0.06 * T)
            b1 = P(face_dx + ex * eye_dx + 0.032 * T, -0.066 * T)
            cv2.line(img, _pt(b0), _pt(b1), self.pal[(look.hair, 0.8)], max(1, int(0.018 * T)), AA, SHIFT)
        # Nose: a bridge from between the eyes to the tip, nostrils at the keypoint.
        top = P(face_dx * 0.8, 0.0)
        cv2.line(img, _pt(top), _pt(nose), dark, max(1, int(0.014 * T)), AA, SHIFT)
        _ellipse(img, nose, (0.03 * T, 0.018 * T), ang, dark)
        mouth = P(face_dx * 0.9, 0.135 * T)
        _ellipse(img, mouth, (0.055 * T, 0.028 * T), ang, (150, 40, 50), -1, 0, 180)


# ---------------------------------------------------------------------------------------
# Encoding.


def write_mp4(
    path,
    frames,
    audio: np.ndarray,
    sr: int,
    fps: float,
    width: int,
    height: int,
    crf: int = 20,
    preset: str = "veryfast",
    audio_bitrate: int = 96000,
) -> None:
    """Encode RGB frames (an iterable of uint8 [H, W, 3]) and mono float audio to mp4.

    Frames get pts i in a 1/fps time base; audio is fed in 1024-sample AAC frames,
    interleaved with the video by time so the muxer needs no big buffers.
    """
    import av

    rate = Fraction(fps).limit_denominator(1001)
    audio = np.asarray(audio, dtype=np.float32)
    with av.open(str(path), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=rate, options={"preset": preset, "crf": str(crf)})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.thread_count = 1
        as_ = c.add_stream("aac", rate=sr, layout="mono")
        as_.bit_rate = audio_bitrate
        mux = AudioMuxer(c, as_, audio, sr)

        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf.pts = i
            vf.time_base = 1 / rate
            for pkt in vs.encode(vf):
                c.mux(pkt)
            mux.feed(int(np.ceil((i + 1) / float(rate) * sr)))
        mux.feed(audio.size)
        for pkt in vs.encode(None):
            c.mux(pkt)
        mux.close()
