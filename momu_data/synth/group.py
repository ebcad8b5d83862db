"""Synthetic group dance videos: several humanoids in one room, each with its own ground truth.

`momu-data synth N --dancers K` writes `group_XXX.mp4` with `group_XXX.gt.json`: the music's
truth as for one dancer (tempo, beats, style) and, under "dancers", each dancer's 14
keypoints per frame (pixels, skeleton.JOINTS order), body and moves. The dancers stand side
by side, each dancing its own choreography to the same song. With crossing=True the first
two dancers swap places in the middle of the clip, walking past each other (dancer 1 in
front): the case where a tracker is most tempted to switch identities.

Video `i` of a set depends on (seed, i) only, as for `momu_data.synth`; pairs are written
atomically (video first, then the sidecar) and a rerun skips finished pairs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from momu_data.skeleton import JOINTS, torso_size
from momu_data.synth import is_done, synthesize_indices, write_clip
from momu_data.synth.choreography import Dance, P, choreograph, pose_from_params, random_body
from momu_data.synth.music import DEFAULT_SR, STYLES, Song, make_song
from momu_data.synth.render import FigureRenderer, Look, make_background, random_look

GROUP_VERSION = 1
# Three dancers side by side: 768x384 gives each a third of the width, 3.3 torso units.
DEFAULT_WIDTH = 768
DEFAULT_HEIGHT = 384
DEFAULT_FPS = 30.0
CROSS_SECONDS = 1.6  # how long the crossing dancers take to swap places


@dataclass
class GroupClip:
    index: int
    seed: int
    seconds: float
    fps: float
    width: int
    height: int
    song: Song
    dances: list[Dance]
    looks: list[Look]
    background: np.ndarray
    order: list[int]  # drawing order per frame is fixed: back to front
    crossing: tuple | None  # (dancer a, dancer b, start s, end s) when two dancers swap places

    @property
    def n_frames(self) -> int:
        return len(self.dances[0].times)

    def ground_truth(self) -> dict:
        s = self.song
        r = lambda a, n=3: np.round(np.asarray(a, dtype=np.float64), n).tolist()  # noqa: E731
        return {
            "version": GROUP_VERSION,
            "seed": self.seed,
            "index": self.index,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "seconds": self.seconds,
            "n_frames": self.n_frames,
            "tempo_bpm": s.tempo_bpm,
            "style": s.style,
            "beats_per_bar": s.beats_per_bar,
            "audio_sample_rate": s.sr,
            "beats": r(s.beats, 4),
            "downbeats": r(s.downbeats, 4),
            "frame_times": r(self.dances[0].times, 6),
            "joints": list(JOINTS),
            "n_dancers": len(self.dances),
            "draw_order": self.order,
            "crossing": list(self.crossing) if self.crossing else None,
            "dancers": [
                {
                    "dancer": k,
                    "moves": d.moves,
                    "keypoints": r(d.keypoints),
                    "body": {k2: round(float(getattr(d.body, k2)), 4) for k2 in ("torso", "cx", "ground")},
                }
                for k, d in enumerate(self.dances)
            ],
        }


def _luma(c) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _cross(dance: Dance, shift_px: float, t0: float, t1: float) -> Dance:
    """The dance with the dancer walking shift_px to the side between t0 and t1 (smoothstep):
    the root and both feet move, so the figure walks rather than leans."""
    u = np.clip((dance.times - t0) / max(t1 - t0, 1e-6), 0.0, 1.0)
    off = (u * u * (3 - 2 * u)) * shift_px / dance.body.torso
    params = dance.params.copy()
    for k in ("root_x", "r_foot", "l_foot"):
        params[:, P[k]] += off
    kp, head = pose_from_params(params, dance.body)
    return replace(dance, keypoints=kp, head=head, params=params)


def make_group_clip(
    index: int,
    seconds: float,
    n_dancers: int = 3,
    seed: int = 0,
    fps: float = DEFAULT_FPS,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    crossing: bool = False,
    style: str | None = None,
) -> GroupClip:
    """Music, one choreography and look per dancer, and the room (nothing encoded)."""
    if n_dancers < 1:
        raise ValueError("n_dancers must be at least 1")
    if crossing and n_dancers < 2:
        raise ValueError("crossing needs at least 2 dancers")
    if seconds <= 0 or fps <= 0:
        raise ValueError("seconds and fps must be positive")
    if width % 2 or height % 2:
        raise ValueError("width and height must be even (yuv420p)")
    r_song, r_room, *r_dancers = (
        np.random.default_rng(s) for s in np.random.SeedSequence([int(seed), int(index), 1000]).spawn(2 + n_dancers)
    )
    style = style or STYLES[(int(seed) + int(index)) % len(STYLES)]
    song = make_song(r_song, seconds, sr=DEFAULT_SR, style=style)
    times = np.arange(int(round(seconds * fps))) / fps
    room = random_look(r_room)
    # Each dancer sized for its slot of the frame (the single-dancer body is sized for the
    # whole height; here the figure must fit a slot of width / n_dancers as well).
    slot = width / n_dancers
    dances, looks = [], []
    for k, rng in enumerate(r_dancers):
        body = random_body(rng, width, height)
        f = min(1.0, slot / (3.4 * body.torso))
        body = replace(
            body,
            **{a: getattr(body, a) * f for a in ("torso", "shoulder", "hip", "upper_arm", "forearm", "thigh", "shin")},
            nose=body.nose * f,
            cx=slot * (k + 0.5) + rng.uniform(-0.03, 0.03) * slot,
        )
        dances.append(choreograph(rng, song.beats, song.beats_per_bar, song.style, times, body))
        while True:  # clothes that stand out from the shared room's wall
            look = random_look(rng)
            if abs(_luma(look.shirt) - _luma(room.wall)) > 60:
                break
        looks.append(replace(look, wall=room.wall, floor=room.floor, texture=room.texture))
    cross = None
    order = list(range(n_dancers))  # drawn back to front: with crossing, dancer 0 walks behind dancer 1
    if crossing:
        t0 = max(0.0, 0.5 * (seconds - CROSS_SECONDS))
        t1 = min(seconds, t0 + CROSS_SECONDS)
        gap = dances[1].body.cx - dances[0].body.cx
        dances[0] = _cross(dances[0], gap, t0, t1)
        dances[1] = _cross(dances[1], -gap, t0, t1)
        cross = (0, 1, round(t0, 4), round(t1, 4))
    background = make_background(r_room, room, dances[0].body, width, height)
    return GroupClip(
        index, int(seed), float(seconds), float(fps), width, height, song, dances, looks, background, order, cross
    )


def render_group_frames(clip: GroupClip):
    """Yield the clip's RGB frames: the dancers drawn back to front on the room."""
    renderers = [FigureRenderer(clip.dances[k], clip.looks[k], clip.background) for k in range(len(clip.dances))]
    for i in range(clip.n_frames):
        img = clip.background
        for k in clip.order:
            renderers[k].bg = img  # each figure is drawn over the ones behind it
            img = renderers[k](i)
        yield img


