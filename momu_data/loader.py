"""Stream shards into aligned (motion, mel, amplitude) batches for the trainers.

A webdataset pipeline of small stages: list shards -> split by node and worker -> read the
tars (momu_data.tar_reader: only the members asked for; its errors go to our handler) ->
check each sample's members against its checksum record -> decode the arrays and meta.json
(no pickle), check values -> optional random crop -> pad and batch with a mask.

`fields` chooses what a sample carries: any of FIELDS (pose, conf, mel, amp, meta); the
trainers ask for theirs (DiT: pose and mel; VAE: pose, mel and amp; classifier: pose and
meta), so the FLAC and the other members are neither read nor hashed nor decoded. The
members that are read are all checked against the checksum record; a skipped member is
only checked to be present (its name), not its bytes: damage there goes unnoticed until a
reader that needs it (or `momu-data inspect --verify`, which reads everything) comes along.
Without `fields` every member is read and checked, as before.

Damage is never passed on as data: a tar that cannot be read, a member whose bytes differ
from its recorded sha256, a tar that ends early (fewer samples than the shard set's wids
index lists) or values no extraction can produce raise `ShardError`, one line naming the tar,
the sample and the member. With `skip_corrupt=True` such samples are dropped instead, counted
on the pipeline's `ShardCheck` (`.check`) and logged as a warning at the end of each pass.
Shards written before checksums existed (no `sha256.json` member) still load: they get every
check but the checksum one.

Training reads the same shards many times over, and the checks are most of a pass: a local
tar that a pass read to its end and found sound is remembered by this process (VERIFIED, a
VerifiedTars, keyed on the tar's path and its file's inode, size and modification and
status-change times), and later passes over it, unchanged, skip the checks its bytes have
passed: the checksums of the members read then, the values of the fields decoded then (the
same bytes give the same results). Its sample count is checked every pass; a tar rewritten
or replaced is checked in full again. `momu-data inspect --verify` never skips a check.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import io
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from momu_data import timebase as A

log = logging.getLogger(__name__)

KEYS = ("pose.npy", "conf.npy", "mel.npy", "amp.npy")
# Each sample's checksum record: {member: sha256 hex of its bytes} for every other member.
CHECKSUMS = "sha256.json"
# What a loaded sample can carry (`fields`), and the member each comes from. The frame-aligned
# arrays: axis of the frames in each, and their shape with T for it.
FIELDS = {"pose": "pose.npy", "conf": "conf.npy", "mel": "mel.npy", "amp": "amp.npy", "meta": "meta.json"}
ALL_FIELDS = tuple(FIELDS)
FRAME_SHAPES = {"pose": ("T", 14, 2), "conf": ("T", 14), "mel": (A.N_MELS, "T"), "amp": ("T",)}

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


def members_of(fields=None) -> frozenset[str] | None:
    """The tar members to read for `fields` (None: all of them): the fields' own, the
    checksum record, and meta.json with pose (the joints are checked against the frame)."""
    if fields is None:
        return None
    fields = check_fields(fields)
    names = {FIELDS[f] for f in fields} | {CHECKSUMS}
    if "pose" in fields:
        names.add(FIELDS["meta"])
    return frozenset(names)


def check_fields(fields) -> tuple[str, ...]:
    """`fields` as a tuple in FIELDS order; ValueError for an unknown name or none at all."""
    if isinstance(fields, tuple) and fields in _checked_fields:  # to_arrays asks for every sample
        return fields
    fields = (fields,) if isinstance(fields, str) else tuple(fields)
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown loader field(s) {', '.join(unknown)}: choose from {', '.join(FIELDS)}")
    if not fields:
        raise ValueError(f"no loader fields: choose from {', '.join(FIELDS)}")
    checked = tuple(f for f in FIELDS if f in fields)
    _checked_fields.add(checked)
    return checked


_checked_fields: set[tuple] = {ALL_FIELDS}


def sample_damage(sample: dict, require_checksums: bool = False) -> list[Damage]:
    """What is wrong with an undecoded sample's members: a checksum mismatch, a member the
    record lists but the sample lacks (or the other way round), a missing checksum record
    (when the tar's other samples have one), or a missing array. Members the reader skipped
    (listed in sample["__skipped__"]) count as present; their bytes are not checked."""
    url, key = str(sample.get("__url__")), sample.get("__key__")
    members = {k: v for k, v in sample.items() if not k.startswith("__")}
    present = set(members) | set(sample.get("__skipped__", ()))
    out = []
    if CHECKSUMS in members:
        try:
            sums = decode_member(CHECKSUMS, members.pop(CHECKSUMS))
            if not isinstance(sums, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as e:
            return [Damage(url, key, CHECKSUMS, f"unreadable checksum record ({e})")]
        for name in sorted(set(sums) | (present - {CHECKSUMS})):
            if name not in present:
                out.append(Damage(url, key, name, "missing (listed in the checksum record)"))
            elif name not in sums:
                out.append(Damage(url, key, name, "not in the checksum record"))
            elif name in members and hashlib.sha256(members[name]).hexdigest() != sums[name]:
                out.append(Damage(url, key, name, "sha256 mismatch: the bytes are damaged"))
    elif require_checksums:
        out.append(Damage(url, key, CHECKSUMS, "missing (the tar's other samples have one)"))
    out += [
        Damage(url, key, k, "missing: not a complete MoMu sample")
        for k in KEYS
        if k not in present and k not in {d.member for d in out}
    ]
    return out


def decode_member(name: str, data):
    """One member's bytes -> its value: .npy without pickle (an object array in a shard is
    refused, never unpickled), .json parsed; anything else stays bytes. Values webdataset
    already decoded pass through. An array decoded from a bytearray shares its memory (no
    copy); from read-only bytes it is copied, so it is always writable."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if name.endswith(".npy"):
        return _npy(data)
    if name.endswith(".json"):
        return json.loads(str(data, "utf-8"))  # webdataset writes UTF-8; str() takes any buffer
    return bytes(data)


