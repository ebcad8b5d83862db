"""Summaries and a one-clip plot of a data folder (extract output) or a shard folder, and
the verification of a shard folder (every tar read, every sample checked)."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from rich.table import Table

from momu_data import timebase as A
from momu_data.extract import load_item, read_record
from momu_data.features import clip_beats, kinematic_amplitude
from momu_data.io import sha256_file
from momu_data.loader import Damage, ShardCheck, decode_checked, decode_member, open_shards, shard_urls, to_arrays

SPLITS = ("train", "val", "test")


def kind_of(path: Path) -> str:
    path = Path(path)
    if (path / "manifest.parquet").exists():
        return "shards"
    if (path / "clips.parquet").exists():
        return "data"
    raise FileNotFoundError(f"{path} is neither a data folder (clips.parquet) nor a shard folder (manifest.parquet)")


def items_row(videos: list[dict]) -> tuple[str, str]:
    """The summary row counting a data folder's items (rows of videos.parquet): "videos ok /
    failed" when each input is one item, else "items ok / failed" with the inputs they came
    from (every dancer of a group video, every camera view, is an item of its own)."""
    ok = sum(v["status"] == "ok" for v in videos)
    counts = f"{ok} / {len(videos) - ok}"
    inputs = len({v.get("job") or v["id"] for v in videos})
    if inputs == len(videos):
        return "videos ok / failed", counts
    return "items ok / failed", f"{counts} (from {inputs} input{'s' * (inputs != 1)}: a dancer or a view each)"


def summarise(path) -> list[Table]:
    path = Path(path)
    tables = []
    if kind_of(path) == "data":
        videos = pq.read_table(path / "videos.parquet").to_pylist()
        clips = pq.read_table(path / "clips.parquet").to_pylist()
        ok = [c for c in clips if c["status"] == "ok"]
        t = Table(title=f"data: {path}", show_header=False)
        t.add_row(*items_row(videos))
        t.add_row("clips kept / rejected", f"{len(ok)} / {len(clips) - len(ok)}")
        t.add_row("hours kept", f"{sum(c['duration'] for c in ok) / 3600:.3f}")
        good = [v for v in videos if v["status"] == "ok"]
        if good:
            t.add_row(
                "mean person / interpolated fraction",
                f"{np.mean([v['person_frac'] for v in good]):.3f} / {np.mean([v['interp_frac'] for v in good]):.3f}",
            )
        tables.append(t)
        fails = Counter(v["reason"] for v in videos if v["status"] != "ok")
        rej = Counter(c["reason"].split(" (")[0] for c in clips if c["status"] != "ok")
        if fails or rej:
            f = Table(title="failures by reason")
            f.add_column("what")
            f.add_column("reason")
            f.add_column("count")
            for r, n in fails.most_common():
                f.add_row("video", r, str(n))
            for r, n in rej.most_common():
                f.add_row("clip", r, str(n))
            tables.append(f)
    else:
        rows = pq.read_table(path / "manifest.parquet").to_pylist()
        t = Table(title=f"shards: {path}")
        for c in ("split", "clips", "hours", "shards"):
            t.add_column(c)
        for split in ("train", "val", "test"):
            r = [x for x in rows if x["split"] == split]
            t.add_row(
                split, str(len(r)), f"{sum(x['duration'] for x in r) / 3600:.3f}", str(len({x["shard"] for x in r}))
            )
        tables.append(t)
    return tables


def _clip_from_data(path: Path, key: str | None):
    clips = [c for c in pq.read_table(path / "clips.parquet").to_pylist() if c["status"] == "ok"]
    row = next((c for c in clips if key in (None, c["key"])), None)
    if row is None:
        raise KeyError(f"clip {key} not found in {path}" if key else f"no kept clips in {path}")
    f = load_item(path, row["video"])
    s, e = row["frame_start"], row["frame_end"]
    pose = f["pose"][s:e]
    # The clip's own labels (as its shard sample holds them), not the whole video's cut to it.
    rec = read_record(path, row["job"]) or {}
    b = next((c.get("beats") for v in rec.get("views", []) for c in v["clips"] if c["key"] == row["key"]), None)
    if b is None:  # a record from before schema 2
        import soundfile as sf

        audio, _ = sf.read(path / "items" / f"{row['video']}.flac", dtype="float32")
        b = clip_beats(pose, audio[s * A.HOP : e * A.HOP])
    amp = kinematic_amplitude(pose, f["dirgram"].shape[1])
    return row["key"], f["mel"][:, s:e], amp, np.asarray(b["kinematic"]), np.asarray(b["onsets"])


def _clip_from_shards(path: Path, key: str | None):
    for split in SPLITS:
        if not (path / split).exists() or not list((path / split).glob("*.tar")):
            continue
        urls = shard_urls(path, split)
        for s in open_shards(urls, shardshuffle=False, empty_check=False, nodesplitter=None, workersplitter=None):
            if key in (None, s["__key__"]):
                a = to_arrays(s)  # checked: checksums above, values here
                b = decode_member("beats.json", s["beats.json"])
                return a["key"], a["mel"], a["amp"], np.asarray(b["kinematic"]), np.asarray(b["onsets"])
    raise KeyError(f"clip {key} not found in {path}" if key else f"no clips in {path}")


def plot_clip(path, out, key: str | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    k, mel, amp, kin, ons = (_clip_from_data if kind_of(path) == "data" else _clip_from_shards)(path, key)
    t = np.arange(mel.shape[1]) / A.FPS
    fig, ax = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    ax[0].imshow(mel, origin="lower", aspect="auto", extent=(0, t[-1] if len(t) else 0, 0, mel.shape[0]))
    ax[0].set_ylabel("mel bin")
    ax[0].set_title(k)
    for b in ons:
        ax[0].axvline(b, color="w", lw=0.6, alpha=0.8)
    ax[1].plot(t, amp, color="k", lw=0.8, label="kinematic amplitude")
    ax[1].vlines(kin, 0, 1, colors="tab:red", lw=1.2, label="kinematic beats")
    ax[1].vlines(ons, 0, 1, colors="tab:blue", lw=0.8, linestyles="dashed", label="music onsets")
    ax[1].set_xlabel("time (s)")
    ax[1].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return k


@dataclass
class Verification:
    """What `verify_shards` found: every problem (tar, sample, member), and how much it read."""

    path: Path
    tars: int = 0
    intact: int = 0  # samples that passed every check
    bytes: int = 0
    seconds: float = 0.0
    damage: list[Damage] = field(default_factory=list)

    @property
    def damaged_samples(self) -> int:
        return sum(d.samples for d in self.damage)

    @property
    def damaged_tars(self) -> list[str]:
        return sorted({d.url for d in self.damage})


def verify_shards(path, progress=None) -> Verification:
    """Read every tar of a shard folder and check it as the loader does (tar structure, each
    member against its sample's checksum record, the arrays' values), and more: each tar's
    sha256 against the wids index, and its samples against manifest.parquet, so a sample
    lost where a damaged header ends a tar early is named by its key. progress(1) per tar."""
    path = Path(path)
    if kind_of(path) != "shards":
        raise ValueError(f"--verify checks a shard folder; {path} is a data folder (extract output)")
    t0 = time.perf_counter()
    out = Verification(path)
    keys_of: dict[str, set] = {}
    for r in pq.read_table(path / "manifest.parquet", columns=["key", "shard"]).to_pylist():
        keys_of.setdefault(r["shard"], set()).add(r["key"])
    for split in SPLITS:
        listed = {}
        index = path / f"{split}.wids.json"
        if index.exists():
            try:
                listed = {e["url"]: e for e in json.loads(index.read_text())["shardlist"]}
            except (ValueError, KeyError, TypeError) as e:
                out.damage.append(Damage(str(index), None, None, f"unreadable wids index ({e})", samples=0))
        on_disk = {f"{split}/{p.name}" for p in (path / split).glob("*.tar")}
        for name in sorted(set(listed) | on_disk | {k for k in keys_of if k.startswith(f"{split}/")}):
            _verify_tar(path, name, listed.get(name, {}), keys_of.get(name), out)
            if progress:
                progress(1)
    out.seconds = time.perf_counter() - t0
    return out


def _verify_tar(root: Path, name: str, entry: dict, keys: set | None, out: Verification) -> None:
    tar = root / name
    url = str(tar)
    want = len(keys) if keys is not None else entry.get("nsamples")
    if not tar.is_file():
        out.damage.append(Damage(url, None, None, f"missing ({want or 0} samples listed)", samples=want or 0))
        return
    out.tars += 1
    out.bytes += tar.stat().st_size
    # Without a manifest entry, count against the index; with one, name the missing keys below.
    expected = {url: int(want)} if keys is None and want is not None else {}
    # verified=None: every member hashed, even of a tar this process found sound before
    check = ShardCheck([url], skip_corrupt=True, expected=expected, keep=None, warn=False, verified=None)
    ds = open_shards([url], check=check, shardshuffle=False, empty_check=False, nodesplitter=None, workersplitter=None)
    good = {s["key"] for s in decode_checked(ds)}
    out.intact += len(good)
    seen = good | {d.key for d in check.damage if d.key}
    missing = sorted((keys or set()) - seen)
    out.damage += check.damage
    out.damage += [
        Damage(url, k, None, "missing: the tar ends before it (truncated, or a damaged tar header)") for k in missing
    ]
    if "sha256" in entry and not check.damage and not missing and sha256_file(tar) != entry["sha256"]:
        out.damage.append(
            Damage(url, None, None, "sha256 differs from the wids index, yet every sample checks out", samples=0)
        )
