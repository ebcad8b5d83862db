"""Stream shards into aligned (motion, mel, amplitude) batches for the trainers.

A webdataset pipeline of small stages: list shards -> split by node and worker -> read the
tars (webdataset's tar reader; its error handler is ours) -> check each sample's members
against its checksum record -> decode the four arrays and meta.json (no pickle), check values ->
optional random crop -> pad and batch with a mask.

Damage is never passed on as data: a tar that cannot be read, a member whose bytes differ
from its recorded sha256, a tar that ends early (fewer samples than the shard set's wids
index lists) or values no extraction can produce raise `ShardError`, one line naming the tar,
the sample and the member. With `skip_corrupt=True` such samples are dropped instead, counted
on the pipeline's `ShardCheck` (`.check`) and logged as a warning at the end of each pass.
Shards written before checksums existed (no `sha256.json` member) still load: they get every
check but the checksum one.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from momu_data import timebase as A

log = logging.getLogger(__name__)

KEYS = ("pose.npy", "conf.npy", "mel.npy", "amp.npy")
# Each sample's checksum record: {member: sha256 hex of its bytes} for every other member.
CHECKSUMS = "sha256.json"

# The values extraction can produce; anything beyond these limits is damage, not data.
MEL_FLOOR = math.log(A.LOG_FLOOR)  # features.log_mel: log(max(mel, 1e-5))
# The largest log-mel of audio in [-1, 1]: |STFT| <= sum(Hann window) = 512, times the largest
# row sum of the Slaney-normalised filter bank (0.0665): log(34.0) = 3.53 (tests recompute it).
MEL_CEILING = 3.527
MEL_MARGIN = 2.0  # allowed above the ceiling (audio up to e^2 = 7.4x full scale, e.g. decoder overshoot)
# Poses in torso units; in pixels `pose * scale + centre`. Extraction keeps joints inside the
# frame (outside ones count as missing), so a joint more than a frame beyond it cannot be real.
POSE_FRAME_MARGIN = 1.0  # frames (widths / heights) allowed outside the frame
POSE_LIMIT = 1000.0  # torso units from the centre when the frame size is unknown


class ShardError(ValueError):
    """A damaged or impossible shard sample or tar: one line naming the tar, sample and member.

    The message is kept apart from `args`, which webdataset's tar reader appends its stream
    and URL to on the way out. torch's DataLoader re-raises a worker's error as
    `ShardError(its whole traceback)`: the message is then that traceback's last line, the
    worker's one-line message."""

    def __init__(self, message: str, damage: Damage | None = None):
        prefix = f"{__name__}.{type(self).__name__}: "
        lines = str(message).strip().splitlines()
        if len(lines) > 1 and lines[-1].startswith(prefix):  # a DataLoader worker's traceback
            message = lines[-1][len(prefix) :]
        super().__init__(message)
        self.message, self.damage = str(message), damage

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Damage:
    """One problem found in a shard: `key` and `member` are None for a whole tar."""

    url: str
    key: str | None
    member: str | None
    reason: str
    samples: int = 1  # samples it costs (a tar that ends early: the missing ones)

    def __str__(self) -> str:
        where = self.url + (f": sample {self.key}" if self.key else "") + (f": {self.member}" if self.member else "")
        return f"{where}: {self.reason}"


def checksum_record(members: dict) -> bytes:
    """The CHECKSUMS member of an encoded sample ({name: bytes}; names starting with "_" are
    webdataset's metadata, not members)."""
    sums = {k: hashlib.sha256(v).hexdigest() for k, v in sorted(members.items()) if not k.startswith("_")}
    return json.dumps(sums, indent=0, sort_keys=True).encode()