_NPY_MAGIC = b"\x93NUMPY"
_npy_headers: dict[bytes, tuple] = {}  # header bytes -> (dtype, shape, order): shards repeat a few


def _npy(data) -> np.ndarray:
    """An .npy file's array, as np.load(allow_pickle=False) reads it, without its per-call
    header parsing (ast.literal_eval of the header, about 40 us): a header seen before is
    looked up. The data must be exactly as long as the header says."""
    if bytes(data[:6]) != _NPY_MAGIC or len(data) < 10:
        raise ValueError("not an .npy file (bad magic)")
    major = data[6]
    start = 10 if major == 1 else 12
    if major not in (1, 2, 3) or len(data) < start:
        raise ValueError(f"unsupported .npy format version {major}")
    end = start + int.from_bytes(data[8:start], "little")
    header = bytes(data[start:end])
    spec = _npy_headers.get(header)
    if spec is None:
        f = io.BytesIO(data)
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        if dtype.hasobject:
            raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
        if f.tell() != end:
            raise ValueError("malformed .npy header")
        count = math.prod(shape)
        spec = (dtype, shape, "F" if fortran else "C", count, count * dtype.itemsize)
        if len(_npy_headers) < 256:
            _npy_headers[header] = spec
    dtype, shape, order, count, nbytes = spec
    if len(data) - end != nbytes:
        raise ValueError(f"array data of {len(data) - end} bytes, the header says {nbytes}")
    a = np.frombuffer(data, dtype, count, end).reshape(shape, order=order)
    return a if a.flags.writeable else a.copy()


