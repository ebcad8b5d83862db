"""Keep the C++ log lines of mediapipe and TensorFlow Lite off the user's terminal.

mediapipe's graphs log through absl, which writes to the process's stderr file descriptor
from its own threads before any logging is set up ("WARNING: All log messages before
absl::InitializeLog() ..."), and ignores GLOG_minloglevel; TensorFlow Lite prints "INFO:
Created TensorFlow Lite XNNPACK delegate". Every tracker a video starts repeats them, on
every run. Python cannot reach absl's log level, so while pose models run (quiet_native_logs)
file descriptor 2 goes through a pipe: a thread forwards everything to the real stderr at
once, except complete lines in those formats (NATIVE_LINE). Output that is not such a line
(a progress bar, a traceback) passes unchanged and in order.

`--verbose` (or MOMU_NATIVE_LOGS=1 in the environment, which worker processes inherit)
leaves stderr alone.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager

ENV = "MOMU_NATIVE_LOGS"
# absl / glog: "W0000 00:00:1796008611.350703   27131 file.cc:114] message"; TFLite's INFO.
NATIVE_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU)"
)
_STARTS = (b"WARNING: ", b"INFO: ")
_lock = threading.Lock()
_active = 0  # nesting depth in this process (threads share file descriptor 2)
_saved: dict = {}


def native_logs_shown() -> bool:
    """Whether the native log lines are to be shown (--verbose, MOMU_NATIVE_LOGS=1)."""
    return os.environ.get(ENV, "") not in ("", "0")


def show_native_logs(show: bool = True) -> None:
    """Set MOMU_NATIVE_LOGS for this process and the workers it starts from now on."""
    if show:
        os.environ[ENV] = "1"
    else:
        os.environ.pop(ENV, None)


def drop_native_lines(data: bytes) -> bytes:
    """data (complete lines) without the native log lines."""
    return b"".join(line for line in data.splitlines(keepends=True) if not NATIVE_LINE.match(line))


def _may_become_native(tail: bytes) -> bool:
    """Whether a partial line could still become a native log line once its end arrives (it
    is held until then); anything else, a progress bar that has no newline, goes at once."""
    if re.match(rb"[IWEF]\d", tail) or tail[:1] in (b"I", b"W", b"E", b"F") and len(tail) == 1:
        return True
    return any(lit.startswith(tail) or tail.startswith(lit) for lit in _STARTS)


def _pump(read_fd: int, write_fd: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        head, sep, tail = pending.rpartition(b"\n")
        out = drop_native_lines(head + sep) if sep else b""
        if tail and not _may_become_native(tail):
            out, tail = out + tail, b""
        pending = tail
        _write_all(write_fd, out)
    _write_all(write_fd, drop_native_lines(pending) if pending.endswith(b"\n") else pending)
    os.close(read_fd)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except OSError:
            return  # the terminal went away: nothing to show it on
        data = data[n:]


@contextmanager
def quiet_native_logs(enabled: bool | None = None):
    """File descriptor 2 filtered of native log lines for the block (see the module's doc).
    enabled None: unless native_logs_shown(). Nested and concurrent uses in one process
    share one filter."""
    global _active
    if enabled is None:
        enabled = not native_logs_shown()
    if not enabled:
        yield
        return
    with _lock:
        if _active == 0:
            sys.stderr.flush()
            read_fd, write_fd = os.pipe()
            real = os.dup(2)
            os.dup2(write_fd, 2)
            os.close(write_fd)
            thread = threading.Thread(target=_pump, args=(read_fd, real), name="native-log-filter", daemon=True)
            thread.start()
            _saved.update(real=real, thread=thread)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                sys.stderr.flush()
                real, thread = _saved.pop("real"), _saved.pop("thread")
                os.dup2(real, 2)  # the pipe's last writer is gone: the thread drains it and ends
                thread.join(timeout=5)
                if not thread.is_alive():  # else a child still holds the pipe: the thread keeps real
                    os.close(real)
