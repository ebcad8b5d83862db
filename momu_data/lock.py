"""One run at a time per output folder: an advisory lock on `FOLDER/.lock`.

Two extractions writing the same items, checkpoints and manifests at once would redo each
other's jobs and race on the manifests, so the second one is refused with a one-line
message naming the holder. The lock is an `fcntl.flock` on an open file, held for the run's
life: the kernel releases it when the process ends, however it ends (kill -9 included), so a
killed run never leaves the folder locked; the file itself stays (it is empty but for the
holder's pid, and hidden, so the recipe stamps do not count it as content).
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".lock"


class FolderLocked(RuntimeError):
    """Another live process holds the folder's lock; the message is one line naming it."""


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


@contextmanager
def folder_lock(folder, what: str = "run"):
    """Hold FOLDER/.lock for the block, or raise FolderLocked at once when another process
    holds it. The folder is created if needed. Re-entering in the process that holds it
    raises as well (a lock is held per open file, not per process)."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise FolderLocked(
                f"{folder} is in use by {_holder(path)} (another {what} on it is running): wait for it to finish,"
                " or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # no stale pid for the next reader; the lock itself goes with the fd
    finally:
        os.close(fd)