def _check_values(url: str, key: str, out: dict, meta: dict) -> None:
    """Raise ShardError if the arrays' shapes disagree or a value cannot come from extraction
    (the arrays of `out` that are there; meta: the clip's meta.json, for the frame size).

    Per sample and array this is a few numpy calls whose fixed cost (microseconds each) is
    most of it: one min and one max per array, whatever its size."""

    def bad(member, reason):
        raise _damage(Damage(url, key, member, reason))

    arrays = [f for f in FRAME_SHAPES if f in out]
    if not arrays:
        return
    ref = arrays[0]  # frames: counted on pose when it is there
    x, want = out[ref], FRAME_SHAPES[ref]
    T = x.shape[want.index("T")] if x.ndim == len(want) else -1
    if T < 1:
        bad(FIELDS[ref], f"shape {list(x.shape)}, expected [{', '.join(map(str, want))}] with T >= 1")
    for f in arrays:
        shape = _SHAPE_OF[f](T)
        if out[f].shape != shape:
            bad(FIELDS[f], f"shape {list(out[f].shape)}, expected {list(shape)} (as {FIELDS[ref]})")
    # One min and one max per array serve every value check: NaN propagates through both and
    # inf reaches one, so they are finite only if all values are.
    lo = {f: float(_MIN(out[f], None)) for f in arrays}
    hi = {f: float(_MAX(out[f], None)) for f in arrays}
    for f in arrays:
        if not (math.isfinite(lo[f]) and math.isfinite(hi[f])):
            bad(FIELDS[f], f"{int(np.size(out[f]) - np.isfinite(out[f]).sum())} non-finite values (NaN or inf)")
    if "mel" in lo:
        if lo["mel"] < MEL_FLOOR - 1e-3 or hi["mel"] > MEL_CEILING + MEL_MARGIN:
            possible = f"[{MEL_FLOOR:.2f}, {MEL_CEILING:.2f}]"
            bad("mel.npy", f"log-mel in [{lo['mel']:.4g}, {hi['mel']:.4g}], outside the possible {possible}")
    if "amp" in lo:
        if lo["amp"] < -1e-3 or hi["amp"] > 1 + 1e-3:
            bad("amp.npy", f"amplitude in [{lo['amp']:.4g}, {hi['amp']:.4g}], outside [0, 1]")
    if "pose" in lo:
        _check_pose(out["pose"], lo["pose"], hi["pose"], meta, bad)


_MIN, _MAX = np.minimum.reduce, np.maximum.reduce  # as ndarray.min / max, less a Python call each
# field -> its shape (a tuple) for T frames
_SHAPE_OF = {
    "pose": lambda T: (T, 14, 2),
    "conf": lambda T: (T, 14),
    "mel": lambda T: (A.N_MELS, T),
    "amp": lambda T: (T,),
}


def _frame(meta: dict) -> tuple | None:
    """((cx, cy), scale, width, height) as floats from meta.json, or None if unusable."""
    centre, scale, w, h = meta.get("centre"), meta.get("scale"), meta.get("width"), meta.get("height")
    try:
        if type(centre) is list and len(centre) == 2 and type(centre[0]) is float and type(centre[1]) is float:
            c = (centre[0], centre[1])  # as written by extraction: what np.asarray gives, without it
        else:
            c = tuple(np.asarray(centre, float).reshape(2).tolist())
        return c, float(scale), float(w), float(h)
    except (TypeError, ValueError):
        return None


def _check_pose(pose: np.ndarray, lo: float, hi: float, meta: dict, bad) -> None:
    """Joints far outside the clip's frame (or, without a frame size, far from the centre);
    lo, hi: the smallest and largest coordinate of any joint (torso units)."""
    frame = _frame(meta)
    if frame and frame[1] > 0 and frame[2] > 0 and frame[3] > 0:
        (cx, cy), s, w, h = frame
        m = POSE_FRAME_MARGIN

        def outside(x0, x1, y0, y1):  # pixels
            return x0 < -m * w or x1 > (1 + m) * w or y0 < -m * h or y1 > (1 + m) * h

        # x and y both within [lo, hi]: inside the frame for that box, inside for the joints.
        # Only a box that is not needs x and y apart (strided reductions, several times slower).
        if outside(lo * s + cx, hi * s + cx, lo * s + cy, hi * s + cy):
            x, y = pose[..., 0], pose[..., 1]
            x0, x1 = float(x.min()) * s + cx, float(x.max()) * s + cx  # s > 0 keeps the order
            y0, y1 = float(y.min()) * s + cy, float(y.max()) * s + cy
            if outside(x0, x1, y0, y1):
                bad(
                    "pose.npy",
                    f"joints at x in [{x0:.4g}, {x1:.4g}], y in [{y0:.4g}, {y1:.4g}] px: "
                    f"far outside the {w:g}x{h:g} frame",
                )
    elif max(-lo, hi) > POSE_LIMIT:
        bad("pose.npy", f"joints {max(-lo, hi):.4g} torso units from the centre (limit {POSE_LIMIT:g})")


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