def sample_damage(sample: dict, require_checksums: bool = False) -> list[Damage]:
    """What is wrong with an undecoded sample's members: a checksum mismatch, a member the
    record lists but the sample lacks (or the other way round), a missing checksum record
    (when the tar's other samples have one), or a missing array."""
    url, key = str(sample.get("__url__")), sample.get("__key__")
    members = {k: v for k, v in sample.items() if not k.startswith("__")}
    out = []
    if CHECKSUMS in members:
        try:
            sums = json.loads(members.pop(CHECKSUMS))
            if not isinstance(sums, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as e:
            return [Damage(url, key, CHECKSUMS, f"unreadable checksum record ({e})")]
        for name in sorted(set(sums) | set(members)):
            if name not in members:
                out.append(Damage(url, key, name, "missing (listed in the checksum record)"))
            elif name not in sums:
                out.append(Damage(url, key, name, "not in the checksum record"))
            elif hashlib.sha256(members[name]).hexdigest() != sums[name]:
                out.append(Damage(url, key, name, "sha256 mismatch: the bytes are damaged"))
    elif require_checksums:
        out.append(Damage(url, key, CHECKSUMS, "missing (the tar's other samples have one)"))
    out += [
        Damage(url, key, k, "missing: not a complete MoMu sample")
        for k in KEYS
        if k not in members and k not in {d.member for d in out}
    ]
    return out


def decode_member(name: str, data):
    """One member's bytes -> its value: .npy without pickle (an object array in a shard is
    refused, never unpickled), .json parsed; anything else stays bytes. Values webdataset
    already decoded pass through."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if name.endswith(".npy"):
        return np.load(io.BytesIO(data), allow_pickle=False)
    if name.endswith(".json"):
        return json.loads(data)
    return bytes(data)


def _check_values(url: str, key: str, out: dict) -> None:
    """Raise ShardError if the arrays' shapes disagree or a value cannot come from extraction."""

    def bad(member, reason):
        raise _damage(Damage(url, key, member, reason))

    pose, conf, mel, amp = out["pose"], out["conf"], out["mel"], out["amp"]
    T = pose.shape[0] if pose.ndim == 3 else -1
    shapes = {
        "pose.npy": (pose.shape, (T, 14, 2)),
        "conf.npy": (conf.shape, (T, 14)),
        "mel.npy": (mel.shape, (A.N_MELS, T)),
        "amp.npy": (amp.shape, (T,)),
    }
    if T < 1:
        bad("pose.npy", f"shape {list(pose.shape)}, expected [T, 14, 2] with T >= 1")
    for member, (got, want) in shapes.items():
        if got != want:
            bad(member, f"shape {list(got)}, expected {list(want)} (as pose.npy)")
    for member, x in (("pose.npy", pose), ("conf.npy", conf), ("mel.npy", mel), ("amp.npy", amp)):
        n = int(np.size(x) - np.isfinite(x).sum())
        if n:
            bad(member, f"{n} non-finite values (NaN or inf)")
    lo, hi = float(mel.min()), float(mel.max())
    if lo < MEL_FLOOR - 1e-3 or hi > MEL_CEILING + MEL_MARGIN:
        bad("mel.npy", f"log-mel in [{lo:.4g}, {hi:.4g}], outside the possible [{MEL_FLOOR:.2f}, {MEL_CEILING:.2f}]")
    if float(amp.min()) < -1e-3 or float(amp.max()) > 1 + 1e-3:
        bad("amp.npy", f"amplitude in [{amp.min():.4g}, {amp.max():.4g}], outside [0, 1]")
    meta = out["meta"]
    centre, scale, w, h = (meta.get(k) for k in ("centre", "scale", "width", "height"))
    try:
        frame = np.asarray(centre, float).reshape(2), float(scale), float(w), float(h)
    except (TypeError, ValueError):
        frame = None
    if frame and frame[1] > 0 and frame[2] > 0 and frame[3] > 0:
        (cx, cy), s, w, h = frame
        px, py = pose[..., 0] * s + cx, pose[..., 1] * s + cy
        m = POSE_FRAME_MARGIN
        if px.min() < -m * w or px.max() > (1 + m) * w or py.min() < -m * h or py.max() > (1 + m) * h:
            bad(
                "pose.npy",
                f"joints at x in [{px.min():.4g}, {px.max():.4g}], y in [{py.min():.4g}, {py.max():.4g}] px: "
                f"far outside the {w:g}x{h:g} frame",
            )
    elif float(np.abs(pose).max()) > POSE_LIMIT:
        bad("pose.npy", f"joints {float(np.abs(pose).max()):.4g} torso units from the centre (limit {POSE_LIMIT:g})")


def shard_urls(source, split: str | None = None) -> list[str]:
    """Resolve a shard folder, a shard root plus split, a glob, a brace pattern, a list,
    or a remote URL (`pipe:...`, `s3://...`, `https://...`) into a list of shard URLs."""
    if isinstance(source, (list, tuple)):
        return [str(s) for s in source]
    s = str(source)
    if "://" in s or s.startswith("pipe:"):
        import braceexpand

        return list(braceexpand.braceexpand(s))
    p = Path(s)
    if p.is_dir():
        if split:
            p = p / split
        elif (p / "train").is_dir() and not list(p.glob("*.tar")):
            raise ValueError(f"{p} is a shard root: name a split (train/val/test) or its folder")
        urls = sorted(str(x) for x in p.glob("*.tar"))
    elif any(ch in s for ch in "*?["):
        urls = sorted(glob.glob(s))
    elif "{" in s:
        import braceexpand

        urls = list(braceexpand.braceexpand(s))
    elif p.is_file():
        urls = [s]
    else:
        raise FileNotFoundError(f"no shards at {s}")
    if not urls:
        raise FileNotFoundError(f"no .tar shards in {p}: run `momu-data shard` first")
    return urls


def to_arrays(sample: dict) -> dict:
    """A shard sample (undecoded, or decoded by webdataset) -> the arrays the models use,
    checked: ShardError naming the tar, sample and member if an array is missing, unreadable,
    of the wrong shape or impossible (non-finite, log-mel or amplitude out of range, joints
    far outside the frame)."""
    url, key = str(sample.get("__url__")), sample.get("__key__")
    missing = [k for k in KEYS if k not in sample]
    if missing:
        raise _damage(Damage(url, key, ", ".join(missing), "missing: not a MoMu shard sample"))
    out = {"key": key}
    for name in (*KEYS, "meta.json"):
        try:
            value = decode_member(name, sample.get(name))
            value = (value or {}) if name == "meta.json" else np.asarray(value, np.float32)
        except Exception as e:  # any failure to decode untrusted bytes is damage
            raise _damage(Damage(url, key, name, f"unreadable ({type(e).__name__}: {e})")) from None
        if name == "meta.json" and not isinstance(value, dict):
            raise _damage(Damage(url, key, name, f"not a JSON object ({type(value).__name__})"))
        out[name.split(".")[0]] = value
    _check_values(url, key, out)
    return out


def _damage(d: Damage) -> ShardError:
    return ShardError(str(d), d)


def expected_counts(urls) -> dict[str, int]:
    """Samples per tar, as the shard set's wids index lists them, for local tars in the
    layout `momu-data shard` writes (ROOT/SPLIT/NNNNNN.tar next to ROOT/SPLIT.wids.json);
    tars elsewhere (remote, or without an index) are left out. An index that cannot be
    read is left out too: `momu-data inspect --verify` reports it."""
    local = [str(u) for u in urls if "://" not in str(u) and not str(u).startswith("pipe:")]
    listed = {}
    for folder in {Path(u).parent for u in local}:
        try:
            entries = json.loads((folder.parent / f"{folder.name}.wids.json").read_text())["shardlist"]
            for e in entries:
                listed[Path(folder.parent, e["url"])] = int(e["nsamples"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return {u: listed[Path(u)] for u in local if Path(u) in listed}


class ShardCheck:
    """The checks of one shard pipeline, and what they found.

    Three webdataset stages use it: `tar_error` is the tar reader's error handler (a tar
    that cannot be opened or read on, named by its URL); `raw` checks each undecoded sample
    against its checksum record, and each tar's sample count against the wids index when the
    tar has one (a damaged tar header ends a tar early without an error from the reader);
    `arrays` decodes and checks the values (to_arrays). Without skip_corrupt the first
    problem raises ShardError; with it the damaged samples are dropped and counted:
    `skipped` (samples), `damaged_tars`, `damage` (the first `keep` problems; None keeps
    all), and (warn) a warning is logged at the end of each pass. Counts live in the process
    that reads: with DataLoader workers each worker logs its own."""

    def __init__(
        self, urls, skip_corrupt: bool = False, expected: dict | None = None, keep: int | None = 100, warn: bool = True
    ):
        self.urls = [str(u) for u in urls]
        self.skip_corrupt, self.warn = skip_corrupt, warn
        self.expected = expected_counts(self.urls) if expected is None else expected
        self.keep = keep
        self.damage: list[Damage] = []
        self.skipped = 0
        self.damaged_tars: set[str] = set()
        self._errored: set[str] = set()
        self._pass: list[Damage] = []

    def found(self, d: Damage) -> None:
        """Raise ShardError for `d`, or (skip_corrupt) record it."""
        if not self.skip_corrupt:
            raise ShardError(
                f"{d}; rebuild the shards (momu-data shard) or skip damaged samples (--skip-corrupt)",
                d,
            ) from None
        if self.keep is None or len(self.damage) < self.keep:
            self.damage.append(d)
        self.damaged_tars.add(d.url)
        self.skipped += d.samples
        self._pass.append(d)

    def tar_error(self, exn: Exception) -> bool:
        """webdataset's handler of errors while opening and reading tars: True = go on."""
        if isinstance(exn, ShardError):  # ours, raised below and passing through the reader
            raise exn
        url = self._url_of(exn)
        if isinstance(exn, OSError):  # missing, unreadable (tarfile's own errors are not OSErrors)
            what = f"cannot read the tar ({exn.strerror or type(exn).__name__})"
        else:
            reason = str(exn.args[0]).split(" @ ")[0] if exn.args else ""
            what = f"truncated or garbled tar ({type(exn).__name__}: {reason})"
        if url not in self._errored:  # the reader may stumble more than once on one tar
            self._errored.add(url)
            self.found(Damage(url, None, None, what, samples=0))
        return True

    def raw(self, samples):
        """Stage: undecoded samples, those whose members match their checksums."""
        url, n, with_sums, seen = None, 0, False, set()
        self._errored, self._pass = set(), []
        for sample in samples:
            u = str(sample.get("__url__"))
            if u != url:
                if url is not None:
                    self._tar_end(url, n)
                url, n, with_sums = u, 0, CHECKSUMS in sample
                seen.add(u)
            n += 1
            damage = sample_damage(sample, require_checksums=with_sums)
            if damage:
                self.found(damage[0])
                for d in damage[1:]:  # same sample: named, not counted again
                    self.found(Damage(d.url, d.key, d.member, d.reason, samples=0))
                continue
            yield sample
        if url is not None:
            self._tar_end(url, n)
        for u in sorted(self._errored - seen):  # tars that failed before their first sample
            self._tar_end(u, 0)
        if self._pass and self.warn:
            tars = sorted({d.url for d in self._pass})
            log.warning(
                "skipped %d damaged shard samples in %d tar(s) (%s); first: %s",
                sum(d.samples for d in self._pass),
                len(tars),
                ", ".join(tars[:3]) + (", ..." if len(tars) > 3 else ""),
                self._pass[0],
            )

    def arrays(self, sample: dict) -> dict | None:
        """Map: to_arrays, or None (dropped by webdataset's map) for a damaged sample."""
        try:
            return to_arrays(sample)
        except ShardError as e:
            self.found(e.damage)
            return None

    def _tar_end(self, url: str, n: int) -> None:
        want = self.expected.get(url)
        if want is not None and n < want:
            self.found(
                Damage(
                    url,
                    None,
                    None,
                    f"{want - n} of {want} samples missing: the tar ends early (truncated, or a damaged tar header)",
                    samples=want - n,
                )
            )

    def _url_of(self, exn: Exception) -> str:
        """The tar an error of webdataset's reader is about: it appends the URL to the
        error's args, or the open file (whose repr shows the path) to its message; an error
        opening a local file names it as its filename."""
        args = [str(a) for a in (*exn.args, getattr(exn, "filename", None)) if a is not None]
        hits = [u for u in self.urls if u in args] or [u for u in self.urls if any(u in a for a in args)]
        return max(hits, key=len) if hits else "a shard (unknown URL)"


def open_shards(urls, skip_corrupt: bool = False, check: ShardCheck | None = None, **kwargs):
    """webdataset.WebDataset(urls, **kwargs) reading through a ShardCheck (`.check` of the
    result; `check` to give one): unreadable tars, checksum mismatches and tars that end
    early are caught there. Samples stay undecoded (shuffle them cheaply); finish with
    decode_checked."""
    import webdataset as wds

    check = check or ShardCheck(urls, skip_corrupt)
    ds = wds.WebDataset(check.urls, handler=check.tar_error, **kwargs).compose(check.raw)
    ds.check = check
    return ds


def decode_checked(ds):
    """An open_shards pipeline (after any shuffle or slice) -> samples of checked arrays."""
    return ds.map(ds.check.arrays)


class RandomCrop:
    """Crop every frame-aligned array to the same random window of `frames` (clips that are
    shorter are kept whole and padded at batching)."""

    def __init__(self, frames: int, seed: int = 0):
        self.frames = frames
        self.rng = np.random.default_rng(seed)

    def __call__(self, s: dict) -> dict:
        T = s["pose"].shape[0]
        if T <= self.frames:
            return s
        a = int(self.rng.integers(0, T - self.frames + 1))
        b = a + self.frames
        return {
            **s,
            "pose": s["pose"][a:b],
            "conf": s["conf"][a:b],
            "mel": s["mel"][:, a:b],
            "amp": s["amp"][a:b],
            "offset": a,
        }


def collate(samples: list[dict]) -> dict:
    """Pad to the longest clip in the batch; mask[b, t] is True on real frames."""
    import torch

    B = len(samples)
    T = max(s["pose"].shape[0] for s in samples)
    pose = torch.zeros(B, T, 14, 2)
    conf = torch.zeros(B, T, 14)
    mel = torch.full((B, samples[0]["mel"].shape[0], T), float(np.log(1e-5)))
    amp = torch.zeros(B, T)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for i, s in enumerate(samples):
        n = s["pose"].shape[0]
        pose[i, :n] = torch.from_numpy(s["pose"])
        conf[i, :n] = torch.from_numpy(s["conf"])
        mel[i, :, :n] = torch.from_numpy(s["mel"])
        amp[i, :n] = torch.from_numpy(s["amp"])
        mask[i, :n] = True
    return {
        "key": [s["key"] for s in samples],
        "pose": pose,
        "conf": conf,
        "mel": mel,
        "amp": amp,
        "mask": mask,
        "length": mask.sum(1),
        "meta": [s.get("meta", {}) for s in samples],
    }


def dataset(
    source,
    split: str | None = None,
    crop_frames: int | None = None,
    shuffle: int = 0,
    seed: int = 0,
    resampled: bool = False,
    skip_corrupt: bool = False,
):
    """The webdataset pipeline of checked samples (unbatched), split by node and worker.
    Its `.check` (ShardCheck) counts what skip_corrupt skipped."""
    import webdataset as wds

    urls = shard_urls(source, split)
    ds = open_shards(
        urls,
        skip_corrupt,
        resampled=resampled,
        shardshuffle=(100 if shuffle else False),
        seed=seed,
        nodesplitter=wds.split_by_node,
        workersplitter=wds.split_by_worker,
        empty_check=False,
    )
    if shuffle:
        ds = ds.shuffle(shuffle, seed=seed) if _shuffle_takes_seed() else ds.shuffle(shuffle)
    ds = decode_checked(ds)
    if crop_frames:
        ds = ds.map(RandomCrop(crop_frames, seed))
    return ds


def _shuffle_takes_seed() -> bool:
    import inspect

    import webdataset as wds

    return "seed" in inspect.signature(wds.filters.shuffle).parameters


def loader(
    source,
    split: str | None = None,
    batch_size: int = 8,
    crop_frames: int | None = None,
    shuffle: int = 0,
    num_workers: int = 0,
    seed: int = 0,
    resampled: bool = False,
    skip_corrupt: bool = False,
):
    """A torch DataLoader yielding padded batches:
    {"key": [B], "pose": [B,T,14,2], "conf": [B,T,14], "mel": [B,80,T], "amp": [B,T],
     "mask": [B,T] bool, "length": [B], "meta": [B] dicts (meta.json: labels, source...)}.

    Damaged shards raise ShardError (one line: tar, sample, member); with skip_corrupt the
    damaged samples are skipped, logged at the end of each pass and counted on `.check`
    (ShardCheck: skipped, damaged_tars, damage; in this process, so with num_workers=0)."""
    import torch

    ds = dataset(source, split, crop_frames, shuffle, seed, resampled, skip_corrupt)
    dl = torch.utils.data.DataLoader(
        ds.batched(batch_size, collation_fn=collate, partial=True), batch_size=None, num_workers=num_workers
    )
    dl.check = ds.check
    return dl
