"""A recipe's dataset manifest (OUT/manifest.csv, checked in as manifests/NAME.csv): one row
per extracted item with its ids, labels, split and inputs (relative to the source folder,
optionally with sha256 checksums), and the comparison of a fresh build with a reference."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pyarrow.parquet as pq

from momu_data.io import atomic_path, sha256_file
from momu_data.manifest import read_records
from momu_data.recipes.stamps import content_files

MANIFEST_COLUMNS = (
    "id",
    "job",
    "view",
    "dataset",
    "status",
    "reason",
    "duration",
    "clips",
    "clips_ok",
    "genre",
    "music",
    "dancer",
    "style",
    "choreo",
    "label",
    "split",
    "source",
    "audio",
)


def _rel(path, root: Path) -> str:
    if not path:
        return ""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _checksums(path, skip=None) -> str:
    """sha256 of a file, or "name:sha256;..." for the files of a folder input (without
    skip, the audio file that has its own column)."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    if p.is_dir():
        sk = os.path.abspath(skip) if skip else None
        return ";".join(
            f"{f.relative_to(p).as_posix()}:{sha256_file(f)}" for f in content_files(p) if os.path.abspath(f) != sk
        )
    return ""


def build_manifest(data: Path, shards: Path, source: Path, opts: dict) -> list[dict]:
    """One row per extracted item (view): ids, duration, group ids, label, split, and the
    inputs relative to the source folder (with sha256 checksums when asked). opts: the
    recipe's [manifest] section (label, columns, checksums)."""
    split = {}
    if (shards / "manifest.parquet").exists():
        for r in pq.read_table(shards / "manifest.parquet", columns=["video", "split"]).to_pylist():
            split[r["video"]] = r["split"]
    views = {}
    for rec in read_records(data):
        for v in rec.get("views", []):
            views[v["id"]] = (rec, v)
    rows = []
    sums: dict[str, str] = {}
    for v in pq.read_table(data / "videos.parquet").to_pylist():
        rec, view = views.get(v["id"], ({}, {}))
        row = {k: v.get(k, "") for k in MANIFEST_COLUMNS if k in v}
        row["duration"] = round(float(v.get("duration") or 0.0), 3)
        row["label"] = v.get(opts["label"], "") if opts["label"] else ""
        row["split"] = split.get(v["id"], "")
        row["source"] = _rel(v["path"], source)
        row["audio"] = _rel(rec.get("audio_path"), source) if rec else ""
        for c in opts["columns"]:
            val = view.get(c, "")
            row[c] = round(val, 6) if isinstance(val, float) else val
        if opts["checksums"]:
            audio = rec.get("audio_path") if rec else ""
            for col, p in (("source_sha256", v["path"]), ("audio_sha256", audio)):
                if p and p not in sums:
                    sums[p] = _checksums(p, skip=audio)
                row[col] = sums.get(p, "") if p else ""
        rows.append(
            {
                k: row.get(k, "")
                for k in (
                    *MANIFEST_COLUMNS,
                    *opts["columns"],
                    *(("source_sha256", "audio_sha256") if opts["checksums"] else ()),
                )
            }
        )
    rows.sort(key=lambda r: r["id"])
    return rows


def write_manifest_csv(rows: list[dict], path) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(MANIFEST_COLUMNS), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)


def read_manifest_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# Columns that identify an item and its place in the dataset; timings and reasons may vary
# with library versions and are not compared.
COMPARED = (
    "id",
    "status",
    "genre",
    "music",
    "dancer",
    "style",
    "choreo",
    "label",
    "split",
    "source",
    "audio",
    "source_sha256",
    "audio_sha256",
)


def compare_manifests(new: list[dict], ref: list[dict]) -> list[str]:
    """Human-readable differences of a freshly built manifest from a reference one."""
    a = {r["id"]: r for r in new}
    b = {r["id"]: r for r in ref}
    out = [f"{i}: not in the reference" for i in sorted(set(a) - set(b))]
    out += [f"{i}: missing (in the reference)" for i in sorted(set(b) - set(a))]
    for i in sorted(set(a) & set(b)):
        for c in COMPARED:
            if c in b[i] and c in a[i] and str(a[i][c]) != str(b[i][c]):
                out.append(f"{i}: {c} is {a[i][c]!r}, reference {b[i][c]!r}")
        if "duration" in b[i] and b[i]["duration"] and abs(float(a[i]["duration"]) - float(b[i]["duration"])) > 0.05:
            out.append(f"{i}: duration {a[i]['duration']} s, reference {b[i]['duration']} s")
    return out
