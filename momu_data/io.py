"""Atomic file writes: write to a temporary name in the same folder, then rename.

A run killed at any point (even kill -9) leaves either the old file or the complete new
one, never a half-written file that a rerun would take for finished.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary path to write; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last so libraries that pick a format by suffix still do.
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def to_jsonable(x, nan_to_null: bool = False):
    """x with numpy scalars/arrays as Python numbers/lists, tuples as lists and paths as
    strings, recursively: what json.dumps writes and json.loads gives back. nan_to_null:
    non-finite floats become None (strict JSON has no NaN; e.g. the CSD of a single pair)."""
    import numpy as np

    if isinstance(x, dict):
        return {k: to_jsonable(v, nan_to_null) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v, nan_to_null) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist(), nan_to_null)
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, Path):
        return str(x)
    if nan_to_null and isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(path, obj, indent: int = 1, nan_to_null: bool = False) -> None:
    """Write obj as JSON to path atomically (see to_jsonable for what it converts)."""
    text = json.dumps(to_jsonable(obj, nan_to_null), indent=indent, allow_nan=not nan_to_null)
    with atomic_path(path) as tmp:
        tmp.write_text(text + ("\n" if nan_to_null else ""))


def write_bytes(path, data) -> None:
    """Write bytes atomically. Build a file in memory (np.savez, soundfile into io.BytesIO)
    and write it with this: a full disk then fails here with a plain OSError, never inside
    a half-written zip or FLAC encoder (whose clean-up raises again at exit)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


# errno values that say the machine, not the input, is at fault (full disk, permissions,
# read-only file system, I/O errors): the same work succeeds once the user fixes it.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO})


def environment_error(exc: BaseException | None) -> OSError | None:
    """The OSError with an ENVIRONMENT_ERRNOS errno in exc or its causes, else None. An
    OSError without an errno (pyarrow's) counts when its message names one."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            if exc.errno in ENVIRONMENT_ERRNOS:
                return exc
            if exc.errno is None:
                for n in ENVIRONMENT_ERRNOS:
                    if f"[Errno {n}]" in str(exc) or os.strerror(n) in str(exc):
                        return OSError(n, os.strerror(n), getattr(exc, "filename", None))
        exc = exc.__cause__ or exc.__context__
    return None


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def clean_stale_temps(folder) -> int:
    """Remove temporary files left by a killed run; returns how many."""
    n = 0
    for p in Path(folder).glob(".tmp-*"):
        p.unlink(missing_ok=True)
        n += 1
    return n