def to_arrays(sample: dict, fields=None) -> dict:
    """A shard sample (undecoded, or decoded by webdataset) -> {"key", and each of `fields`
    (default ALL_FIELDS): the arrays the models use, and "meta"}, checked: ShardError naming
    the tar, sample and member if an array is missing, unreadable, of the wrong shape or
    impossible (non-finite, log-mel or amplitude out of range, joints far outside the frame).
    meta.json is decoded for the joints' check even when "meta" is not among the fields."""
    url, key = str(sample.get("__url__")), sample.get("__key__")
    fields = ALL_FIELDS if fields is None else check_fields(fields)
    missing = [FIELDS[f] for f in fields if f in FRAME_SHAPES and FIELDS[f] not in sample]
    if missing:
        raise _damage(Damage(url, key, ", ".join(missing), "missing: not a MoMu shard sample"))
    out = {"key": key}
    meta = {}
    for f in (*fields, "meta") if "pose" in fields and "meta" not in fields else fields:
        name = FIELDS[f]
        try:
            value = decode_member(name, sample.get(name))
            value = (value or {}) if f == "meta" else np.asarray(value, np.float32)
        except Exception as e:  # any failure to decode untrusted bytes is damage
            raise _damage(Damage(url, key, name, f"unreadable ({type(e).__name__}: {e})")) from None
        if f == "meta":
            if not isinstance(value, dict):
                raise _damage(Damage(url, key, name, f"not a JSON object ({type(value).__name__})"))
            meta = value
        out[f] = value
    _check_values(url, key, out, meta)
    if "meta" not in fields:
        out.pop("meta", None)
    return out


def _decoded(sample: dict, fields: tuple) -> dict:
    """to_arrays's result for a sample whose values passed its checks before (the same
    bytes): the fields decoded, nothing checked (meta.json only when asked for)."""
    out = {"key": sample.get("__key__")}
    for f in fields:
        value = decode_member(FIELDS[f], sample.get(FIELDS[f]))
        out[f] = (value or {}) if f == "meta" else np.asarray(value, np.float32)
    if "meta" in out and not isinstance(out["meta"], dict):
        raise ValueError("meta.json is not a JSON object")
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


