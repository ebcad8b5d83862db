"""Manifests as plain data: the per-job JSON records under DATA/items/ compiled into
`videos.parquet` (one row per extracted video or view, failures included) and
`clips.parquet` (one row per clip, rejected ones included, with the reason)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from momu_data.io import atomic_path
from momu_data.timebase import FPS

LABELS = ("genre", "music", "dancer", "style", "choreo")


def read_records(data) -> list[dict]:
    recs = []
    for p in sorted((Path(data) / "items").glob("*.json")):
        try:
            recs.append(json.loads(p.read_text()))
        except json.JSONDecodeError:
            continue  # not one of ours or damaged: a rerun rewrites it
    return recs


def _labels(rec: dict, view: dict) -> dict:
    lab = {k: str(view[k]) for k in LABELS if k in view}
    lab.update({k: str(v) for k, v in (rec.get("labels") or {}).items() if k in LABELS})
    return {k: lab.get(k, "") for k in LABELS}


def video_rows(recs: list[dict]) -> list[dict]:
    rows = []
    for r in recs:
        common = {
            "job": r["id"],
            "path": r["path"],
            "dataset": r.get("dataset", ""),
            "status": r["status"],
            "reason": r.get("reason", ""),
            "pose_source": r.get("pose_source", ""),
            "seconds_taken": r.get("seconds", 0.0),
        }
        if r["status"] != "ok":
            rows.append(
                {
                    "id": r["id"],
                    "view": "",
                    "sha256": "",
                    "duration": 0.0,
                    "frames": 0,
                    "video_frames": 0,
                    "person_frac": 0.0,
                    "interp_frac": 0.0,
                    "clips": 0,
                    "clips_ok": 0,
                    **common,
                    **dict.fromkeys(LABELS, ""),
                }
            )
            continue
        for v in r["views"]:
            rows.append(
                {
                    "id": v["id"],
                    "view": v.get("view", ""),
                    "sha256": v.get("sha256", ""),
                    "duration": v["duration"],
                    "frames": v["frames"],
                    "video_frames": v["video_frames"],
                    "person_frac": v["person_frac"],
                    "interp_frac": v["interp_frac"],
                    "clips": len(v["clips"]),
                    "clips_ok": sum(c["status"] == "ok" for c in v["clips"]),
                    **common,
                    **_labels(r, v),
                }
            )
    return rows


def clip_rows(recs: list[dict]) -> list[dict]:
    rows = []
    for r in recs:
        if r["status"] != "ok":
            continue
        for v in r["views"]:
            for c in v["clips"]:
                rows.append(
                    {
                        "key": c["key"],
                        "video": v["id"],
                        "job": r["id"],
                        "path": r["path"],
                        "sha256": v.get("sha256", ""),
                        "dataset": r.get("dataset", ""),
                        "frame_start": c["start"],
                        "frame_end": c["end"],
                        "frames": c["end"] - c["start"],
                        "start": c["start"] / FPS,
                        "end": c["end"] / FPS,
                        "duration": (c["end"] - c["start"]) / FPS,
                        "status": c["status"],
                        "reason": c["reason"],
                        "interp_frac": c["interp_frac"],
                        "no_person_frac": c["no_person_frac"],
                        "shot": c.get("shot", 0),  # clips never span a camera cut (schema 2)
                        **_labels(r, v),
                    }
                )
    return rows


def write_table(rows: list[dict], path, schema_from: dict | None = None) -> pa.Table:
    table = pa.Table.from_pylist(rows) if rows else pa.table({k: [] for k in (schema_from or {})})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return table


def compile_manifests(data) -> tuple[pa.Table, pa.Table]:
    recs = read_records(data)
    videos = write_table(video_rows(recs), Path(data) / "videos.parquet", {"id": 0})
    clips = write_table(clip_rows(recs), Path(data) / "clips.parquet", {"key": 0})
    return videos, clips
