"""Names of a recipe's inputs: labels from AIST sequence names, and exclusion lists of
sequence names (AIST++'s ignore_list.txt)."""

from __future__ import annotations

import re
from pathlib import Path

from momu_data.media import find_videos
from momu_data.pose.importers import find_keypoint_items
from momu_data.pose.importers.aistpp import parse_aist_name


def candidate_stems(pose_source: str, inputs) -> list[str]:
    """The names (file or folder stems) of the inputs a pose source finds under inputs."""
    if pose_source == "mediapipe":
        return [v.stem for v, _ in find_videos(inputs)]
    return [Path(p).name if Path(p).is_dir() else Path(p).stem for p in find_keypoint_items(pose_source, inputs)]


def aist_metadata(stems) -> dict[str, dict]:
    """Labels from AIST sequence names: {stem: {genre, dancer, music, choreo}}; names that
    do not follow the convention get none."""
    out = {}
    for s in stems:
        try:
            m = parse_aist_name(s)
        except ValueError:
            continue
        out[s] = {k: m[k] for k in ("genre", "dancer", "music", "choreo")}
    return out


def read_name_list(path) -> set[str]:
    """Names, one per line; blank lines and # comments ignored; extensions dropped."""
    names = set()
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.sub(r"\.(pkl|mp4|json|npy|npz|wav)$", "", Path(line).name))
    return names


def is_excluded(item_id: str, names: set[str]) -> bool:
    """An item is excluded when its id is listed, or (AIST names) its sequence with the
    camera replaced by cAll is: AIST++'s ignore_list.txt names sequences, not views."""
    if item_id in names:
        return True
    return re.sub(r"_c\d{2}_", "_cAll_", item_id) in names