class VerifiedTars:
    """The local tars this process has read to their end and found sound, and what that
    covered: the members checked against their checksum records (every sample's members that
    were read matching its record, none missing or unlisted, as many samples as the wids index
    lists), and the fields whose values every sample passed (to_arrays). A later pass over an
    unchanged tar that reads no other members needs no second checksum check, and one that
    asks for no other fields no second value check: the same bytes give the same results.
    Training reads the same shards many times over; hashing and checking them is most of a
    pass.

    A tar is known by its path and its file's identity and state (device, inode, size,
    modification and status-change times, in ns): a tar rewritten in place or replaced gets a
    new identity, and is checked again in full. A tar is remembered only if it had not
    changed for RACY_NS before its pass began: a file changed within its timestamps'
    granularity of that could change again keeping them (as git's racily clean index
    entries). Remote tars and pipes are never remembered. At most `limit` tars; the oldest
    are forgotten first. Each process keeps its own, and `torch_loader` shares it with its
    worker processes: they start with their process's record and hand back what they found
    sound (snapshot / merge), so an epoch's new workers do not check again what an earlier
    epoch's workers checked."""

    RACY_NS = 2_000_000_000

    def __init__(self, limit: int = 100_000):
        self.enabled = True  # False: remember nothing, trust nothing (every pass a first pass)
        self.limit = limit
        # identity -> (members checked against their checksums (None: all), fields whose values passed)
        self._sound: dict[tuple, tuple[frozenset | None, frozenset]] = {}
        # tars learnt since the last take_news (None: not kept; a loader worker keeps them)
        self._news: dict[tuple, None] | None = None

    @staticmethod
    def identity(url: str, st) -> tuple | None:
        """A tar's key: its URL and its file's os.stat_result (None: not a local file)."""
        if st is None:
            return None
        return (str(url), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def covers(self, identity: tuple | None, members: frozenset | None) -> bool:
        """Whether a pass reading `members` (None: all) of the tar needs no checksum checks."""
        if not self.enabled or identity not in self._sound:
            return False
        done = self._sound[identity][0]
        return done is None or (members is not None and members <= done)

    def values_cover(self, identity: tuple | None, fields: tuple) -> bool:
        """Whether a pass decoding `fields` of the tar needs no value checks (to_arrays)."""
        return self.enabled and identity in self._sound and set(fields) <= self._sound[identity][1]

    def add(self, identity: tuple | None, members: frozenset | None, started_ns: int, fields=()) -> bool:
        """Remember a tar found sound by a pass that began at `started_ns` (time.time_ns()):
        `members` checked against their checksums (None: all; frozenset(): none), and the
        values of `fields`. False if it is not remembered (see RACY_NS)."""
        if not self.enabled or identity is None or started_ns - max(identity[4], identity[5]) < self.RACY_NS:
            return False
        self._learn(identity, members, frozenset(fields))
        return True

    def _learn(self, identity: tuple, members: frozenset | None, fields: frozenset) -> None:
        old = self._sound.pop(identity, (frozenset(), frozenset()))
        done = None if old[0] is None or members is None else old[0] | members
        self._sound[identity] = new = done, old[1] | fields
        if new != old and self._news is not None:
            self._news[identity] = None
        while len(self._sound) > self.limit:
            del self._sound[next(iter(self._sound))]

    def snapshot(self) -> dict:
        """What this record knows, as plain data (picklable: for another process's merge)."""
        return dict(self._sound)

    def keep_news(self) -> None:
        """From now on, note the tars learnt (for take_news)."""
        self._news = {}

    def take_news(self) -> dict:
        """What was learnt since keep_news or the last take_news, as a snapshot of those tars."""
        if not self._news:
            return {}
        news = {i: self._sound[i] for i in self._news if i in self._sound}
        self._news.clear()
        return news

    def merge(self, snapshot: dict) -> None:
        """Take in what another process's record (`snapshot`) found sound, each tar as add()
        would have remembered it there (its identity still says whether it changed since)."""
        if not self.enabled:
            return
        for identity, (members, fields) in snapshot.items():
            self._learn(identity, members, fields)

    def clear(self) -> None:
        self._sound.clear()
        if self._news is not None:
            self._news.clear()

    def __len__(self) -> int:
        return len(self._sound)


# This process's record, used by every ShardCheck unless given another (or None).
VERIFIED = VerifiedTars()


@dataclass(eq=False)
class _OpenTar:
    """One opening of a tar by the loader's reader; its samples carry it as "__tar__"."""

    url: str
    identity: tuple | None
    started_ns: int
    trusted: bool  # found sound before, unchanged since: its samples' checksums are not checked again
    valued: bool  # and its values (of the check's fields): not checked again either
    samples: int | None = None  # samples it had, once read to its end without damage
    passed: set = field(default_factory=set)  # keys of the samples whose values passed
    spoiled: bool = False  # a sample's values were damaged (or its count, or checksums)


class ShardCheck:
    """The checks of one shard pipeline, and what they found.

    Three webdataset stages use it: `tar_error` is the tar reader's error handler (a tar
    that cannot be opened or read on, named by its URL); `raw` checks each undecoded sample
    against its checksum record, and each tar's sample count against the wids index when the
    tar has one (a damaged tar header ends a tar early without an error from the reader);
    `arrays` decodes and checks the values (to_arrays) of `fields` (None: all; `members`:
    the tar members read for them, see members_of). Without skip_corrupt the first
    problem raises ShardError; with it the damaged samples are dropped and counted:
    `skipped` (samples), `damaged_tars`, `damage` (the first `keep` problems; None keeps
    all), and (warn) a warning is logged at the end of each pass. Counts live in the process
    that reads: with DataLoader workers each worker logs its own.

    `verified` (a VerifiedTars; default VERIFIED, this process's; None: none) remembers the
    tars a pass found sound, and spares later passes over them, unchanged, the checksum and
    value checks their bytes passed (a tar's sample count is checked every pass)."""

    def __init__(
        self,
        urls,
        skip_corrupt: bool = False,
        expected: dict | None = None,
        keep: int | None = 100,
        warn: bool = True,
        fields=None,
        verified: VerifiedTars | None = VERIFIED,
    ):
        self.urls = [str(u) for u in urls]
        self.verified = verified
        self.fields = None if fields is None else check_fields(fields)
        self.members = members_of(self.fields)
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

    def opened(self, url: str, stat) -> _OpenTar:
        """The reader opened `url` (stat: its file's os.stat_result, None if not a local file)."""
        started = time.time_ns()
        identity = VerifiedTars.identity(url, stat)
        v = self.verified
        trusted = v is not None and v.covers(identity, self.members)
        valued = trusted and v.values_cover(identity, self.fields or ALL_FIELDS)
        return _OpenTar(str(url), identity, started, trusted, valued)

    def raw(self, samples):
        """Stage: undecoded samples, those whose members match their checksums (samples of a
        tar `verified` covers: all, unchecked)."""
        tar, url, n, with_sums, sound, seen = None, None, 0, False, True, set()
        self._errored, self._pass = set(), []
        for sample in samples:
            u = str(sample.get("__url__"))
            opening = sample.get("__tar__")  # _OpenTar of the reader's opening (a tar read twice: two)
            if u != url or opening is not tar:
                if url is not None:
                    self._tar_end(url, n, tar if sound else None)
                tar, url, n, with_sums, sound = opening, u, 0, CHECKSUMS in sample, True
                seen.add(u)
            n += 1
            if tar is not None and tar.trusted:
                yield sample
                continue
            damage = sample_damage(sample, require_checksums=with_sums)
            if damage:
                sound = False
                self.found(damage[0])
                for d in damage[1:]:  # same sample: named, not counted again
                    self.found(Damage(d.url, d.key, d.member, d.reason, samples=0))
                continue
            yield sample
        if url is not None:
            self._tar_end(url, n, tar if sound else None)
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
        """Map: to_arrays, or None (dropped by webdataset's map) for a damaged sample; the
        arrays only, unchecked, for a sample of a tar whose values `verified` covers."""
        tar = sample.get("__tar__")
        if tar is not None and tar.valued:
            try:
                return _decoded(sample, self.fields or ALL_FIELDS)
            except Exception:  # not for the bytes that passed; the checks below name the damage
                pass
        try:
            out = to_arrays(sample, self.fields)
        except ShardError as e:
            if tar is not None:
                tar.spoiled = True
            self.found(e.damage)
            return None
        if tar is not None:
            tar.passed.add(sample.get("__key__"))
            self._values_end(tar)
        return out

    def _values_end(self, tar: _OpenTar) -> None:
        """Remember the values of a tar as passed once all its samples have (to_arrays), by
        key; a sample dropped between the reader and here (a slice, a stop), or a key twice in
        the tar, leaves them unremembered."""
        if tar.samples is not None and len(tar.passed) == tar.samples and not tar.spoiled and not tar.valued:
            tar.valued = True  # for this opening: remembered once
            if self.verified is not None:
                self.verified.add(tar.identity, frozenset(), tar.started_ns, self.fields or ALL_FIELDS)

    def _tar_end(self, url: str, n: int, sound: _OpenTar | None = None) -> None:
        """A tar's last sample has passed: n samples; sound: its opening, if none was damaged
        (then remembered as verified, if it was read to its end, whole)."""
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
        elif sound is not None and url not in self._errored:
            if not sound.trusted and self.verified is not None:
                self.verified.add(sound.identity, self.members, sound.started_ns)
            sound.samples = n
            self._values_end(sound)

    def _url_of(self, exn: Exception) -> str:
        """The tar an error of webdataset's reader is about: it appends the URL to the
        error's args, or the open file (whose repr shows the path) to its message; an error
        opening a local file names it as its filename."""
        args = [str(a) for a in (*exn.args, getattr(exn, "filename", None)) if a is not None]
        hits = [u for u in self.urls if u in args] or [u for u in self.urls if any(u in a for a in args)]
        return max(hits, key=len) if hits else "a shard (unknown URL)"


def open_shards(urls, skip_corrupt: bool = False, check: ShardCheck | None = None, fields=None, **kwargs):
    """webdataset.WebDataset(urls, **kwargs) reading through a ShardCheck (`.check` of the
    result; `check` to give one, else one is made with skip_corrupt and fields): unreadable
    tars, checksum mismatches and tars that end early are caught there. The tars are read
    by momu_data.tar_reader (only the members the check's fields need) in place of
    webdataset's reader; webdataset still lists, splits, shuffles and opens them. Samples
    stay undecoded (shuffle them cheaply); finish with decode_checked."""
    import webdataset as wds
    from webdataset.cache import FileCache, StreamingOpen

    check = check or ShardCheck(urls, skip_corrupt, fields=fields)
    empty_check = kwargs.pop("empty_check", True)
    ds = wds.WebDataset(check.urls, handler=check.tar_error, empty_check=False, **kwargs)
    openers = [i for i, stage in enumerate(ds.pipeline) if isinstance(stage, (StreamingOpen, FileCache))]
    if len(openers) != 1:
        raise RuntimeError(f"webdataset {wds.__version__}: no tar opener found in its pipeline to read after")
    del ds.pipeline[openers[0] + 1 :]  # webdataset's own tar reader and grouper
    ds.append(_TarStage(check))
    if empty_check:
        ds.append(_not_empty)
    ds = ds.compose(check.raw)
    ds.check = check
    return ds


class _TarStage:
    """Pipeline stage: opened tars ({"url", "stream"}) -> their samples (TarSamples, the
    check's members), each carrying its tar's opening (check.opened) as "__tar__"; errors to
    check.tar_error with the URL appended to their args (as webdataset's reader does); the
    sample an error broke off is passed on after it, so the checks name its missing members."""

    def __init__(self, check: ShardCheck):
        self.check = check

    def __call__(self, sources):
        from momu_data.tar_reader import TarSamples

        for source in sources:
            url, stream = source["url"], source["stream"]
            go_on, reader, opening = True, None, None
            try:
                reader = TarSamples(stream, url, self.check.members)
                opening = self.check.opened(url, reader.stat)
                for sample in reader:
                    sample["__tar__"] = opening
                    yield sample
            except Exception as exn:
                exn.args = (*exn.args, url)
                go_on = self.check.tar_error(exn)
                if reader is not None and reader.partial is not None:
                    reader.partial["__tar__"] = opening
                    yield reader.partial
            finally:
                stream.close()
            if not go_on:
                break


def _not_empty(samples):
    n = 0
    for sample in samples:
        n += 1
        yield sample
    if not n:
        raise ValueError("no samples in the shards (fewer shards than workers?); pass empty_check=False to allow it")


def decode_checked(ds):
    """An open_shards pipeline (after any shuffle or slice) -> samples of checked arrays."""
    return ds.map(ds.check.arrays)


def frames_of(s: dict) -> int:
    """Frames of a loaded sample (or batch of them: axis 1 for pose, conf and amp, 2 for mel),
    from the first frame-aligned array it carries."""
    for f, shape in FRAME_SHAPES.items():
        if f in s:
            return s[f].shape[shape.index("T") + (s[f].ndim - len(shape))]
    raise KeyError("the sample carries no frame-aligned array (pose, conf, mel or amp)")


class RandomCrop:
    """Crop every frame-aligned array to the same random window of `frames` (clips that are
    shorter are kept whole and padded at batching)."""

    def __init__(self, frames: int, seed: int = 0):
        self.frames = frames
        self.rng = np.random.default_rng(seed)

    def __call__(self, s: dict) -> dict:
        T = frames_of(s)
        if T <= self.frames:
            return s
        a = int(self.rng.integers(0, T - self.frames + 1))
        b = a + self.frames
        out = {**s, "offset": a}
        for f in FRAME_SHAPES:
            if f in s:
                out[f] = s[f][:, a:b] if f == "mel" else s[f][a:b]
        return out


def collate(samples: list[dict]) -> dict:
    """Pad to the longest clip in the batch; mask[b, t] is True on real frames. The batch
    carries the fields its samples carry: of {"key": [B], "pose": [B,T,14,2], "conf": [B,T,14],
    "mel": [B,80,T] (padded with the log-mel floor), "amp": [B,T], "meta": [B] dicts}, plus
    "mask": [B,T] bool and "length": [B]. Filled in numpy, then shared with torch (no copy)."""
    import torch

    B = len(samples)
    first = samples[0]
    sizes = [frames_of(s) for s in samples]
    T = max(sizes)
    lengths = np.array(sizes, np.int64)
    whole = min(sizes) == T  # no padding (random crops of clips at least that long): a stack per array
    out = {"key": [s["key"] for s in samples]}
    for f, shape in FRAME_SHAPES.items():
        if f not in first:
            continue
        batch = np.empty((B, *[T if d == "T" else d for d in shape]), np.float32)
        if whole:
            np.stack([s[f] for s in samples], out=batch, casting="unsafe")  # as assignment casts
            out[f] = torch.from_numpy(batch)
            continue
        pad = MEL_FLOOR if f == "mel" else 0.0
        for i, s in enumerate(samples):
            n = sizes[i]
            if f == "mel":
                batch[i, :, :n] = s[f]
                batch[i, :, n:] = pad
            else:
                batch[i, :n] = s[f]
                batch[i, n:] = pad
        out[f] = torch.from_numpy(batch)
    mask = np.ones((B, T), bool) if whole else np.arange(T)[None, :] < lengths[:, None]
    out["mask"] = torch.from_numpy(mask)
    out["length"] = torch.from_numpy(lengths)
    if "meta" in first:
        out["meta"] = [s.get("meta", {}) for s in samples]
    return out


def torch_loader(
    batches,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
):
    """A torch DataLoader over a pipeline of collated batches, handing them on as they are
    (torch's default conversion would walk every batch's keys and meta dicts again).

    pin_memory: put each batch's tensors in page-locked memory (in a thread of this
    process), so a trainer's `.to("cuda", non_blocking=True)` is a true asynchronous copy;
    for training on CUDA. persistent_workers and prefetch_factor (batches each worker keeps
    ready; None: torch's default, 2) only apply with num_workers > 0.

    With workers, they share this process's record of verified tars (VERIFIED): each starts
    with what the record knows when the loader is made, and hands back with its batches the
    tars it found sound, which iterating the loader merges here; a later loader's workers (a
    trainer's next epoch) then neither hash nor value-check them again."""
    workers = num_workers > 0
    return _loader_class()(
        batches,
        batch_size=None,
        collate_fn=_hand_on,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and workers,
        prefetch_factor=prefetch_factor if workers else None,
        worker_init_fn=functools.partial(_start_worker, VERIFIED.snapshot()) if workers else None,
    )


# the key under which a worker's batch carries the tars it found sound to the loader's process
_RECORD = "__verified_tars__"


def _start_worker(snapshot: dict, worker_id: int) -> None:
    """A DataLoader worker starts with its process's record (already there when forked; not
    when spawned), then notes what it learns."""
    VERIFIED.merge(snapshot)
    VERIFIED.keep_news()


def _hand_on(batch):
    """A worker's batch, as it is, carrying the tars the worker found sound since its last
    batch (only those: a big shard set's record is not sent again with every tar)."""
    if isinstance(batch, dict):
        news = VERIFIED.take_news()
        if news:
            batch[_RECORD] = news
    return batch


@functools.cache
def _loader_class():
    import torch

    class Loader(torch.utils.data.DataLoader):
        """A DataLoader whose iterators take its workers' records of verified tars in."""

        def __iter__(self):
            it = super().__iter__()  # started now (workers forked), as torch's own
            return it if self.num_workers == 0 else _Merging(it)

    return Loader


class _Merging:
    """A loader iterator's batches, with the record a worker sent along merged into VERIFIED."""

    def __init__(self, it):
        self.it = it

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.it)
        if isinstance(batch, dict) and _RECORD in batch:
            VERIFIED.merge(batch.pop(_RECORD))
        return batch

    def __len__(self):
        return len(self.it)


