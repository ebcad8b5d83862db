"""Beat-synchronous 2D choreography on the paper's 14-keypoint skeleton.

The figure is a kinematic chain: a root (mid-hip) position, a trunk lean, a trunk turn
(yaw), a head tilt, shoulder and elbow angles, and two ankle targets reached by two-bone
inverse kinematics. Keypoints are computed from these with fixed bone lengths, so in 2D
every limb bone (upper arm, forearm, thigh, shin) and the nose-neck bone keep exactly
their length. The one exception is a turn: a trunk turned by `yaw` about the vertical
axis is seen foreshortened, so the neck-shoulder bones measure `shoulder * cos(yaw)` and
the neck-hip bones `hypot(torso, hip * cos(yaw))`; `yaw` is recorded per frame so that
these can be checked exactly too. Turns are partial (|yaw| <= 35 degrees), the face stays
towards the camera.

The dancer faces the camera: the person's right side is on the image's left (smaller x).

Timing. A dance is a sequence of key poses, one per music beat. From beat k the pose
moves from key pose k to key pose k+1 along an exponential ease-out, fastest right at
the beat and at rest well before the next one; a small bounce (a knee bend that reverses
direction on every beat) is added on top. So every beat is an abrupt change of
velocity, the moment the body "hits" the beat, and the kinematic amplitude (the
directogram's positive flux, momu_data.features) peaks there, once. Two details make the
peaks clean at the video's frame rate: each move starts on the video frame nearest to
its beat (within half a frame; the ground-truth beats stay the music's exact times),
and each beat's ease time constant is set so that all beats give about the same
first-frame displacement (see _equalise_accents).

Moves (arm swings, steps, kicks, claps, turns ...) are short cycles of key poses, chosen
per bar from the style's repertoire, randomly mirrored and jittered, so each video
differs. Everything is numpy and deterministic for a numpy Generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from momu_data.skeleton import NUM_JOINTS, J

# The pose parameters, in order. Lengths are in torso units (neck to mid-hip), angles in
# radians. root_x, r_foot and l_foot are horizontal positions relative to the frame
# centre; drop lowers the hips (bends the knees); lifts raise an ankle off the floor.
# Arm angles: *_sh is the upper arm's angle from hanging straight down, positive outwards
# (away from the body's midline); *_el is the elbow's bend, the forearm's angle relative
# to the upper arm in the same sense (positive = forearm turned further outwards/up).
PARAMS = (
    "root_x",
    "drop",
    "lean",
    "yaw",
    "head",
    "r_sh",
    "r_el",
    "l_sh",
    "l_el",
    "r_foot",
    "r_lift",
    "l_foot",
    "l_lift",
)
P = {name: i for i, name in enumerate(PARAMS)}
ANGLES = ("lean", "yaw", "head", "r_sh", "r_el", "l_sh", "l_el")
MAX_YAW = np.radians(35.0)

STANDING = 0.98  # hip height at rest, as a fraction of the leg length: knees a bit soft
STANCE = 0.22  # feet half-apart at rest (torso units)


@dataclass(frozen=True)
class Body:
    """Bone lengths in pixels (frontal view) and where the figure stands."""

    torso: float  # neck to mid-hip
    shoulder: float  # neck to each shoulder
    hip: float  # mid-hip to each hip joint
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    nose: float  # neck to nose
    cx: float  # frame x of the dance floor's centre
    ground: float  # frame y of the ankles when the feet are on the floor

    @property
    def leg(self) -> float:
        return self.thigh + self.shin

    def bone_lengths(self, yaw: np.ndarray | float = 0.0) -> np.ndarray:
        """Expected lengths of skeleton.BONES, [..., 13], for a trunk turned by yaw."""
        c = np.cos(np.asarray(yaw, dtype=np.float64))
        one = np.ones_like(c)
        sh = self.shoulder * c
        nh = np.hypot(self.torso, self.hip * c)
        arm = (sh, self.upper_arm * one, self.forearm * one)
        leg = (nh, self.thigh * one, self.shin * one)
        return np.stack((self.nose * one,) + arm + arm + leg + leg, axis=-1)


def random_body(rng: np.random.Generator, width: int, height: int) -> Body:
    """Human proportions (in torso units, from anthropometric tables) with a little
    per-video variation, scaled so the dance stays inside the frame."""
    s = min(width, height)
    # The torso unit is sized for the frame's height: standing, the figure spans about
    # 3.3 torso units from shoes to hair, and arms raised overhead about 3.9.
    torso = 0.2 * s * rng.uniform(0.94, 1.03)
    j = lambda lo, hi: torso * rng.uniform(lo, hi)  # noqa: E731
    return Body(
        torso=torso,
        shoulder=j(0.34, 0.40),
        hip=j(0.16, 0.19),
        upper_arm=j(0.56, 0.62),
        forearm=j(0.48, 0.54),
        thigh=j(0.82, 0.88),
        shin=j(0.78, 0.84),
        nose=j(0.30, 0.34),
        cx=width / 2 + rng.uniform(-0.03, 0.03) * width,
        ground=height * rng.uniform(0.885, 0.9),
    )


def _rot(a, v):
    """Rotate vectors v [..., 2] by angles a [...] (image coordinates, y down: a positive
    angle turns the up vector (0, -1) towards +x)."""
    c, s = np.cos(a), np.sin(a)
    return np.stack((c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]), axis=-1)


def _leg_ik(hip, target, l1, l2, outward):
    """Two-bone IK in the image plane: knee and ankle for a hip and an ankle target.

    The knee bends outwards (`outward` = -1 for the person's right leg, which is on the
    image's left), the way a frontal plie or knee lift looks. An unreachable target is
    approached along the straight leg, so both bones keep their lengths exactly.
    """
    d = target - hip
    dist = np.linalg.norm(d, axis=-1)
    dist_c = np.clip(dist, abs(l1 - l2) + 1e-6, (l1 + l2) * (1 - 1e-6))
    u = d / np.maximum(dist, 1e-9)[..., None]
    cos_a = np.clip((l1**2 + dist_c**2 - l2**2) / (2 * l1 * dist_c), -1.0, 1.0)
    a = np.arccos(cos_a)
    # Rotating the hip-to-target direction by +a (y down) swings the knee towards -x for
    # a downward leg; the right leg (outward = -1) wants exactly that.
    knee = hip + l1 * _rot(-outward * a, u)
    reach = hip + dist_c[..., None] * u
    shin_dir = reach - knee
    shin_dir /= np.linalg.norm(shin_dir, axis=-1, keepdims=True)
    ankle = knee + l2 * shin_dir
    return knee, ankle


def pose_from_params(params: np.ndarray, body: Body) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [..., 14, 2] (pixels) and head axis angle [...] from parameters [..., 13]."""
    p = np.asarray(params, dtype=np.float64)
    T = body.torso
    root_x, drop, lean, yaw, head = (p[..., P[k]] for k in ("root_x", "drop", "lean", "yaw", "head"))
    c = np.cos(yaw)
    zero = np.zeros_like(root_x)
    mid_hip = np.stack((body.cx + root_x * T, body.ground - STANDING * body.leg + drop * T), axis=-1)
    vec = lambda x, y: np.stack((x + zero, y + zero), axis=-1)  # noqa: E731
    neck = mid_hip + _rot(lean, vec(0.0, -T))
    kp = np.empty(p.shape[:-1] + (NUM_JOINTS, 2))
    kp[..., J["neck"], :] = neck

    # Nose: the head tilts with the trunk plus its own tilt; a turned head shows the nose
    # off the neck's axis. The nose is rotated about the neck (not shifted), so the
    # nose-neck distance stays exactly `body.nose`.
    head_axis = lean + head
    beta = np.arctan2(0.5 * body.nose * np.sin(yaw), body.nose)
    kp[..., J["nose"], :] = neck + _rot(head_axis + beta, vec(0.0, -body.nose))

    for side, sgn in (("right", -1.0), ("left", 1.0)):
        pre = side[0]
        sh = neck + _rot(lean, vec(sgn * body.shoulder * c, 0.0))
        th, el = p[..., P[pre + "_sh"]], p[..., P[pre + "_el"]]
        # Local arm direction at angle th from straight down, outwards = sgn * x.
        ua = np.stack((sgn * np.sin(th), np.cos(th)), axis=-1)
        fa = np.stack((sgn * np.sin(th + el), np.cos(th + el)), axis=-1)
        elbow = sh + body.upper_arm * _rot(lean, ua)
        wrist = elbow + body.forearm * _rot(lean, fa)
        hip = mid_hip + _rot(lean, vec(sgn * body.hip * c, 0.0))
        target = np.stack(
            (body.cx + p[..., P[pre + "_foot"]] * T, body.ground - p[..., P[pre + "_lift"]] * T), axis=-1
        )
        knee, ankle = _leg_ik(hip, target, body.thigh, body.shin, sgn)
        for name, val in (
            ("shoulder", sh),
            ("elbow", elbow),
            ("wrist", wrist),
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
        ):
            kp[..., J[f"{side}_{name}"], :] = val
    return kp, head_axis


# ---------------------------------------------------------------------------------------
# Moves: each returns a cycle of key poses (dicts of parameter overrides, angles in
# degrees, positions relative to the move's home position) for the right-handed variant;
# the caller mirrors it at random. Parameters a key pose leaves out take NEUTRAL values.
# Hands brought together in front of the body stop short of the midline (the drawn hands
# touch, the wrists do not cross): crossed wrists are ambiguous to any pose estimator.

NEUTRAL = dict(
    root_x=0.0,
    drop=0.0,
    lean=0.0,
    yaw=0.0,
    head=0.0,
    r_sh=12.0,
    r_el=10.0,
    l_sh=12.0,
    l_el=10.0,
    r_foot=-STANCE,
    r_lift=0.0,
    l_foot=STANCE,
    l_lift=0.0,
)


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def mirror(kf: dict) -> dict:
    """The same key pose danced with the other side of the body."""
    out = {}
    for k, v in kf.items():
        if k in ("root_x", "lean", "yaw", "head"):
            out[k] = -v
        elif k.startswith(("r_", "l_")):
            other = ("l_" if k[0] == "r" else "r_") + k[2:]
            out[other] = -v if k.endswith("_foot") else v
        else:
            out[k] = v
    return out


def arm_swing(rng):
    a = dict(
        r_sh=_u(rng, 55, 85),
        r_el=_u(rng, 0, 40),
        l_sh=_u(rng, -35, -15),
        l_el=_u(rng, 40, 80),
        lean=-_u(rng, 4, 9),
        root_x=-0.12,
        head=-_u(rng, 3, 8),
    )
    return [a, mirror(a)]


def arm_pump(rng):
    up = dict(r_sh=_u(rng, 148, 170), r_el=_u(rng, -10, 15), l_sh=_u(rng, 148, 170), l_el=_u(rng, -10, 15), drop=-0.04)
    if rng.random() < 0.5:  # "goal post" arms on the down beat
        down = dict(r_sh=_u(rng, 80, 95), r_el=_u(rng, 80, 100), l_sh=_u(rng, 80, 95), l_el=_u(rng, 80, 100), drop=0.1)
    else:  # fists pulled down to the chest
        down = dict(
            r_sh=_u(rng, 25, 40), r_el=-_u(rng, 85, 105), l_sh=_u(rng, 25, 40), l_el=-_u(rng, 85, 105), drop=0.12
        )
    return [up, down]


def step_touch(rng):
    w = _u(rng, 0.45, 0.55)
    swing = dict(r_sh=_u(rng, 50, 75), r_el=_u(rng, 10, 40), l_sh=-_u(rng, 5, 20), l_el=_u(rng, 60, 90))
    clap_ = dict(r_sh=_u(rng, 12, 22), r_el=-_u(rng, 70, 80), l_sh=_u(rng, 12, 22), l_el=-_u(rng, 70, 80))
    k1 = dict(r_foot=-w, l_foot=w, root_x=-0.2, lean=-4.0, **swing)
    k2 = dict(r_foot=-w, l_foot=-w + 0.36, root_x=-w + 0.18, drop=0.08, **clap_)
    k3 = dict(r_foot=-w, l_foot=w, root_x=0.2, lean=4.0, **mirror(swing))
    k4 = dict(r_foot=w - 0.36, l_foot=w, root_x=w - 0.18, drop=0.08, **clap_)
    return [k1, k2, k3, k4]


def clap(rng):
    open_ = dict(r_sh=_u(rng, 50, 80), r_el=_u(rng, 10, 45), l_sh=_u(rng, 50, 80), l_el=_u(rng, 10, 45), drop=-0.02)
    if rng.random() < 0.6:  # clap in front of the belly
        shut = dict(r_sh=_u(rng, 12, 22), r_el=-_u(rng, 70, 80), l_sh=_u(rng, 12, 22), l_el=-_u(rng, 70, 80), drop=0.1)
    else:  # clap above the head
        shut = dict(
            r_sh=_u(rng, 150, 160), r_el=_u(rng, 25, 40), l_sh=_u(rng, 150, 160), l_el=_u(rng, 25, 40), drop=-0.05
        )
    return [open_, shut]


def turn(rng):
    y = _u(rng, 22, 35)
    # Turning towards image +x (the person's left): the left arm, now farther from the
    # camera, opens out to the side, the right (near) arm comes across the belly in
    # front of the trunk, where it stays visible.
    k1 = dict(
        yaw=y,
        head=4.0,
        root_x=0.08,
        l_sh=_u(rng, 80, 100),
        l_el=_u(rng, -5, 20),
        r_sh=_u(rng, 20, 35),
        r_el=-_u(rng, 95, 115),
    )
    k2 = dict(
        yaw=0.0, r_sh=_u(rng, 15, 30), r_el=_u(rng, 60, 90), l_sh=_u(rng, 15, 30), l_el=_u(rng, 60, 90), drop=0.1
    )
    return [k1, k2, mirror(k1), mirror(k2)]


def side_kick(rng):
    k1 = dict(
        r_lift=_u(rng, 0.3, 0.45),
        r_foot=-_u(rng, 0.7, 0.85),
        root_x=0.12,
        lean=_u(rng, 6, 12),
        r_sh=_u(rng, 70, 95),
        r_el=_u(rng, 0, 20),
        l_sh=_u(rng, 70, 95),
        l_el=_u(rng, 0, 20),
    )
    k2 = dict(r_sh=_u(rng, 15, 30), r_el=-_u(rng, 65, 80), l_sh=_u(rng, 15, 30), l_el=-_u(rng, 65, 80), drop=0.12)
    return [k1, k2, mirror(k1), k2]


def disco_point(rng):
    k1 = dict(
        r_sh=_u(rng, 138, 160),
        r_el=_u(rng, -5, 5),
        l_sh=_u(rng, 35, 50),
        l_el=-_u(rng, 100, 120),
        lean=5.0,
        root_x=0.1,
        head=-8.0,
    )
    k2 = dict(
        r_sh=-_u(rng, 20, 35),
        r_el=_u(rng, -5, 5),
        l_sh=_u(rng, 35, 50),
        l_el=-_u(rng, 100, 120),
        lean=-5.0,
        root_x=-0.1,
        head=6.0,
        drop=0.1,
    )
    return [k1, k2]


def plie(rng):
    w = _u(rng, 0.4, 0.5)
    k1 = dict(
        drop=_u(rng, 0.25, 0.35),
        r_foot=-w,
        l_foot=w,
        r_sh=_u(rng, 80, 95),
        r_el=_u(rng, 80, 95),
        l_sh=_u(rng, 80, 95),
        l_el=_u(rng, 80, 95),
    )
    k2 = dict(
        drop=0.0,
        r_foot=-w,
        l_foot=w,
        r_sh=_u(rng, 150, 168),
        r_el=_u(rng, -5, 10),
        l_sh=_u(rng, 150, 168),
        l_el=_u(rng, -5, 10),
    )
    return [k1, k2]


def march(rng):
    k1 = dict(
        r_lift=_u(rng, 0.35, 0.5),
        r_foot=-0.18,
        root_x=0.05,
        lean=3.0,
        l_sh=_u(rng, 40, 60),
        l_el=_u(rng, 70, 100),
        r_sh=_u(rng, 5, 15),
        r_el=-_u(rng, 30, 50),
    )
    return [k1, mirror(k1)]


def sway(rng):
    w = _u(rng, 0.3, 0.4)
    k1 = dict(
        lean=_u(rng, 8, 14),
        head=8.0,
        root_x=0.15,
        r_foot=-w,
        l_foot=w,
        r_sh=_u(rng, 100, 130),
        r_el=_u(rng, 20, 40),
        l_sh=_u(rng, 20, 40),
        l_el=_u(rng, 10, 30),
    )
    return [k1, mirror(k1)]


def arm_circle(rng):
    lead = _u(rng, 10, 25)  # one arm leads the other through the circle
    k1 = dict(r_sh=25.0, r_el=20.0, l_sh=25.0 + lead, l_el=15.0, drop=0.15)
    k2 = dict(r_sh=90.0, r_el=10.0, l_sh=90.0 + lead, l_el=-10.0, drop=0.02)
    k3 = dict(r_sh=160.0, r_el=15.0, l_sh=150.0 - lead, l_el=25.0, drop=-0.05)
    return [k1, k2, k3]


def waltz_step(rng):
    w = _u(rng, 0.4, 0.5)
    k1 = dict(
        r_foot=-w,
        l_foot=STANCE,
        root_x=-0.15,
        drop=0.18,
        lean=-6.0,
        r_sh=_u(rng, 90, 110),
        r_el=_u(rng, 20, 40),
        l_sh=_u(rng, 40, 60),
        l_el=_u(rng, 30, 50),
    )
    k2 = dict(
        r_foot=-w,
        l_foot=-w + 0.34,
        root_x=-w + 0.17,
        drop=0.0,
        lean=0.0,
        r_sh=_u(rng, 120, 140),
        r_el=_u(rng, 10, 30),
        l_sh=_u(rng, 70, 90),
        l_el=_u(rng, 10, 30),
    )
    k3 = dict(
        r_foot=-w,
        l_foot=-w + 0.34,
        root_x=-w + 0.17,
        drop=-0.04,
        head=-8.0,
        r_sh=_u(rng, 60, 80),
        r_el=_u(rng, 40, 60),
        l_sh=_u(rng, 100, 120),
        l_el=_u(rng, 10, 30),
    )
    return [k1, k2, k3] + [mirror(k) for k in (k1, k2, k3)]


MOVES = {
    f.__name__: f
    for f in (
        arm_swing,
        arm_pump,
        step_touch,
        clap,
        turn,
        side_kick,
        disco_point,
        plie,
        march,
        sway,
        arm_circle,
        waltz_step,
    )
}
REPERTOIRE = {
    "four_on_the_floor": ("arm_pump", "disco_point", "step_touch", "clap", "march", "turn"),
    "hiphop": ("arm_swing", "step_touch", "side_kick", "plie", "clap", "turn"),
    "waltz": ("sway", "arm_circle", "waltz_step", "turn"),
    "latin": ("sway", "step_touch", "march", "arm_swing", "turn", "disco_point"),
}


def _to_vector(kf: dict, home: float) -> np.ndarray:
    v = dict(NEUTRAL)
    v.update(kf)
    out = np.array([v[k] for k in PARAMS], dtype=np.float64)
    for k in ANGLES:
        out[P[k]] = np.radians(out[P[k]])
    for k in ("root_x", "r_foot", "l_foot"):
        out[P[k]] += home
    out[P["yaw"]] = np.clip(out[P["yaw"]], -MAX_YAW, MAX_YAW)
    return out


@dataclass
class Dance:
    times: np.ndarray  # [N] frame times, seconds
    keypoints: np.ndarray  # [N, 14, 2] pixels
    yaw: np.ndarray  # [N] radians, trunk turn (positive: the face turns to image +x)
    lean: np.ndarray  # [N] radians, trunk tilt (positive: the neck leans to image +x)
    head: np.ndarray  # [N] radians, head axis angle in the image
    body: Body
    moves: list = field(default_factory=list)
    params: np.ndarray | None = None  # [N, 13]


def choreograph(
    rng: np.random.Generator, beats: np.ndarray, beats_per_bar: int, style: str, times: np.ndarray, body: Body
) -> Dance:
    """Key poses on the beats of a song and the motion sampled at `times`."""
    beats = np.asarray(beats, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    period = float(np.median(np.diff(beats))) if beats.size > 1 else 0.5
    repertoire = REPERTOIRE.get(style, tuple(MOVES))
    bounce = _u(rng, 0.04, 0.08) * (1.4 if style == "hiphop" else 1.0)  # torso units
    ease = _u(rng, 0.05, 0.08)  # ease-out time constant (s): how snappily a pose is hit
    jitter = np.radians(6.0)
    home_range = 0.25

    keys = [_to_vector({}, 0.0)]  # still, neutral pose until the first beat
    moves = []
    k = 0
    prev_name = None
    while k < beats.size:
        name = str(rng.choice([m for m in repertoire if m != prev_name]))
        prev_name = name
        bars = int(rng.integers(1, 3))
        n = min(bars * beats_per_bar, beats.size - k)
        cycle = MOVES[name](rng)
        mirrored = bool(rng.random() < 0.5)
        if mirrored:
            cycle = [mirror(c) for c in cycle]
        home = _u(rng, -home_range, home_range)
        vecs = [_to_vector(c, home) for c in cycle]
        # Start the cycle where it differs most from the current pose, so that the first
        # beat of a move is an accent like all the others.
        cur, _ = pose_from_params(keys[-1], body)
        dist = [np.abs(pose_from_params(v, body)[0] - cur).sum() for v in vecs]
        start = int(np.argmax(dist)) if min(dist) < 0.5 * max(dist) else 0
        for i in range(n):
            v = vecs[(start + i) % len(vecs)].copy()
            for a in ("r_sh", "r_el", "l_sh", "l_el"):
                v[P[a]] += rng.uniform(-jitter, jitter)
            keys.append(v)
        moves.append(
            {
                "move": name,
                "mirrored": mirrored,
                "first_beat": k,
                "n_beats": n,
                "start": round(float(beats[k]), 4),
                "end": round(float(beats[k + n] if k + n < beats.size else beats[-1] + period), 4),
            }
        )
        k += n
    keys = np.stack(keys)  # [K+1, 13]: key pose i+1 is reached one period after beat i

    # Each move starts on the video frame nearest to its beat (at most half a frame
    # off). A motion starting between two frames would show a partial first step and a
    # full second one, splitting the accent over two frames of the sampled pose.
    starts = beats
    dt = 1.0 / 30.0
    if times.size > 1:
        dt = float(np.median(np.diff(times)))
        starts = times[0] + np.round((beats - times[0]) / dt) * dt
    ease = _equalise_accents(keys, starts, period, bounce, body, dt, ease)
    params = motion_params(keys, starts, period, times, ease, bounce)
    kp, head_axis = pose_from_params(params, body)
    return Dance(
        times=times,
        keypoints=kp,
        yaw=params[:, P["yaw"]],
        lean=params[:, P["lean"]],
        head=head_axis,
        body=body,
        moves=moves,
        params=params,
    )


def _accents(keys, starts, period, bounce, body, dt, tau):
    """Summed joint displacement over the first frame of each beat's move [K] (pixels):
    what the kinematic amplitude sees at the beat."""
    p0 = motion_params(keys, starts, period, starts, tau, bounce)
    p1 = motion_params(keys, starts, period, starts + dt, tau, bounce)
    k0, _ = pose_from_params(p0, body)
    k1, _ = pose_from_params(p1, body)
    return np.linalg.norm(k1 - k0, axis=-1).sum(axis=-1)


def _equalise_accents(keys, starts, period, bounce, body, dt, tau0, lo=0.025, hi=0.15):
    """Per-beat ease time constants [K] that make every beat's accent about equal.

    The kinematic amplitude is min-max normalised over the whole clip and its peaks must
    stand 0.2 above their neighbourhood, so one beat with a much bigger move than the
    others would hide them. A big move gets a longer time constant (a smoother start),
    a small one a shorter (a snappier start), found by bisection, since the first-frame
    displacement falls monotonically with the time constant. The target is the median
    accent at the video's base time constant; a move too small to reach it even at the
    shortest time constant keeps that.
    """
    K = len(starts)
    if K == 0:
        return np.asarray(tau0, dtype=np.float64)
    target = float(np.median(_accents(keys, starts, period, bounce, body, dt, np.full(K, tau0))))
    a, b = np.full(K, np.log(lo)), np.full(K, np.log(hi))
    for _ in range(18):
        mid = 0.5 * (a + b)
        too_strong = _accents(keys, starts, period, bounce, body, dt, np.exp(mid)) > target
        a = np.where(too_strong, mid, a)
        b = np.where(too_strong, b, mid)
    return np.exp(0.5 * (a + b))


def motion_params(keys, beats, period, times, ease, bounce):
    """Parameters [N, 13] at `times` from key poses [K+1, 13] on beats [K]; `ease` is
    the ease-out time constant in seconds, one for all beats or one per beat [K].

    Between beat k and k + period the pose eases out from key k to key k+1 along an
    exponential, x = (1 - exp(-s / ease)) / (1 - exp(-period / ease)) at s seconds after
    the beat: the velocity jumps at the beat and decays to rest within a few ease time
    constants, whatever the tempo. Most of the motion (and any change of direction
    along an arc) happens within the first video frames after the beat, so the
    kinematic amplitude has one sharp peak per beat rather than a burst. A foot
    that changes place is lifted along an arc, and a bounce (knee bend) that bottoms out
    on every beat is added.
    """
    k = np.searchsorted(beats, times, side="right") - 1  # beat segment per frame, -1 before
    started = k >= 0
    kk = np.clip(k, 0, max(len(beats) - 1, 0))
    u = np.where(started, np.clip((times - beats[kk]) / period, 0.0, 1.0), 0.0) if len(beats) else 0 * times
    tau = np.broadcast_to(np.asarray(ease, dtype=np.float64), (max(len(beats), 1),))[kk]
    x = (1.0 - np.exp(-u * period / tau)) / (1.0 - np.exp(-period / tau))
    a = keys[np.where(started, kk, 0)]
    b = keys[np.where(started, kk + 1, 0)]
    params = a + (b - a) * x[:, None]
    for foot, lift in (("r_foot", "r_lift"), ("l_foot", "l_lift")):
        step = np.abs(b[:, P[foot]] - a[:, P[foot]])
        params[:, P[lift]] += 0.3 * np.minimum(1.0, step / 0.3) * np.sin(np.pi * x)
    # 1 - sin(pi u) is 1 at each beat (lowest point, a cusp: down-then-up, the accent) and
    # 0 mid-beat; before the first beat u = 0 holds it constant, so the start is smooth.
    params[:, P["drop"]] += bounce * (1.0 - np.sin(np.pi * u))
    params[:, P["yaw"]] = np.clip(params[:, P["yaw"]], -MAX_YAW, MAX_YAW)
    return params
