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
        spec = (dtype, shape, "F" if fortran else "C")
        if len(_npy_headers) < 256:
            _npy_headers[header] = spec
    dtype, shape, order = spec
    count = math.prod(shape)
    if len(data) - end != count * dtype.itemsize:
        raise ValueError(f"array data of {len(data) - end} bytes, the header says {count * dtype.itemsize}")
    a = np.frombuffer(data, dtype, count, end).reshape(shape, order=order)
    return a if a.flags.writeable else a.copy()


def _check_values(url: str, key: str, out: dict, meta: dict) -> None:
    """Raise ShardError if the arrays' shapes disagree or a value cannot come from extraction
    (the arrays of `out` that are there; meta: the clip's meta.json, for the frame size)."""

    def bad(member, reason):
        raise _damage(Damage(url, key, member, reason))

    arrays = [f for f in FRAME_SHAPES if f in out]
    if not arrays:
        return
    ref = arrays[0]  # frames: counted on pose when it is there
    x, want = out[ref], FRAME_SHAPES[ref]
    T = x.shape[want.index("T")] if x.ndim == len(want) else -1
    shape = lambda f: [T if d == "T" else d for d in FRAME_SHAPES[f]]  # noqa: E731
    if T < 1:
        bad(FIELDS[ref], f"shape {list(x.shape)}, expected [{', '.join(map(str, want))}] with T >= 1")
    for f in arrays:
        if list(out[f].shape) != shape(f):
            bad(FIELDS[f], f"shape {list(out[f].shape)}, expected {shape(f)} (as {FIELDS[ref]})")
    # One min and one max per array serve every value check: NaN propagates through both and
    # inf reaches one, so they are finite only if all values are.
    lo = {f: float(out[f].min()) for f in arrays}
    hi = {f: float(out[f].max()) for f in arrays}
    for f in arrays:
        if not (math.isfinite(lo[f]) and math.isfinite(hi[f])):
            bad(FIELDS[f], f"{int(np.size(out[f]) - np.isfinite(out[f]).sum())} non-finite values (NaN or inf)")
    if "mel" in out:
        if lo["mel"] < MEL_FLOOR - 1e-3 or hi["mel"] > MEL_CEILING + MEL_MARGIN:
            possible = f"[{MEL_FLOOR:.2f}, {MEL_CEILING:.2f}]"
            bad("mel.npy", f"log-mel in [{lo['mel']:.4g}, {hi['mel']:.4g}], outside the possible {possible}")
    if "amp" in out:
        if lo["amp"] < -1e-3 or hi["amp"] > 1 + 1e-3:
            bad("amp.npy", f"amplitude in [{lo['amp']:.4g}, {hi['amp']:.4g}], outside [0, 1]")
    if "pose" in out:
        _check_pose(out["pose"], lo["pose"], hi["pose"], meta, bad)


def _check_pose(pose: np.ndarray, lo: float, hi: float, meta: dict, bad) -> None:
    """Joints far outside the clip's frame (or, without a frame size, far from the centre);
    lo, hi: the smallest and largest coordinate of any joint (torso units)."""
    centre, scale, w, h = (meta.get(k) for k in ("centre", "scale", "width", "height"))
    try:
        frame = np.asarray(centre, float).reshape(2), float(scale), float(w), float(h)
    except (TypeError, ValueError):
        frame = None
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
    `arrays` decodes and checks the values (to_arrays) of `fields` (None: all; `members`:
    the tar members read for them, see members_of). Without skip_corrupt the first
    problem raises ShardError; with it the damaged samples are dropped and counted:
    `skipped` (samples), `damaged_tars`, `damage` (the first `keep` problems; None keeps
    all), and (warn) a warning is logged at the end of each pass. Counts live in the process
    that reads: with DataLoader workers each worker logs its own."""

    def __init__(
        self,
        urls,
        skip_corrupt: bool = False,
        expected: dict | None = None,
        keep: int | None = 100,
        warn: bool = True,
        fields=None,
    ):
        self.urls = [str(u) for u in urls]
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
            return to_arrays(sample, self.fields)
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
    ds.append(_TarStage(check.tar_error, check.members))
    if empty_check:
        ds.append(_not_empty)
    ds = ds.compose(check.raw)
    ds.check = check
    return ds


class _TarStage:
    """Pipeline stage: opened tars ({"url", "stream"}) -> their samples (TarSamples), errors
    to `handler` with the URL appended to their args (as webdataset's reader does); the
    sample an error broke off is passed on after it, so the checks name its missing members."""

    def __init__(self, handler, members):
        self.handler, self.members = handler, members

    def __call__(self, sources):
        from momu_data.tar_reader import TarSamples

        for source in sources:
            url, stream = source["url"], source["stream"]
            reader = TarSamples(stream, url, self.members)
            go_on = True
            try:
                yield from reader
            except Exception as exn:
                exn.args = (*exn.args, url)
                go_on = self.handler(exn)
                if reader.partial is not None:
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
    lengths = np.array([frames_of(s) for s in samples])
    T = int(lengths.max())
    out = {"key": [s["key"] for s in samples]}
    for f, shape in FRAME_SHAPES.items():
        if f not in first:
            continue
        batch = np.empty((B, *[T if d == "T" else d for d in shape]), np.float32)
        pad = MEL_FLOOR if f == "mel" else 0.0
        for i, s in enumerate(samples):
            n = lengths[i]
            if f == "mel":
                batch[i, :, :n] = s[f]
                batch[i, :, n:] = pad
            else:
                batch[i, :n] = s[f]
                batch[i, n:] = pad
        out[f] = torch.from_numpy(batch)
    mask = np.arange(T)[None, :] < lengths[:, None]
    out["mask"] = torch.from_numpy(mask)
    out["length"] = torch.from_numpy(lengths.astype(np.int64))
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
    ready; None: torch's default, 2) only apply with num_workers > 0."""
    import torch

    workers = num_workers > 0
    return torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        collate_fn=_as_is,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and workers,
        prefetch_factor=prefetch_factor if workers else None,
    )


def _as_is(batch):
    return batch


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
