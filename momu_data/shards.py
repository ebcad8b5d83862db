"""Clips -> WebDataset tar shards per split, a wids index per split, and manifest.parquet.

One sample per clip (keys have no dots: webdataset splits a file name into key and
extension at the first dot):
  pose.npy     float32 [T, 14, 2]  motion on the mel time base, torso units
  conf.npy     float32 [T, 14]     per-joint confidence (0 where interpolated)
  mel.npy      float32 [80, T]     log-mel, 62.5 frames/s
  amp.npy      float32 [T]         kinematic amplitude indicator of the clip's pose, scaled to [0, 1] in the clip
  dirgram.npy  float32 [T, K]      motion directogram of the clip's pose
  beats.json   {"kinematic": [s], "onsets": [s]} from the clip start, detected on the clip alone
  audio.flac   16 kHz mono, exactly T * 256 samples
  meta.json    the clip's manifest row plus time base and normalisation
  sha256.json  {member: sha256 hex} of the other members: the loader's integrity check

Everything a sample holds is what the feature functions compute on that clip alone (its
pose, its audio as stored), so a metric run on the sample agrees with it: the amplitude
and directogram are computed here from the clip's pose, the beats were computed per clip at
extraction (features.clip_beats; computed here for records from before schema 2).

Tars are deterministic (fixed mtime, owner and mode; members sorted; samples in seeded
order), so two runs over the same data give byte-identical shards, and each tar's sha256
is in the split's wids index. A run builds into `.OUT.tmp-PID` and swaps it in; folders
such a run left when it was killed (its PID is gone) are removed by the next run.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from momu_data import timebase as A
from momu_data.extract import load_item
from momu_data.features import amplitude_from_flux, clip_beats, directogram, kinematic_flux
from momu_data.io import sha256_file, write_json
from momu_data.loader import CHECKSUMS, checksum_record
from momu_data.manifest import read_records

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
GROUP_COLUMNS = {"video": "job", "music": "music", "dancer": "dancer", "clip": "key"}
# Tar member headers: fixed, so the bytes depend on the data only (not on when or by whom).
TAR_MTIME = 0
TAR_OWNER = "momu"  # uname and gname; uid and gid are 0


def parse_split(spec: str) -> tuple[float, float, float]:
    """ "90/5/5" -> (0.9, 0.05, 0.05)."""
    try:
        parts = [float(p) for p in spec.split("/")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ValueError(f"--split must look like 90/5/5 (train/val/test), got {spec!r}")
    s = sum(parts)
    return tuple(p / s for p in parts)


def assign_splits(groups: dict[str, float], ratios, seed: int = 0) -> dict[str, str]:
    """Deterministic grouped split: each group (weight = its duration) goes whole to one
    split. Groups are visited in a seeded random order and each goes to the split that is
    least filled relative to its target share, so even a handful of groups gives every
    split with a non-zero share at least one group, and large sets converge to the ratios."""
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    r = np.asarray(ratios, dtype=float)
    got = np.zeros(3)
    out = {}
    for i in order:
        g = names[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            fill = np.where(r > 0, got / np.where(r > 0, r, 1), np.inf)
        k = int(np.argmin(fill))  # ties go to train, then val
        got[k] += groups[g]
        out[g] = SPLITS[k]
    return out


def _flac_bytes(y: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1, 1), A.SR, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def clip_sample(row: dict, feats: dict, audio: np.ndarray, view: dict) -> dict:
    s, e = int(row["frame_start"]), int(row["frame_end"])
    pose = feats["pose"][s:e].astype(np.float32)
    clip_audio = audio[s * A.HOP : e * A.HOP]
    dgram = directogram(pose, feats["dirgram"].shape[1])
    beats = next((c.get("beats") for c in view.get("clips", []) if c["key"] == row["key"]), None)
    if beats is None:  # a record from before schema 2: computed on the clip now, as extraction does
        beats = {k: v.tolist() for k, v in clip_beats(pose, clip_audio).items()}

    meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
    meta.update(
        {
            "fps": A.FPS,
            "sr": A.SR,
            "hop": A.HOP,
            "n_mels": A.N_MELS,
            "centre": view.get("centre"),
            "scale": view.get("scale"),
            "width": view.get("width"),
            "height": view.get("height"),
        }
    )
    return {
        "__key__": row["key"],
        "pose.npy": pose,
        "conf.npy": feats["conf"][s:e].astype(np.float32),
        "mel.npy": feats["mel"][:, s:e].astype(np.float32),
        "amp.npy": amplitude_from_flux(kinematic_flux(dgram)),
        "dirgram.npy": dgram,
        "beats.json": {"kinematic": list(beats["kinematic"]), "onsets": list(beats["onsets"])},
        "audio.flac": _flac_bytes(clip_audio),
        "meta.json": meta,
    }


def encode_sample(sample: dict) -> dict:
    """A clip_sample -> its members as bytes (webdataset's encoders, by extension), plus the
    CHECKSUMS member recording the sha256 of every other member."""
    from webdataset.writer import default_handlers, encode_based_on_extension

    members = encode_based_on_extension(sample, default_handlers)
    members[CHECKSUMS] = checksum_record(members)
    return members


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clean_stale_temporaries(out) -> list[Path]:
    """Remove the `.OUT.tmp-PID` (a shard set being built) and `.OUT.old-PID` (the previous
    set, moved aside while swapping) folders next to OUT that runs killed or stopped by an
    error left behind: those whose process is gone (or is this one). A live process's
    folders are kept: a concurrent run on this machine is never disturbed. If OUT itself is
    missing (a run killed between its two renames), the newest old set is moved back to OUT
    first. Returns the folders removed."""
    out = Path(out)
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)-(\d+)")
    stale = []
    for p in sorted(out.parent.glob(f".{out.name}.*-*")):
        m = pattern.fullmatch(p.name)
        if not m:
            continue
        pid = int(m[2])
        if pid != os.getpid() and _pid_alive(pid):
            log.info("kept %s: process %d that writes it is running", p, pid)
            continue
        stale.append((m[1], p))
    olds = [p for kind, p in stale if kind == "old"]
    if olds and not out.exists():
        newest = max(olds, key=lambda p: p.stat().st_mtime)
        os.replace(newest, out)
        log.warning("restored %s from %s (a run was killed while swapping in a new shard set)", out, newest.name)
        stale = [(k, p) for k, p in stale if p != newest]
    for _, p in stale:
        shutil.rmtree(p, ignore_errors=True)
    if stale:
        log.info("removed %d stale temporary folder(s) of stopped shard runs next to %s", len(stale), out)
    return [p for _, p in stale]


def write_shards(
    data,
    out,
    ratios=(0.9, 0.05, 0.05),
    group_by: str = "video",
    seed: int = 0,
    shard_size: int = 1000,
    shard_bytes: int = 512 << 20,
    progress=None,
    assignment: dict[str, str] | None = None,
) -> dict:
    """Build shards from DATA (extract's output) into OUT, replacing OUT at the end.

    assignment: a fixed split ("train", "val" or "test") per clip key, e.g. from a published
    protocol's lists (recipes/splits.py); clips without one are left out, ratios and
    group_by are not used.

    Everything is written into a sibling temporary folder first and swapped in when
    complete, so an interrupted run never leaves a partial shard set behind; the folder is
    removed if the run fails, and the next run removes those of killed runs
    (clean_stale_temporaries). Same data and settings give byte-identical tars.
    """
    data, out = Path(data), Path(out)
    clips_path = data / "clips.parquet"
    if not clips_path.exists():
        raise FileNotFoundError(f"{clips_path} not found: run `momu-data extract` first")
    rows = [r for r in pq.read_table(clips_path).to_pylist() if r["status"] == "ok"]
    if not rows:
        raise ValueError(f"no usable clips in {data} (all rejected or failed): see `momu-data inspect {data}`")
    if group_by not in GROUP_COLUMNS:
        raise ValueError(f"--group-by must be one of {', '.join(GROUP_COLUMNS)}")
    col = GROUP_COLUMNS[group_by]
    if assignment is not None:
        col = "key"
        rows = [r for r in rows if assignment.get(r["key"]) in SPLITS]
        if not rows:
            raise ValueError(f"no usable clip of {data} is in the split lists")
        split_of = {r["key"]: assignment[r["key"]] for r in rows}
    else:
        if any(not r.get(col) for r in rows):
            raise ValueError(
                f"--group-by {group_by}: some clips have no {col} id in the metadata; use --group-by video"
            )
        weights: dict[str, float] = {}
        for r in rows:
            weights[r[col]] = weights.get(r[col], 0.0) + r["duration"]
        split_of = assign_splits(weights, ratios, seed)
    views = {v["id"]: v for rec in read_records(data) if rec["status"] == "ok" for v in rec["views"]}

    clean_stale_temporaries(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        stats = _write_splits(data, tmp, rows, split_of, col, views, seed, shard_size, shard_bytes, progress)
        info = {"data": str(data), "ratios": list(ratios), "group_by": group_by, "seed": seed, "splits": stats}
        write_json(tmp / "info.json", info)
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the swap; else a failed run's partial set
    return info


def _write_splits(data, tmp, rows, split_of, col, views, seed, shard_size, shard_bytes, progress) -> dict:
    """Tars, wids indexes and manifest.parquet of every split into the folder tmp; returns
    the statistics per split."""
    import soundfile as sf
    import webdataset as wds

    shutil.rmtree(tmp, ignore_errors=True)
    manifest, index, stats = [], {}, {}
    rng = np.random.default_rng(seed)
    for split in SPLITS:
        srows = [r for r in rows if split_of[r[col]] == split]
        (tmp / split).mkdir(parents=True)
        # Videos in seeded random order so a shard mixes less of one video's clips in a row.
        by_video: dict[str, list[dict]] = {}
        for r in srows:
            by_video.setdefault(r["video"], []).append(r)
        vids = sorted(by_video)
        vids = [vids[i] for i in rng.permutation(len(vids))]
        written = []
        with wds.ShardWriter(
            str(tmp / split / "%06d.tar"),
            maxcount=shard_size,
            maxsize=shard_bytes,
            verbose=0,
            encoder=False,  # encode_sample did
            mtime=TAR_MTIME,
            user=TAR_OWNER,
            group=TAR_OWNER,
        ) as sink:
            for vid in vids:
                feats = load_item(data, vid)
                audio, _ = sf.read(data / "items" / f"{vid}.flac", dtype="float32")
                for r in by_video[vid]:
                    sample = clip_sample(r, feats, audio, views.get(vid, {}))
                    sink.write(encode_sample(sample))  # may open the next shard first
                    shard = Path(sink.fname).name
                    written.append({**r, "split": split, "shard": f"{split}/{shard}"})
                    if progress:
                        progress(1)
        manifest += written
        for p in (tmp / split).glob("*.tar"):  # ShardWriter opens a first shard even for an empty split
            if not any(w["shard"] == f"{split}/{p.name}" for w in written):
                p.unlink()
        shards = sorted((tmp / split).glob("*.tar"))
        counts = {}
        for w in written:
            counts[w["shard"]] = counts.get(w["shard"], 0) + 1
        index[split] = {
            "__kind__": "wids-shard-index-v1",
            "wids_version": 1,
            "name": split,
            "shardlist": [
                {
                    "url": f"{split}/{p.name}",
                    "nsamples": counts.get(f"{split}/{p.name}", 0),
                    "filesize": p.stat().st_size,
                    "sha256": sha256_file(p),
                }
                for p in shards
            ],
        }
        stats[split] = {
            "clips": len(written),
            "hours": sum(w["duration"] for w in written) / 3600,
            "groups": len({w[col] for w in written}),
            "shards": len(shards),
            "bytes": sum(p.stat().st_size for p in shards),
        }
    for split in SPLITS:
        write_json(tmp / f"{split}.wids.json", index[split])
    pq.write_table(pa.Table.from_pylist(manifest), tmp / "manifest.parquet")
    return stats


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace out by tmp: two renames; the old set is deleted only once the new one is in."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
