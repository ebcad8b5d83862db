"""The classifier-free guidance scale a trained diffusion run samples with unless told.

The paper leaves the scale open ("to balance the diversity and quality"). A run starts at
DEFAULT_GUIDANCE; `momu-eval guidance` measures the beat F1 of guided samples at several
scales on a split the models never trained on (val) and records the best scale in the run's
folder (GUIDANCE_FILE). `momu-generate`, `MoMuPipeline` and `momu-eval heldout` then use it
when no scale is given. The record names the weights it was chosen for (their sha256): a
run trained again into the same folder falls back to DEFAULT_GUIDANCE, with a warning,
until it is tuned again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from momu_data import io

log = logging.getLogger(__name__)

DEFAULT_GUIDANCE = 3.0
GUIDANCE_FILE = "guidance.json"
WEIGHTS = "model.safetensors"


def weights_digest(run_dir) -> str:
    """sha256 of a run's weights (what a guidance record was chosen for)."""
    h = hashlib.sha256()
    with open(Path(run_dir) / WEIGHTS, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def choose_scale(f1: dict[float, float]) -> float:
    """The scale with the highest score; a tie goes to the smaller scale (less guidance keeps
    more of the samples' diversity)."""
    if not f1:
        raise ValueError("no scores to choose a guidance scale from")
    return min(f1, key=lambda s: (-f1[s], s))


def save_guidance(run_dir, scale: float, chosen_on: dict, scores: dict[float, float]) -> Path:
    """Record `scale` as the run's guidance (atomically), with what it was chosen on and the
    score of every scale tried."""
    path = Path(run_dir) / GUIDANCE_FILE
    record = {
        "guidance": float(scale),
        "weights_sha256": weights_digest(run_dir),
        "chosen_on": chosen_on,
        "f1": {f"{s:g}": round(float(v), 3) for s, v in sorted(scores.items())},
    }
    io.write_json(path, record)
    return path


def tuned_guidance(run_dir) -> float | None:
    """The scale recorded for a run's current weights, or None (no record, an unreadable one,
    or one chosen for other weights: then a warning says so)."""
    path = Path(run_dir) / GUIDANCE_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        scale, digest = float(record["guidance"]), str(record["weights_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("%s is unreadable (%s): using guidance %g", path, e, DEFAULT_GUIDANCE)
        return None
    if digest != weights_digest(run_dir):
        log.warning(
            "%s was chosen for other weights (the run was trained again): using guidance %g until "
            "`momu-eval guidance` tunes it again",
            path,
            DEFAULT_GUIDANCE,
        )
        return None
    return scale
