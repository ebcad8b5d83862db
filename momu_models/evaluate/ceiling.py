"""The ceiling of beat alignment: how well the *real* motion of an extracted dataset meets
the beats of its own music, scored per clip exactly as `momu-eval beats` scores a generated
clip against its reference, with a floor of mismatched pairs (what beat density alone
scores). `momu-eval ceiling DATA` and the recipes' report stage use it."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import soundfile as sf

from momu_data import timebase as A
from momu_data.extract import load_item
from momu_models.evaluate.metrics.beats import aggregate, motion_beats, music_beats, pair_scores

log = logging.getLogger(__name__)


def clip_beats(data) -> list[dict]:
    """Per kept clip: kinematic beats of its real motion and onsets of its own music, in
    seconds from the clip start, computed from the clip alone exactly as `momu-eval beats`
    computes them for a generated clip and its reference (motion_beats on the clip's pose,
    music_beats on the clip's audio). Per clip matters: both detectors normalise their
    envelope over what they are given, so beats of a whole video, cut into clips, differ."""
    data = Path(data)
    rows = [r for r in pq.read_table(data / "clips.parquet").to_pylist() if r["status"] == "ok"]
    out, cache = [], {}
    for r in sorted(rows, key=lambda r: r["key"]):
        vid = r["video"]
        if vid not in cache:  # rows are sorted by key = <video>-<index>: one item at a time
            y, _ = sf.read(data / "items" / f"{vid}.flac", dtype="float32")
            cache = {vid: (load_item(data, vid)["pose"], y)}
        pose, y = cache[vid]
        s, e = int(r["frame_start"]), int(r["frame_end"])
        out.append(
            {
                **r,
                "kin": motion_beats(pose[s:e], A.FPS),
                "on": music_beats(y[s * A.HOP : e * A.HOP]),
                "seconds": (e - s) / A.FPS,
            }
        )
    return out


def beat_ceiling(data, tolerance: float | None = None, bin_s: float = 1.0, label: str = "") -> dict:
    """BCS / BHS / F1 (percent; LORIS bins of bin_s seconds, and +-tolerance s one-to-one
    matching when given) of the ground-truth pairs: each clip's kinematic beats (as the
    generated beats) against its own music's onsets (as the reference), aggregated over
    clips. The floor is the same score for mismatched pairs, each clip's motion against the
    music of a clip of another item (the clip half the list away, or the next one of
    another item): what beat density alone scores."""
    clips = clip_beats(data)
    if not clips:
        raise ValueError(f"no kept clips in {data}")
    n = len(clips)
    partner = []
    for i, c in enumerate(clips):
        j = next((k for k in ((i + n // 2 + m) % n for m in range(n)) if clips[k]["video"] != c["video"]), None)
        partner.append(j)

    def scores(tol):
        matched = [pair_scores(c["kin"], c["on"], c["seconds"], tolerance=tol, bin_s=bin_s) for c in clips]
        floor = [
            pair_scores(c["kin"], clips[j]["on"], min(c["seconds"], clips[j]["seconds"]), tolerance=tol, bin_s=bin_s)
            for c, j in zip(clips, partner)
            if j is not None
        ]
        return matched, floor

    matched, floor = scores(None)
    secs = sum(c["seconds"] for c in clips)
    res = {
        "n_clips": n,
        "n_items": len({c["video"] for c in clips}),
        "bin_seconds": bin_s,
        "overall": aggregate(matched),
        "floor": aggregate(floor) if floor else None,
        "beats_per_second": {
            "kinematic": sum(len(c["kin"]) for c in clips) / secs,
            "onsets": sum(len(c["on"]) for c in clips) / secs,
        },
    }
    if tolerance is not None:
        m_t, f_t = scores(tolerance)
        res.update(
            {
                "tolerance": tolerance,
                "overall_tolerance": aggregate(m_t),
                "floor_tolerance": aggregate(f_t) if f_t else None,
            }
        )
    if label:
        groups: dict[str, list] = {}
        for c, sc in zip(clips, matched):
            groups.setdefault(str(c.get(label) or "?"), []).append(sc)
        res["by_label"] = {k: aggregate(v) for k, v in sorted(groups.items())}
    return res


def beat_report_markdown(results: list[dict], name: str) -> str:
    """The markdown report of ceiling_report's results, titled with name."""

    def f(x):
        return "-" if x is None or x != x else f"{x:.1f}"

    tol = "overall_tolerance" in results[0]
    lines = [
        f"# Ground-truth beat scores: {name}",
        "",
        "Kinematic beats of the real motion vs the onsets of its own music, per clip, as "
        f"`momu-eval beats` scores a pair (BCS / BHS / F1 in %, {results[0]['bin_seconds']:g} s bins"
        + (f"; tol.: +-{results[0]['tolerance']:g} s matching" if tol else "")
        + "). Floor: the same for mismatched pairs (motion of one item, music of another).",
        "",
        "| data | clips | BCS | BHS | F1 | floor F1 |"
        + (" tol. BCS | tol. BHS | tol. F1 | tol. floor F1 |" if tol else ""),
        "|---|---|---|---|---|---|" + ("---|---|---|---|" if tol else ""),
    ]
    for r in results:
        o, fl = r["overall"], r["floor"] or {}
        row = f"| {r['data']} | {r['n_clips']} | {f(o['BCS'])} | {f(o['BHS'])} | {f(o['F1'])} | {f(fl.get('F1'))} |"
        if tol:
            t, tf = r["overall_tolerance"], r.get("floor_tolerance") or {}
            row += f" {f(t['BCS'])} | {f(t['BHS'])} | {f(t['F1'])} | {f(tf.get('F1'))} |"
        lines.append(row)
    bps = results[0]["beats_per_second"]
    lines += [
        "",
        f"Beats per second ({results[0]['data']}): kinematic {bps['kinematic']:.2f}, "
        f"music onsets {bps['onsets']:.2f}.",
    ]
    for r in results:
        if r.get("by_label"):
            lines += [
                "",
                f"By label ({r['data']}):",
                "",
                "| label | clips | BCS | BHS | F1 |",
                "|---|---|---|---|---|",
            ]
            for k, a in r["by_label"].items():
                lines.append(f"| {k} | {a['n']} | {f(a['BCS'])} | {f(a['BHS'])} | {f(a['F1'])} |")
    return "\n".join(lines) + "\n"


def ceiling_report(sets, tolerance: float | None = None, bin_s: float = 1.0, label: str = "") -> list[dict]:
    """beat_ceiling for each (name, data folder) of `sets`, each result tagged with its name."""
    results = []
    for name, data in sets:
        log.info("beat ceiling of %s (%s)", name, data)
        res = beat_ceiling(data, tolerance=tolerance, bin_s=bin_s, label=label)
        res["data"] = name
        results.append(res)
    return results
