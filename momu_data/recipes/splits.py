"""A recipe's split protocol (`[split] protocol`): how clips go to train / val / test.

    ""            the recipe's own rule: `ratios` over groups of `group_by` (video, music,
                  dancer or clip), seeded; aistpp.toml groups by music.
    "random"      the paper's words (appendix B.1): each dataset "randomly split with a
                  90%/5%/5% proportion", i.e. 90/5/5 over clips, seeded by `seed`.
    "loris"       the LORIS benchmark the paper's motion-to-music tables use (`subset`
                  dance_s25 by default: its AIST++ list of 1,692 train / 189 test 25 s segments,
                  one per sequence and camera; fe_s25, fe_s50, fs_s25, fs_s50: floor exercise and
                  figure skating, items named as LORIS's segment files). LORIS has no val list;
                  the paper's 90/5/5 of 1,881 videos is 1,692 / 94 / 95, so its test list is
                  halved (seeded) into val and test. Clips are the subset's 25 s or 50 s and each
                  listed item gives its first usable clip (which 25 s LORIS cut from an AIST++
                  sequence is not in its lists).
    "crossmodal"  AIST++'s cross-modal split as FACT, Bailando and EDGE use it: whole sequences
                  (every camera) of crossmodal_train.txt / crossmodal_test.txt, minus its
                  ignore_list.txt; val from crossmodal_val.txt when the lists folder has one.

The lists are checked in under manifests/splits/ (see its README for their source and
licence); `[split] lists` names another folder. Items are matched by AIST sequence name, so the
protocols apply to recipes with AIST++ names (pose.source aistpp, or AIST videos).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from momu_data.recipes.labels import read_name_list

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Protocol:
    name: str
    files: dict  # split -> list file in the protocol's folder (val: optional where noted)
    folder: str  # default lists folder
    clip_seconds: float | None = None  # the clip length the protocol implies (None: the recipe's)
    ratios: tuple | None = None  # "random": fixed ratios over clips
    ignore: str = ""  # a list of sequences the protocol leaves out (crossmodal: its ignore list)
    # whether the recipe's [source] exclude_list applies: LORIS's lists are the item set, and
    # they keep 19 sequences of AIST++'s ignore list (12 in train, 7 in test), so for "loris" not
    use_exclude_list: bool = True


PROTOCOLS = {
    "": Protocol("", {}, ""),
    "random": Protocol("random", {}, "", clip_seconds=25.0, ratios=(0.9, 0.05, 0.05)),
    "loris": Protocol(
        "loris",
        {"train": "{subset}_train_segment.txt", "test": "{subset}_test_segment.txt"},
        "manifests/splits/loris",
        clip_seconds=25.0,
        use_exclude_list=False,
    ),
    "crossmodal": Protocol(
        "crossmodal",
        {"train": "crossmodal_train.txt", "val": "crossmodal_val.txt", "test": "crossmodal_test.txt"},
        "manifests/splits/aistpp_crossmodal",
        ignore="ignore_list.txt",
    ),
}
OPTIONAL_FILES = {("crossmodal", "val")}  # EDGE ships no val list; AIST++'s own splits/ folder has one
# LORIS's subsets (`[split] subset` of protocol loris): clip seconds. Files: <kind>_audio_s<N>_<split>_segment.txt.
LORIS_SUBSETS = {"dance_s25": 25.0, "fe_s25": 25.0, "fe_s50": 50.0, "fs_s25": 25.0, "fs_s50": 50.0}


class SplitError(ValueError):
    """A split protocol that cannot be applied (unknown name, missing list file)."""


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise SplitError(f'[split] protocol must be one of "", {", ".join(repr(p) for p in PROTOCOLS if p)}')
    return PROTOCOLS[name]


def implied_clip_seconds(name: str, subset: str = "dance_s25") -> float | None:
    """The clip length a protocol implies (loris: its subset's), None for the recipe's own."""
    if name == "loris":
        return LORIS_SUBSETS[subset]
    return protocol(name).clip_seconds


def list_files(name: str, subset: str = "dance_s25") -> dict[str, str]:
    """{split: file name} of a protocol's lists (loris: of `subset`)."""
    if name == "loris" and subset not in LORIS_SUBSETS:
        raise SplitError(f"[split] subset must be one of {', '.join(LORIS_SUBSETS)} (LORIS's), not {subset!r}")
    kind, _, seconds = subset.partition("_")
    return {k: v.format(subset=f"{kind}_audio_{seconds}") for k, v in protocol(name).files.items()}


def sequence_name(item_id: str) -> str:
    """The AIST sequence (all cameras) of an item id: `gBR_sFM_cAll_d04_mBR0_ch01_c03` (an
    aistpp keypoint view), `gBR_sFM_c03_d04_mBR0_ch01` (an AIST video) and the sequence name
    itself all give `gBR_sFM_cAll_d04_mBR0_ch01`."""
    base = re.sub(r"_c\d{2}$", "", item_id)
    return re.sub(r"_c(\d{2}|All)_", "_cAll_", base)


def video_name(item_id: str) -> str:
    """The AIST video (one camera) of an item id, as LORIS names its segments:
    `gBR_sFM_cAll_d04_mBR0_ch01_c03` -> `gBR_sFM_c03_d04_mBR0_ch01`; video names pass through."""
    m = re.fullmatch(r"(.+)_cAll_(.+)_(c\d{2})", item_id)
    return f"{m[1]}_{m[3]}_{m[2]}" if m else item_id


def lists_folder(name: str, lists: str, recipe_path: Path | None = None) -> Path:
    """The folder of a protocol's lists: `lists` (or the protocol's default) as given, else
    relative to the repository the recipe file lives in (pipelines/NAME.toml -> ..)."""
    p = Path(lists or protocol(name).folder)
    if p.is_absolute() or p.is_dir() or recipe_path is None:
        return p
    beside = Path(recipe_path).resolve().parent.parent / p
    return beside if beside.is_dir() else p


def read_lists(name: str, folder: Path, subset: str = "dance_s25") -> dict[str, set[str]]:
    """{split: names} of a protocol's list files (extensions and folders dropped), plus
    "ignore" for a protocol with an ignore list."""
    proto = protocol(name)
    out: dict[str, set[str]] = {}
    for split, file in [*list_files(name, subset).items(), *([("ignore", proto.ignore)] if proto.ignore else [])]:
        path = Path(folder) / file
        if not path.is_file():
            if (name, split) in OPTIONAL_FILES:
                out[split] = set()
                continue
            raise SplitError(f"[split] protocol {name}: list file {path} not found (see manifests/splits/README.md)")
        out[split] = read_name_list(path)
    return out


def listed_sequences(name: str, lists: dict[str, set[str]]) -> set[str]:
    """The AIST sequences a protocol's lists use (for extracting only those)."""
    names = set().union(*(lists[s] for s in SPLIT_NAMES if s in lists))
    return {sequence_name(n) for n in names} - lists.get("ignore", set())


def assign(name: str, clips: list[dict], lists: dict[str, set[str]], seed: int = 0) -> tuple[dict, dict]:
    """A fixed split for a list protocol: ({clip key: split}, report).

    clips: rows of clips.parquet (key, video, job, frame_start, status); only "ok" clips are
    assigned. loris: the first usable clip of each listed item (an AIST++ view by its video
    name, another item by its id); its test list halved
    into val and test by a permutation seeded with `seed`. crossmodal: every clip of the listed
    sequences that are not in the ignore list. report: counts per split and the listed names
    not found in the data."""
    ok = [c for c in clips if c.get("status", "ok") == "ok"]
    split_of: dict[str, str] = {}
    if name == "loris":
        first: dict[str, dict] = {}
        for c in ok:
            v = video_name(c["video"])
            if v not in first or c["frame_start"] < first[v]["frame_start"]:
                first[v] = c
        test = sorted(lists["test"])
        order = np.random.default_rng(seed).permutation(len(test))
        val = {test[i] for i in order[: len(test) // 2]}
        for v, c in first.items():
            if v in lists["train"]:
                split_of[c["key"]] = "train"
            elif v in lists["test"]:
                split_of[c["key"]] = "val" if v in val else "test"
        found = set(first)
        missing = sorted((lists["train"] | lists["test"]) - found)
    elif name == "crossmodal":
        ignored = lists.get("ignore", set())
        seq_split = {}
        for split in SPLIT_NAMES:
            for s in lists.get(split, ()):
                if sequence_name(s) not in ignored:
                    seq_split[sequence_name(s)] = split
        found = set()
        for c in ok:
            s = sequence_name(c["job"])
            if s in seq_split:
                split_of[c["key"]] = seq_split[s]
                found.add(s)
        missing = sorted(set(seq_split) - found)
    else:
        raise SplitError(f"protocol {name!r} has no split lists")
    counts = {s: sum(v == s for v in split_of.values()) for s in SPLIT_NAMES}
    return split_of, {"clips": counts, "missing": missing}