def _params(seconds, n_dancers, crossing, fps, width, height, seed, index) -> dict:
    return {
        "seconds": float(seconds),
        "n_dancers": int(n_dancers),
        "crossing_requested": bool(crossing),
        "fps": float(fps),
        "width": int(width),
        "height": int(height),
        "seed": int(seed),
        "index": int(index),
        "version": GROUP_VERSION,
    }


def synthesize_group_one(
    index: int,
    seconds: float,
    out,
    n_dancers: int = 3,
    seed: int = 0,
    crossing: bool = False,
    fps: float = DEFAULT_FPS,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    overwrite: bool = False,
) -> Path:
    """Write out/group_{index:03d}.mp4 and its .gt.json; return the mp4 path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mp4, gt = out / f"group_{index:03d}.mp4", out / f"group_{index:03d}.gt.json"
    params = _params(seconds, n_dancers, crossing, fps, width, height, seed, index)
    if not overwrite and is_done(mp4, gt, params):
        return mp4
    clip = make_group_clip(index, seconds, n_dancers, seed, fps, width, height, crossing)
    write_clip(mp4, gt, render_group_frames(clip), clip.song, fps, width, height, {**clip.ground_truth(), **params})
    return mp4


def synthesize_group(
    n: int, seconds: float, out, n_dancers: int = 3, seed: int = 0, crossing: bool = False, progress=None, jobs=1, **kw
) -> list[Path]:
    """n group videos group_000.mp4 ... with their sidecars, in index order (see
    momu_data.synth.synthesize for jobs and progress)."""
    fn = partial(
        synthesize_group_one, seconds=seconds, out=out, n_dancers=n_dancers, seed=seed, crossing=crossing, **kw
    )
    return synthesize_indices(fn, n, jobs, progress)


def load_group_gt(path) -> dict:
    """A group sidecar (the .gt.json or its .mp4) with times [N] and keypoints [K, N, 14, 2]."""
    p = Path(path)
    if p.suffix == ".mp4":
        p = p.with_suffix(".gt.json")
    gt = json.loads(p.read_text())
    if "dancers" not in gt:
        raise ValueError(f"{p}: not a group sidecar (no 'dancers')")
    gt["frame_times"] = np.asarray(gt["frame_times"], np.float64)
    gt["keypoints"] = np.stack([np.asarray(d["keypoints"], np.float64) for d in gt["dancers"]])
    return gt


def match_track(xy: np.ndarray, times: np.ndarray, gt: dict, thresholds=(0.1, 0.2), valid=None) -> dict:
    """How one estimated track [M, 14, 2] at `times` [M] matches the ground-truth dancers.

    Per frame, the nearest ground-truth dancer (mean joint distance in its torso units) is
    the one the track shows; `dancer` is the most frequent; `switches` counts the changes of
    the dancer shown along the track (an identity switch), over the frames where that is
    unambiguous (see below), `other_dancer_frames` those frames showing another dancer than
    `dancer`; PCK@a is against `dancer`'s own keypoints (fraction of joints closer than a
    torso). valid [M] leaves frames out (no person)."""
    xy = np.asarray(xy, np.float64)
    t = np.asarray(times, np.float64)
    ok = (t >= gt["frame_times"][0]) & (t <= gt["frame_times"][-1]) & np.all(np.isfinite(xy), axis=(1, 2))
    if valid is not None:
        ok &= np.asarray(valid, bool)
    xy, t = xy[ok], t[ok]
    K, N = gt["keypoints"].shape[:2]
    flat = gt["keypoints"].reshape(K, N, -1)
    ref = np.stack(
        [np.stack([np.interp(t, gt["frame_times"], flat[k, :, i]) for i in range(28)], 1) for k in range(K)]
    )
    ref = ref.reshape(K, len(t), 14, 2)
    err = np.linalg.norm(xy[None] - ref, axis=-1) / torso_size(ref)[..., None]  # [K, M, 14]
    if len(t) == 0:
        return {"dancer": -1, "frames": 0, "switches": 0, **{f"pck@{a:g}": 0.0 for a in thresholds}}
    mean = err.mean(-1)  # [K, M]
    nearest = mean.argmin(0)
    dancer = int(np.bincount(nearest, minlength=K).argmax())
    # A frame shows a dancer when it is within half a torso of them and twice as close as to
    # anyone else; frames where two dancers overlap (both about as near) show nobody for sure.
    ranked = np.sort(mean, axis=0)
    second = ranked[1] if K > 1 else np.full(len(t), np.inf)
    sure = (ranked[0] < 0.5) & (ranked[0] < 0.5 * second)
    shown = nearest[sure]
    out = {"dancer": dancer, "frames": int(len(t)), "switches": int((np.diff(shown) != 0).sum())}
    out["other_dancer_frames"] = int((shown != dancer).sum())
    out.update({f"pck@{a:g}": float((err[dancer] < a).mean()) for a in thresholds})
    out["median_error_torso"] = float(np.median(err[dancer]))
    return out


def evaluate_group(data, video: str, gt_path) -> dict:
    """Per item and per dancer accuracy of a group video extracted with --dancers all|N into
    `data` (items `<video>__dancer<k>`), against its sidecar: each item is matched to the
    ground-truth dancer it shows (match_track on its motion mapped back to pixels with the
    item's stored normalisation, at its mel frame times). Per dancer: PCK pooled over its
    items, coverage (the share of the clip's time its items cover) and identity switches."""
    from momu_data import timebase as A
    from momu_data.extract import load_item

    data = Path(data)
    gt = load_group_gt(gt_path)
    items = {}
    for rec_path in sorted((data / "items").glob(f"{video}.json")):
        rec = json.loads(rec_path.read_text())
        for view in rec.get("views", []):
            f = load_item(data, view["id"])
            t = view["t0"] + np.arange(f["pose"].shape[0]) / A.FPS
            xy = f["pose"] * view["scale"] + np.asarray(view["centre"])
            items[view["id"]] = {**match_track(xy, t, gt, valid=f["person"]), "seconds": float(view["duration"])}
    dancers = {}
    total = float(gt["seconds"])
    for k in range(gt["keypoints"].shape[0]):
        mine = [r for r in items.values() if r["dancer"] == k]
        frames = sum(r["frames"] for r in mine)
        dancers[k] = {
            "items": len(mine),
            "coverage": min(1.0, sum(r["seconds"] for r in mine) / total),
            "switches": sum(r["switches"] for r in mine),
            **{
                key: (sum(r[key] * r["frames"] for r in mine) / frames if frames else 0.0)
                for key in ("pck@0.1", "pck@0.2")
            },
        }
    return {"items": items, "dancers": dancers}
