"""Generation lengths as the user writes them: "30s", "1:30", "750", "750f" -> frames."""

from __future__ import annotations

import math
import re

_LENGTH_HELP = "use frames ('750' or '750f'), seconds ('30s', '2.5s') or [h:]mm:ss ('1:30', '0:07.5')"


def parse_length(spec: str | int, fps: float) -> int:
    """A generation length as frames. fps: frames per second (latent or mel frames).

    "750" or "750f": frames; "30s" / "2.5s": seconds; "1:30", "01:30.5", "1:02:03": clock
    time (minutes and seconds fields below 60). Seconds are rounded to the nearest frame,
    halves up (Python's round() would send 37.5 and 38.5 frames both to 38).
    """
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    if isinstance(spec, bool) or not isinstance(spec, (int, str)):
        raise ValueError(f"length must be a string or an int, got {spec!r}")
    if isinstance(spec, int):
        if spec < 1:
            raise ValueError(f"length must be at least 1 frame, got {spec}")
        return spec
    s = spec.strip().lower()
    if not s:
        raise ValueError(f"empty length; {_LENGTH_HELP}")
    if m := re.fullmatch(r"(\d+)\s*f?", s):
        frames = int(m.group(1))
        if frames < 1:
            raise ValueError(f"length must be at least 1 frame, got {spec!r}")
        return frames
    if re.fullmatch(r"\d*\.\d*", s):
        raise ValueError(f"{spec!r}: frames must be whole; for seconds write '{s}s'")
    if m := re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*s", s):
        seconds = float(m.group(1))
    elif m := re.fullmatch(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)", s):
        hours, minutes, secs = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
        if secs >= 60 or (m.group(1) is not None and minutes >= 60):
            raise ValueError(f"{spec!r}: minutes and seconds fields must be below 60")
        seconds = 3600 * hours + 60 * minutes + secs
    else:
        raise ValueError(f"cannot parse length {spec!r}; {_LENGTH_HELP}")
    frames = int(math.floor(seconds * fps + 0.5))
    if frames < 1:
        raise ValueError(f"length {spec!r} is under one frame at {fps} frames/s")
    return frames
