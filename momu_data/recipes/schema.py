"""A recipe file: its schema (every section and key with its default), reading, checking and
`--set` overrides. See ``docs/recipes.md`` for what each key means."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from momu_data.extract import POSE_SOURCES
from momu_data.recipes.splits import LORIS_SUBSETS, PROTOCOLS
from momu_data.shards import GROUP_COLUMNS, parse_split

# Every section and key a recipe may have, with its default. None: no default (the key is
# optional). A key whose default is a number or text must be given with that type.
SCHEMA: dict[str, dict] = {
    "recipe": {"name": "", "dataset": "", "description": "", "out": ""},
    # path: the local raw data (relative paths are taken from the working directory).
    # url: where to download it on a machine with internet; never fetched by momu-data.
    # inputs: sub-folders (or files) of path with the pose inputs; [] = path itself.
    # exclude_list: a text file (in path) of sequence names to leave out, one per line.
    "source": {"path": "", "url": "", "inputs": [], "exclude_list": ""},
    "synth": {"n": 20, "seconds": 12.0, "seed": 0},
    "pose": {
        "source": "mediapipe",
        "cameras": "all",
        "fps": None,
        "views": "fixed",
        "time_scale": "none",
        "time_offset": "none",
        "conf_threshold": 0.5,
        "max_side": 640,
        "bins": 8,
    },
    # path: an audio file or folder in the source, matched by stem or music id; "" = the
    # input's own audio (videos; dance_with_melody: audio.mp3 in each dance folder).
    "audio": {"path": ""},
    # from_names = "aist": genre / dancer / music / choreography ids from AIST sequence
    # names; metadata: a CSV (id or stem + genre, music, dancer, style, choreo) in the source.
    "labels": {"from_names": "", "metadata": ""},
    # seconds: the clip length; unset, the split protocol's (loris, random: 25 s), else 10 s.
    "clips": {"seconds": 10.0, "hop": None, "min_seconds": None, "max_interp": 0.3, "max_no_person": 0.2},
    # protocol: "" = ratios over groups of group_by (video, music, dancer, clip); "random" (the
    # paper's 90/5/5 over clips), "loris" or "crossmodal" (published lists, recipes/splits.py);
    # lists: the folder of the protocol's list files ("" = manifests/splits/<protocol>);
    # subset: LORIS's (dance_s25, fe_s25, fe_s50, fs_s25, fs_s50), for protocol loris.
    "split": {"ratios": "90/5/5", "group_by": "video", "seed": 0, "protocol": "", "lists": "", "subset": "dance_s25"},
    "shards": {"size": 1000},
    # label: the manifest column that is the item's class label; columns: extra per-item
    # values of the extraction records to list; checksums: sha256 of each input file
    # (for public data); reference: a checked-in manifest to compare the result with.
    "manifest": {"label": "", "columns": [], "checksums": False, "reference": ""},
    # beats: ground-truth beat scores (kinematic beats of the real motion vs the music's
    # onsets, per clip); compare: variants whose data are also extracted and scored, each an
    # override ("pose.time_scale=fit") or a list of them; tolerance: also score with
    # +-tolerance s one-to-one matching.
    "report": {"beats": True, "compare": [], "tolerance": None, "bin_seconds": 1.0},
    "run": {"jobs": -1, "backend": "joblib", "scheduler": ""},
}
# [[train]] entries: model and its trainer's settings (checked by `momu-train` against the
# trainer's config). A diffusion entry uses the recipe's VAE run unless it names one (vae = PATH).
TRAIN_MODELS = ("vae", "diffusion")


class RecipeError(ValueError):
    """A recipe that cannot be run as written (unknown key, bad value, missing data)."""


@dataclass
class Recipe:
    path: Path
    data: dict  # every section of SCHEMA with defaults filled in, plus "train": [...]
    raw: dict = field(default_factory=dict)  # the file as written, before overrides
    overrides: list = field(default_factory=list)

    def with_overrides(self, specs) -> Recipe:
        return parse_recipe(self.raw, self.path, [*self.overrides, *specs])

    def __getitem__(self, section: str) -> dict:
        return self.data[section]

    @property
    def name(self) -> str:
        return self.data["recipe"]["name"]

    def has(self, section: str) -> bool:
        return section in self.data.get("_given", ())

    def sets(self, section: str, key: str) -> bool:
        """Whether the recipe (file or overrides) gives `key` of `section` itself."""
        return key in self.data.get("_keys", {}).get(section, ())


def train_run_dir(t: dict) -> str:
    """A [[train]] entry's run folder as written (relative: inside OUT): its run_dir, else
    runs/vae or runs/<task>, the folders `momu-train` and `momu-generate` use by default."""
    if t.get("run_dir"):
        return str(t["run_dir"])
    return "runs/vae" if t.get("model") == "vae" else f"runs/{t.get('task', 'motion2music')}"


def _parse_value(text: str):
    """A --set value as TOML (numbers, booleans, "strings", [lists]); bare words are text."""
    import tomllib  # Python 3.11+: imported where used, so the rest of momu-data runs on 3.10

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(raw: dict, spec: str) -> None:
    """Apply "section.key=value" (or "train.0.steps=10" for a [[train]] entry) in place."""
    if "=" not in spec:
        raise RecipeError(f"--set expects SECTION.KEY=VALUE, got {spec!r}")
    key, text = spec.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) < 2:
        raise RecipeError(f"--set expects SECTION.KEY=VALUE, got {spec!r}")
    node = raw
    for p in parts[:-1]:
        if isinstance(node, list):
            try:
                node = node[int(p)]
            except (ValueError, IndexError):
                raise RecipeError(f"--set {spec}: no entry {p} in [[{parts[0]}]]") from None
        else:
            node = node.setdefault(p, {})
    node[parts[-1]] = _parse_value(text.strip())


def _check_section(name: str, given: dict, schema: dict) -> dict:
    unknown = sorted(set(given) - set(schema))
    if unknown:
        raise RecipeError(f"[{name}]: unknown key(s) {', '.join(unknown)}; known: {', '.join(schema)}")
    out = dict(schema)
    for k, v in given.items():
        d = schema[k]
        ok = (
            d is None
            or isinstance(v, type(d))
            or (isinstance(d, float) and isinstance(v, int) and not isinstance(v, bool))
        )
        if isinstance(d, bool) != isinstance(v, bool) and d is not None:
            ok = False
        if not ok:
            raise RecipeError(f"[{name}] {k} = {v!r}: expected {type(d).__name__}")
        out[k] = float(v) if isinstance(d, float) else v
    return out


def parse_recipe(raw: dict, path: Path = Path("recipe.toml"), overrides=()) -> Recipe:
    """Check a recipe dict against SCHEMA and fill in the defaults."""
    written = copy.deepcopy(raw)
    raw = copy.deepcopy(raw)
    for spec in overrides:
        apply_override(raw, spec)
    unknown = sorted(set(raw) - set(SCHEMA) - {"train"})
    if unknown:
        raise RecipeError(f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join([*SCHEMA, 'train'])}")
    data = {s: _check_section(s, raw.get(s, {}), SCHEMA[s]) for s in SCHEMA}
    data["_given"] = sorted(raw)
    data["_keys"] = {s: sorted(raw[s]) for s in SCHEMA if isinstance(raw.get(s), dict)}
    if not data["recipe"]["name"]:
        raise RecipeError(f"{path}: [recipe] name is required")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", data["recipe"]["name"]):
        raise RecipeError(f"{path}: [recipe] name must be letters, digits, - and _")
    if data["pose"]["source"] not in POSE_SOURCES:
        raise RecipeError(f"[pose] source must be one of {', '.join(POSE_SOURCES)}")
    if data["split"]["group_by"] not in GROUP_COLUMNS:
        raise RecipeError(f"[split] group_by must be one of {', '.join(GROUP_COLUMNS)}")
    try:
        parse_split(data["split"]["ratios"])
    except ValueError as e:
        raise RecipeError(f"[split] ratios: {e}") from None
    if data["split"]["protocol"] not in PROTOCOLS:
        named = ", ".join(f'"{p}"' for p in PROTOCOLS if p)
        raise RecipeError(f'[split] protocol must be "" (ratios over group_by) or one of {named}')
    if data["split"]["subset"] not in LORIS_SUBSETS:
        raise RecipeError(f"[split] subset must be one of {', '.join(LORIS_SUBSETS)} (LORIS's)")
    if data["labels"]["from_names"] not in ("", "aist"):
        raise RecipeError('[labels] from_names must be "aist" or empty')
    if data["run"]["backend"] not in ("joblib", "dask"):
        raise RecipeError("[run] backend must be joblib or dask")
    train = raw.get("train", [])
    if isinstance(train, dict):
        train = [train]
    if not isinstance(train, list) or not all(isinstance(t, dict) for t in train):
        raise RecipeError("[[train]] must be a list of tables")
    for t in train:
        if t.get("model") not in TRAIN_MODELS:
            raise RecipeError(f"[[train]] model must be one of {', '.join(TRAIN_MODELS)}, got {t.get('model')!r}")
    dirs = [train_run_dir(t) for t in train]
    if len(set(dirs)) < len(dirs):
        raise RecipeError(f"[[train]] entries share a run folder ({', '.join(dirs)}): give each its own run_dir")
    data["train"] = train
    for spec in data["report"]["compare"]:
        specs = spec if isinstance(spec, list) else [spec]
        if not specs or not all(isinstance(x, str) and "=" in x for x in specs):
            raise RecipeError(
                f'[report] compare entries look like "pose.time_scale=fit" or a list of those, got {spec!r}'
            )
    return Recipe(Path(path), data, written, list(overrides))


def load_recipe(path, overrides=()) -> Recipe:
    """Read a recipe file (TOML), apply the overrides ("section.key=value") and check it."""
    import tomllib  # Python 3.11+ (see _parse_value)

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"no such recipe: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e}") from None
    return parse_recipe(raw, path, overrides)
