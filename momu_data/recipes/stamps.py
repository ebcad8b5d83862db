"""Make-like fingerprints and digests for the recipe runner's up-to-date checks: a stage is
up to date when the digest of its settings and input fingerprints, and the fingerprint of its
outputs, are what its stamp (OUT/.stamps/STAGE.json) recorded."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

STAMPS = ".stamps"  # the folder of the stamps inside a recipe's output folder


def content_files(path) -> Iterator[Path]:
    """path itself if it is a file, else the files under it, sorted; hidden files and
    folders (temporary files of atomic writes, bookkeeping) are not content."""
    path = Path(path)
    if path.is_file():
        yield path
    elif path.is_dir():
        for f in sorted(path.rglob("*")):
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts):
                yield f


def fingerprint(paths, root: Path | None = None) -> str:
    """sha1 over (path, size, mtime) of every file under paths (make-like: a file that is
    rewritten or touched counts as changed; content checksums are the manifest's job)."""
    h = hashlib.sha1()
    for p in paths:
        p = Path(p)
        if not p.exists():
            h.update(f"missing:{p}".encode())
            continue
        for f in content_files(p):
            st = f.stat()
            rel = os.path.relpath(f, root) if root else str(f)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def digest(obj) -> str:
    """sha1 of a JSON-able value (keys sorted; anything else as its str)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def table_digest(path: Path) -> str:
    """Content digest of a parquet table (rows, not bytes: a rewrite of equal rows is equal)."""
    if not path.exists():
        return "missing"
    return digest(pq.read_table(path).to_pylist())