def dataset(
    source,
    split: str | None = None,
    crop_frames: int | None = None,
    shuffle: int = 0,
    seed: int = 0,
    resampled: bool = False,
    skip_corrupt: bool = False,
    fields=None,
):
    """The webdataset pipeline of checked samples (unbatched) carrying `fields` (default: all
    of FIELDS), split by node and worker. Its `.check` (ShardCheck) counts what skip_corrupt
    skipped."""
    import webdataset as wds

    urls = shard_urls(source, split)
    ds = open_shards(
        urls,
        skip_corrupt,
        fields=fields,
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
    fields=None,
):
    """A torch DataLoader yielding padded batches:
    {"key": [B], "pose": [B,T,14,2], "conf": [B,T,14], "mel": [B,80,T], "amp": [B,T],
     "mask": [B,T] bool, "length": [B], "meta": [B] dicts (meta.json: labels, source...)};
    with `fields` (some of FIELDS) only those of pose, conf, mel, amp and meta, and only
    their members are read from the tars (see the module's docstring).

    Damaged shards raise ShardError (one line: tar, sample, member); with skip_corrupt the
    damaged samples are skipped, logged at the end of each pass and counted on `.check`
    (ShardCheck: skipped, damaged_tars, damage; in this process, so with num_workers=0)."""
    ds = dataset(source, split, crop_frames, shuffle, seed, resampled, skip_corrupt, fields)
    dl = torch_loader(ds.batched(batch_size, collation_fn=collate, partial=True), num_workers)
    dl.check = ds.check
    return dl
