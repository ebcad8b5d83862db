"""Declarative dataset recipes: one TOML file per dataset (``pipelines/*.toml``), run as a
chain of stages that skip themselves when their outputs are up to date.

A recipe names where the raw data is, how to read poses and audio, clip length and hop,
the split and its grouping, the shard size, and the models to train; see
``docs/recipes.md`` for every key. ``momu-data run pipelines/NAME.toml`` runs

    synth (only with a [synth] table) -> extract -> shard -> manifest
      -> extract[VARIANT]... -> report (only with [report]) -> train (only with --train)

through the same functions the single-step commands use (``build_jobs``, ``run_job`` over
``parallel.map_unordered``, ``compile_manifests``, ``write_shards``, the VAE and diffusion
trainers).

Up-to-date skipping (make-like): each stage hashes its settings and a fingerprint of its
inputs (relative path, size and modification time of every input file) into a key, and
writes ``OUT/.stamps/STAGE.json`` with the key and a fingerprint of its outputs when it
finishes. A stage is skipped when its stamp has the same key and its outputs are still
exactly as it left them. Extraction goes further: the stamp keeps one fingerprint per input,
so after a change only the changed inputs are re-extracted and inputs that disappeared are
removed from the data (the rest is extract's own resume).
"""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from momu_data.io import atomic_path, sha256_file, write_json

STAMPS = ".stamps"

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
    "pose": {"source": "mediapipe", "cameras": "all", "fps": None, "views": "fixed", "time_scale": "none",
             "time_offset": "none", "conf_threshold": 0.5, "max_side": 640, "bins": 8},
    # path: an audio file or folder in the source, matched by stem or music id; "" = the
    # input's own audio (videos; dance_with_melody: audio.mp3 in each dance folder).
    "audio": {"path": ""},
    # from_names = "aist": genre / dancer / music / choreography ids from AIST sequence
    # names; metadata: a CSV (id or stem + genre, music, dancer, style, choreo) in the source.
    "labels": {"from_names": "", "metadata": ""},
    "clips": {"seconds": 10.0, "hop": None, "min_seconds": None, "max_interp": 0.3, "max_no_person": 0.2},
    "split": {"ratios": "90/5/5", "group_by": "video", "seed": 0},
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
# [[train]] entries: model and its trainer's settings (checked against the trainer's config
# dataclass). A diffusion entry uses the recipe's VAE run unless it names one (vae = PATH).
TRAIN_MODELS = ("vae", "diffusion")


class RecipeError(ValueError):
    """A recipe that cannot be run as written (unknown key, bad value, missing data)."""


# --------------------------------------------------------------------------- the recipe

@dataclass
class Recipe:
    path: Path
    data: dict  # every section of SCHEMA with defaults filled in, plus "train": [...]
    raw: dict = field(default_factory=dict)  # the file as written, before overrides
    overrides: list = field(default_factory=list)

    def with_overrides(self, specs) -> "Recipe":
        return parse_recipe(self.raw, self.path, [*self.overrides, *specs])

    def __getitem__(self, section: str) -> dict:
        return self.data[section]

    @property
    def name(self) -> str:
        return self.data["recipe"]["name"]

    def has(self, section: str) -> bool:
        return section in self.data.get("_given", ())


def _parse_value(text: str):
    """A --set value as TOML (numbers, booleans, "strings", [lists]); bare words are text."""
    import tomllib

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
        ok = (d is None or isinstance(v, type(d)) or (isinstance(d, float) and isinstance(v, int) and not isinstance(v, bool)))
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
    if not data["recipe"]["name"]:
        raise RecipeError(f"{path}: [recipe] name is required")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", data["recipe"]["name"]):
        raise RecipeError(f"{path}: [recipe] name must be letters, digits, - and _")
    from momu_data.extract import POSE_SOURCES
    from momu_data.shards import GROUP_COLUMNS, parse_split

    if data["pose"]["source"] not in POSE_SOURCES:
        raise RecipeError(f"[pose] source must be one of {', '.join(POSE_SOURCES)}")
    if data["split"]["group_by"] not in GROUP_COLUMNS:
        raise RecipeError(f"[split] group_by must be one of {', '.join(GROUP_COLUMNS)}")
    try:
        parse_split(data["split"]["ratios"])
    except ValueError as e:
        raise RecipeError(f"[split] ratios: {e}") from None
    if data["labels"]["from_names"] not in ("", "aist"):
        raise RecipeError("[labels] from_names must be \"aist\" or empty")
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
            raise RecipeError(f"[report] compare entries look like \"pose.time_scale=fit\" or a list of those, got {spec!r}")
    return Recipe(Path(path), data, written, list(overrides))


def load_recipe(path, overrides=()) -> Recipe:
    import tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"no such recipe: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e}") from None
    return parse_recipe(raw, path, overrides)


# ------------------------------------------------------------------------- fingerprints

def _files(path: Path):
    if path.is_file():
        yield path
    elif path.is_dir():
        for f in sorted(path.rglob("*")):
            # Temporary files of atomic writes and hidden bookkeeping are not content.
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
        for f in _files(p):
            st = f.stat()
            rel = os.path.relpath(f, root) if root else str(f)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _table_digest(path: Path) -> str:
    """Content digest of a parquet table (rows, not bytes: a rewrite of equal rows is equal)."""
    import pyarrow.parquet as pq

    if not path.exists():
        return "missing"
    return _digest(pq.read_table(path).to_pylist())


# ------------------------------------------------------------------------------ stages

@dataclass
class Stage:
    name: str
    settings: dict  # hashed into the key
    inputs: Callable[[], dict]  # called when the stage is reached: {name: fingerprint}
    outputs: list  # paths the stage owns; their fingerprint is checked on the next run
    run: Callable[[dict], dict]  # gets the previous stamp ({} if none), returns extra stamp fields
    enabled: bool = True
    why_disabled: str = ""


@dataclass
class StageResult:
    name: str
    status: str  # ran, skipped (up to date), disabled, pending (dry run)
    seconds: float = 0.0
    detail: str = ""


class Runner:
    """Runs the stages of one recipe into one output folder."""

    def __init__(self, recipe: Recipe, out=None, source=None, train: bool = False, jobs: int | None = None,
                 force=(), log: Callable[[str], None] = print):
        self.recipe = recipe
        r = recipe.data
        self.out = Path(out or r["recipe"]["out"] or Path("work") / recipe.name)
        self.synth = recipe.has("synth")
        src = source or r["source"]["path"]
        if not src and not self.synth:
            raise RecipeError(f"{recipe.path}: no data: set [source] path or pass --source DIR"
                              + (f" (download: {r['source']['url']})" if r["source"]["url"] else ""))
        self.source = Path(src) if src else self.out / "videos"
        self.train = train
        self.jobs = r["run"]["jobs"] if jobs is None else jobs
        self.force = set(force)
        self.log = log
        self.data = self.out / "data"
        self.shards = self.out / "shards"
        self.stamps = self.out / STAMPS

    # ---- bookkeeping
    def stamp_path(self, name: str) -> Path:
        return self.stamps / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", name) + ".json")

    def read_stamp(self, name: str) -> dict:
        try:
            return json.loads(self.stamp_path(name).read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def _key(self, stage: Stage, inputs: dict) -> str:
        return _digest({"stage": stage.name, "settings": stage.settings, "inputs": inputs})

    def up_to_date(self, stage: Stage, inputs: dict) -> bool:
        st = self.read_stamp(stage.name)
        return (bool(st) and st.get("key") == self._key(stage, inputs)
                and st.get("outputs") == fingerprint(stage.outputs, self.out) and stage.name not in self.force)

    # ---- the plan
    def stages(self) -> list[Stage]:
        r = self.recipe.data
        st = []
        if self.synth:
            st.append(Stage("synth", dict(r["synth"]), lambda: {}, [self.source], self._run_synth))
        st.append(self._extract_stage("extract", self.recipe, self.data))
        split = r["split"]
        st.append(Stage("shard", {**split, "size": r["shards"]["size"]}, lambda: self._data_inputs(self.data),
                        [self.shards], self._run_shard))
        st.append(Stage("manifest", dict(r["manifest"]), lambda: {
            "videos": _table_digest(self.data / "videos.parquet"),
            "shards": _table_digest(self.shards / "manifest.parquet"),
            **({"sources": fingerprint([self.source], self.source)} if r["manifest"]["checksums"] else {}),
        }, [self.out / "manifest.csv"], self._run_manifest))
        variants = self.variants()
        for label, rec, data in variants:
            stage = self._extract_stage(f"extract[{label}]", rec, data)
            stage.enabled = self.recipe.has("report") and r["report"]["beats"]
            stage.why_disabled = "only for the beat report"
            st.append(stage)
        st.append(Stage("report", dict(r["report"]), lambda: {
            "main": self._data_inputs(self.data), **{lab: self._data_inputs(d) for lab, _, d in variants}},
            [self.out / "reports"], self._run_report, enabled=self.recipe.has("report") and r["report"]["beats"],
            why_disabled="no [report] in the recipe"))
        for t in r["train"]:
            st.append(Stage(f"train-{Path(train_run_dir(t)).name}", dict(t), lambda t=t: self._train_inputs(t),
                            [self._run_dir(t)], lambda prev, t=t: self._run_train(t, prev),
                            enabled=self.train, why_disabled="training runs only with --train"))
        return st

    def variants(self) -> list[tuple[str, Recipe, Path]]:
        out = []
        for spec in self.recipe["report"]["compare"]:
            specs = spec if isinstance(spec, list) else [spec]
            rec = self.recipe.with_overrides(specs)
            label = " + ".join(specs)
            slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", "+".join(specs))
            out.append((label, rec, self.out / "variants" / slug / "data"))
        return out

    def run(self, dry_run: bool = False) -> list[StageResult]:
        results = []
        dirty = False  # a stage ran (or would run): later stages see new inputs
        for stage in self.stages():
            if not stage.enabled:
                results.append(StageResult(stage.name, "disabled", detail=stage.why_disabled))
                continue
            if dry_run and dirty:
                results.append(StageResult(stage.name, "pending", detail="after an earlier stage"))
                continue
            inputs = stage.inputs()
            if self.up_to_date(stage, inputs):
                self.log(f"{stage.name}: up to date")
                results.append(StageResult(stage.name, "skipped", detail="up to date"))
                continue
            if dry_run:
                dirty = True
                results.append(StageResult(stage.name, "pending", detail="would run"))
                continue
            self.log(f"{stage.name}: running")
            t = time.perf_counter()
            prev = self.read_stamp(stage.name)
            extra = stage.run(prev) or {}
            secs = time.perf_counter() - t
            inputs = stage.inputs()  # e.g. synth made the files extract fingerprints
            self.stamps.mkdir(parents=True, exist_ok=True)
            write_json(self.stamp_path(stage.name), {
                "stage": stage.name, "key": self._key(stage, inputs), "settings": stage.settings,
                "outputs": fingerprint(stage.outputs, self.out), "seconds": round(secs, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra})
            dirty = True
            results.append(StageResult(stage.name, "ran", secs, extra.get("summary", "")))
        return results

    # ---- synth
    def _run_synth(self, prev: dict) -> dict:
        from functools import partial

        from momu_data.parallel import map_unordered
        from momu_data.synth import synthesize_one

        s = self.recipe["synth"]
        self.source.mkdir(parents=True, exist_ok=True)
        fn = partial(synthesize_one, seconds=s["seconds"], out=self.source, seed=s["seed"])
        made = {Path(p).name for p in map_unordered(fn, range(s["n"]), self.jobs)}
        # Videos of an earlier, larger n are not part of this dataset: the synth folder is
        # the recipe's own (OUT/videos), so they are removed rather than extracted.
        if self.source == self.out / "videos":
            for old in self.source.glob("synth_*.mp4"):
                if old.name not in made:
                    old.unlink()
                    old.with_name(old.name[:-4] + ".gt.json").unlink(missing_ok=True)
        return {"summary": f"{len(made)} videos of {s['seconds']:g} s"}

    # ---- extract
    def _extract_config(self, rec: Recipe):
        from momu_data.extract import ExtractConfig

        p, c = rec["pose"], rec["clips"]
        opts = {}
        if p["source"] == "dance_with_melody":
            opts = {"views": p["views"], "time_scale": p["time_scale"], "time_offset": p["time_offset"]}
        return ExtractConfig(pose_source=p["source"], max_side=p["max_side"], conf_threshold=p["conf_threshold"],
                             clip_seconds=c["seconds"], hop_seconds=c["hop"], min_clip_seconds=c["min_seconds"],
                             max_interp_frac=c["max_interp"], max_no_person_frac=c["max_no_person"], bins=p["bins"],
                             fps=p["fps"], cameras=str(p["cameras"]), source_options=opts)

    def _input_paths(self, rec: Recipe) -> list[Path]:
        ins = rec["source"]["inputs"] or ["."]
        paths = [(self.source / i) if i != "." else self.source for i in ins]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            url = rec["source"]["url"]
            raise RecipeError(f"no such input: {', '.join(missing)}" + (f" (get the data from {url})" if url else ""))
        return paths

    def jobs_of(self, rec: Recipe) -> list:
        """The extraction jobs of a recipe, as `momu-data extract` would build them, minus
        the excluded sequences."""
        from momu_data.cli.data import _read_metadata, build_jobs

        inputs = self._input_paths(rec)
        lab = rec["labels"]
        metadata = {}
        if lab["from_names"] == "aist":
            metadata.update(aist_metadata(_candidate_stems(rec["pose"]["source"], inputs)))
        if lab["metadata"]:
            for k, v in _read_metadata(self.source / lab["metadata"]).items():
                metadata[k] = {**metadata.get(k, {}), **v}
        audio = self.source / rec["audio"]["path"] if rec["audio"]["path"] else None
        if audio is not None and not audio.exists():
            raise RecipeError(f"[audio] path {audio} does not exist")
        jobs = build_jobs(inputs, rec["pose"]["source"], audio, rec["recipe"]["dataset"] or rec.name, metadata)
        excl = rec["source"]["exclude_list"]
        if excl and (self.source / excl).is_file():
            names = read_name_list(self.source / excl)
            jobs = [j for j in jobs if not is_excluded(j.id, names)]
        from collections import Counter

        dup = sorted(i for i, n in Counter(j.id for j in jobs).items() if n > 1)
        if dup:
            raise RecipeError(f"two inputs map to the same id: {dup[0]}")
        return jobs

    def _job_fingerprint(self, job) -> str:
        # Relative to the source folder, so a dataset that moves (or is mounted elsewhere)
        # is not extracted again; the labels are part of what an item records.
        return fingerprint([p for p in (job.source, job.audio) if p], self.source) + f":{_digest(job.labels)}"

    def _job_fingerprints(self, rec: Recipe) -> dict:
        return {j.id: self._job_fingerprint(j) for j in self.jobs_of(rec)}

    def _extract_stage(self, name: str, rec: Recipe, data: Path) -> Stage:
        cfg = self._extract_config(rec)
        settings = {"config": cfg.digest(), "dataset": rec["recipe"]["dataset"] or rec.name}
        return Stage(name, settings, lambda: {"jobs": self._job_fingerprints(rec)},
                     [data / "items", data / "videos.parquet", data / "clips.parquet"],
                     lambda prev: self._run_extract(rec, data, prev))

    def _run_extract(self, rec: Recipe, data: Path, prev: dict) -> dict:
        from functools import partial

        from momu_data.extract import is_done, record_path, run_job
        from momu_data.io import clean_stale_temps
        from momu_data.manifest import compile_manifests, read_records
        from momu_data.parallel import map_unordered

        cfg = self._extract_config(rec)
        jobs = self.jobs_of(rec)
        if not jobs:
            raise RecipeError(f"no inputs found in {self.source} for pose source {cfg.pose_source}")
        fps = {j.id: self._job_fingerprint(j) for j in jobs}
        (data / "items").mkdir(parents=True, exist_ok=True)
        clean_stale_temps(data / "items")
        # Inputs that changed since the last run are redone; inputs that are gone leave the data.
        old = prev.get("jobs", {})
        for jid, fp in old.items():
            if jid in fps and fps[jid] != fp:
                record_path(data, jid).unlink(missing_ok=True)
        for rec_ in read_records(data):
            if rec_["id"] not in fps:
                _remove_item(data, rec_)
        todo = [j for j in jobs if not is_done(data, j, cfg)]
        self.log(f"  {len(jobs) - len(todo)} of {len(jobs)} inputs up to date, extracting {len(todo)}")
        r = self.recipe["run"]
        n_fail = 0
        for k, res in enumerate(map_unordered(partial(run_job, cfg=cfg, out=data), todo, self.jobs, r["backend"],
                                              r["scheduler"] or None), 1):
            if res["status"] != "ok":
                n_fail += 1
                self.log(f"  failed {res['path']}: {res['reason']}")
            else:
                self.log(f"  [{k}/{len(todo)}] {res['id']} ({res['seconds']:.1f} s)")
        videos, clips = compile_manifests(data)
        v = videos.to_pylist()
        ok = sum(x["status"] == "ok" for x in v)
        if ok == 0:
            raise RecipeError(f"no input succeeded: see {data}/videos.parquet")
        kept = sum(c["status"] == "ok" for c in clips.to_pylist())
        return {"jobs": fps, "summary": f"{ok} items ok, {len(v) - ok} failed, {kept} clips kept ({len(todo)} extracted now)"}

    def _data_inputs(self, data: Path) -> dict:
        """What the shard/report stages read: the clip table and the arrays of its videos."""
        import pyarrow.parquet as pq

        cp = data / "clips.parquet"
        if not cp.exists():
            return {"clips": "missing"}
        vids = sorted({r["video"] for r in pq.read_table(cp, columns=["video", "status"]).to_pylist() if r["status"] == "ok"})
        files = [data / "items" / f"{v}.{ext}" for v in vids for ext in ("npz", "flac")]
        return {"clips": _table_digest(cp), "arrays": fingerprint(files, data)}

    # ---- shard
    def _run_shard(self, prev: dict) -> dict:
        from momu_data.shards import parse_split, write_shards

        s = self.recipe["split"]
        info = write_shards(self.data, self.shards, parse_split(s["ratios"]), s["group_by"], s["seed"],
                            self.recipe["shards"]["size"])
        parts = [f"{k} {v['clips']} clips/{v['groups']} groups" for k, v in info["splits"].items()]
        return {"summary": ", ".join(parts)}

    # ---- manifest
    def _run_manifest(self, prev: dict) -> dict:
        rows = build_manifest(self.data, self.shards, self.source, self.recipe["manifest"])
        write_manifest_csv(rows, self.out / "manifest.csv")
        extra = {"summary": f"{len(rows)} items"}
        ref = self.recipe["manifest"]["reference"]
        if ref and Path(ref).is_file():
            diffs = compare_manifests(rows, read_manifest_csv(ref))
            extra["reference_differences"] = diffs[:50]
            if diffs:
                self.log(f"  manifest differs from {ref} in {len(diffs)} place(s), e.g. {diffs[0]}")
                extra["summary"] += f"; {len(diffs)} difference(s) from {ref}"
            else:
                extra["summary"] += f"; same as {ref}"
        return extra

    # ---- report
    def _run_report(self, prev: dict) -> dict:
        # Beat scoring belongs to the model package: run its command, as a Makefile would.
        r = self.recipe["report"]
        label = self.recipe["manifest"]["label"]
        rep = self.out / "reports"
        rep.mkdir(parents=True, exist_ok=True)
        args = ["ceiling", str(self.data), "--name", "as built"]
        for spec, _, d in self.variants():
            args += [str(d), "--name", spec]
        args += ["--title", self.recipe.name, "--bin-seconds", f"{r['bin_seconds']:g}",
                 "--json", str(rep / "beats.json"), "--markdown", str(rep / "beats.md")]
        if r["tolerance"] is not None:
            args += ["--tolerance", f"{r['tolerance']:g}s"]
        if label:
            args += ["--label", label]
        run_command("momu-eval", args)
        m = json.loads((rep / "beats.json").read_text())["results"][0]["overall"]
        return {"summary": f"ground truth BCS {m['BCS']:.1f} BHS {m['BHS']:.1f} F1 {m['F1']:.1f} over {m['n']} clips"}

    # ---- train
    def _run_dir(self, t: dict) -> Path:
        d = Path(train_run_dir(t))
        return d if d.is_absolute() else self.out / d  # relative run folders live in OUT

    def _vae_dir(self, t: dict) -> Path:
        """The VAE a diffusion entry trains on: its own `vae`, else the recipe's VAE run."""
        if t.get("vae"):
            d = Path(t["vae"])
            return d if d.is_absolute() else self.out / d
        vaes = [x for x in self.recipe["train"] if x["model"] == "vae"]
        if not vaes:
            raise RecipeError("[[train]] model diffusion needs a BiCoR-VAE: add a model = \"vae\" entry or set vae = PATH")
        return self._run_dir(vaes[0])

    def _train_inputs(self, t: dict) -> dict:
        ins = {"shards": fingerprint([self.shards], self.out)}
        if t["model"] == "diffusion":
            ins["vae"] = fingerprint([self._vae_dir(t) / "model.safetensors"], self.out)
        return ins

    def _run_train(self, t: dict, prev: dict) -> dict:
        from dataclasses import fields

        if t["model"] == "vae":
            from momu_models.train.vae import VAETrainConfig as Config
            from momu_models.train.vae import train
        else:
            from momu_models.train.diffusion import DiffusionTrainConfig as Config
            from momu_models.train.diffusion import train

        known = {f.name for f in fields(Config)} - {"shards", "run_dir", "extra", "resume"}
        params = {k: v for k, v in t.items() if k not in ("model", "run_dir")}
        bad = sorted(set(params) - known)
        if bad:
            raise RecipeError(f"[[train]] model {t['model']}: unknown setting(s) {', '.join(bad)}; "
                              f"known: {', '.join(sorted(known))}")
        if t["model"] == "diffusion":
            params["vae"] = str(self._vae_dir(t))
        run_dir = self._run_dir(t)
        # Resume only a run of these very inputs and settings that was interrupted; a run
        # folder left by other inputs is not silently continued or deleted.
        name = f"train-{run_dir.name}"
        started = self.stamp_path(f"{name}.started")
        key = self._key(Stage(name, dict(t), lambda: {}, [], lambda p: {}), self._train_inputs(t))
        resume = started.exists() and json.loads(started.read_text()).get("key") == key
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            raise RecipeError(f"{run_dir} holds a run of other inputs or settings: remove it or set run_dir in [[train]]")
        self.stamps.mkdir(parents=True, exist_ok=True)
        write_json(started, {"key": key})
        from momu_models.train.loop import TrainError

        try:
            metrics = train(Config(shards=str(self.shards), run_dir=str(run_dir), resume=resume, **params))
        except TrainError as e:  # a problem the user can fix: a message, not a traceback
            raise RecipeError(f"{name}: {e}") from None
        return {"summary": " ".join(f"{k} {v:.4f}" for k, v in metrics.items()), "metrics": metrics}


# The model package's commands, run as `python -m` so the recipe uses this interpreter's install.
COMMAND_MODULES = {"momu-eval": "momu_models.cli.eval", "momu-train": "momu_models.cli.train"}


def run_command(command: str, args: list[str], capture: bool = True) -> None:
    """Run a momu command (`momu-eval`, `momu-train`) in a subprocess; a failure becomes a
    RecipeError carrying the command's own one-line error."""
    cmd = [sys.executable, "-m", COMMAND_MODULES[command], *map(str, args)]
    res = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        lines = [ln.strip() for ln in (res.stderr or "").splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {res.returncode}"
        raise RecipeError(f"{command} {args[0]}: {why.removeprefix('error: ')}")


def train_run_dir(t: dict) -> str:
    """A [[train]] entry's run folder as written (relative: inside OUT): its run_dir, else
    runs/vae or runs/<task>, the folders `momu-train` and `momu-generate` use by default."""
    if t.get("run_dir"):
        return str(t["run_dir"])
    return "runs/vae" if t.get("model") == "vae" else f"runs/{t.get('task', 'motion2music')}"


def run_recipe(path, out=None, source=None, overrides=(), train=False, jobs=None, force=(), dry_run=False,
               log=print) -> list[StageResult]:
    """Load a recipe file and run it (see Runner)."""
    rec = load_recipe(path, overrides)
    return Runner(rec, out=out, source=source, train=train, jobs=jobs, force=force, log=log).run(dry_run)


# ------------------------------------------------------------------------ data helpers

def _remove_item(data: Path, rec: dict) -> None:
    """Delete the arrays and record of an input that is no longer part of the recipe."""
    for v in rec.get("views", []):
        for ext in ("npz", "flac"):
            (data / "items" / f"{v['id']}.{ext}").unlink(missing_ok=True)
    (data / "items" / f"{rec['id']}.json").unlink(missing_ok=True)


def _candidate_stems(pose_source: str, inputs) -> list[str]:
    if pose_source == "mediapipe":
        from momu_data.media import find_videos

        return [v.stem for v, _ in find_videos(inputs)]
    from momu_data.pose.importers import find_keypoint_items

    return [Path(p).name if Path(p).is_dir() else Path(p).stem for p in find_keypoint_items(pose_source, inputs)]


def aist_metadata(stems) -> dict[str, dict]:
    """Labels from AIST sequence names: {stem: {genre, dancer, music, choreo}}; names that
    do not follow the convention get none."""
    from momu_data.pose.importers.aistpp import parse_aist_name

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
            names.add(re.sub(r"\.(pkl|mp4|json|npy|npz)$", "", Path(line).name))
    return names


def is_excluded(item_id: str, names: set[str]) -> bool:
    """An item is excluded when its id is listed, or (AIST names) its sequence with the
    camera replaced by cAll is: AIST++'s ignore_list.txt names sequences, not views."""
    if item_id in names:
        return True
    return re.sub(r"_c\d{2}_", "_cAll_", item_id) in names


# ---------------------------------------------------------------------------- manifest

MANIFEST_COLUMNS = ("id", "job", "view", "dataset", "status", "reason", "duration", "clips", "clips_ok",
                    "genre", "music", "dancer", "style", "choreo", "label", "split", "source", "audio")


def _rel(path, root: Path) -> str:
    if not path:
        return ""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _checksums(path, skip=None) -> str:
    """sha256 of a file, or "name:sha256;..." for the files of a folder input (without
    skip, the audio file that has its own column)."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    if p.is_dir():
        sk = os.path.abspath(skip) if skip else None
        return ";".join(f"{f.relative_to(p).as_posix()}:{sha256_file(f)}" for f in _files(p)
                        if os.path.abspath(f) != sk)
    return ""


def build_manifest(data: Path, shards: Path, source: Path, opts: dict) -> list[dict]:
    """One row per extracted item (view): ids, duration, group ids, label, split, and the
    inputs relative to the source folder (with sha256 checksums when asked)."""
    import pyarrow.parquet as pq

    from momu_data.manifest import read_records

    split = {}
    if (shards / "manifest.parquet").exists():
        for r in pq.read_table(shards / "manifest.parquet", columns=["video", "split"]).to_pylist():
            split[r["video"]] = r["split"]
    views = {}
    for rec in read_records(data):
        for v in rec.get("views", []):
            views[v["id"]] = (rec, v)
    rows = []
    sums: dict[str, str] = {}
    for v in pq.read_table(data / "videos.parquet").to_pylist():
        rec, view = views.get(v["id"], ({}, {}))
        row = {k: v.get(k, "") for k in MANIFEST_COLUMNS if k in v}
        row["duration"] = round(float(v.get("duration") or 0.0), 3)
        row["label"] = v.get(opts["label"], "") if opts["label"] else ""
        row["split"] = split.get(v["id"], "")
        row["source"] = _rel(v["path"], source)
        row["audio"] = _rel(rec.get("audio_path"), source) if rec else ""
        for c in opts["columns"]:
            val = view.get(c, "")
            row[c] = round(val, 6) if isinstance(val, float) else val
        if opts["checksums"]:
            audio = rec.get("audio_path") if rec else ""
            for col, p in (("source_sha256", v["path"]), ("audio_sha256", audio)):
                if p and p not in sums:
                    sums[p] = _checksums(p, skip=audio)
                row[col] = sums.get(p, "") if p else ""
        rows.append({k: row.get(k, "") for k in (*MANIFEST_COLUMNS, *opts["columns"],
                                                 *(("source_sha256", "audio_sha256") if opts["checksums"] else ()))})
    rows.sort(key=lambda r: r["id"])
    return rows


def write_manifest_csv(rows: list[dict], path) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(MANIFEST_COLUMNS), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)


def read_manifest_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# Columns that identify an item and its place in the dataset; timings and reasons may vary
# with library versions and are not compared.
COMPARED = ("id", "status", "genre", "music", "dancer", "style", "choreo", "label", "split", "source", "audio",
            "source_sha256", "audio_sha256")


def compare_manifests(new: list[dict], ref: list[dict]) -> list[str]:
    """Human-readable differences of a freshly built manifest from a reference one."""
    a = {r["id"]: r for r in new}
    b = {r["id"]: r for r in ref}
    out = [f"{i}: not in the reference" for i in sorted(set(a) - set(b))]
    out += [f"{i}: missing (in the reference)" for i in sorted(set(b) - set(a))]
    for i in sorted(set(a) & set(b)):
        for c in COMPARED:
            if c in b[i] and c in a[i] and str(a[i][c]) != str(b[i][c]):
                out.append(f"{i}: {c} is {a[i][c]!r}, reference {b[i][c]!r}")
        if "duration" in b[i] and b[i]["duration"] and abs(float(a[i]["duration"]) - float(b[i]["duration"])) > 0.05:
            out.append(f"{i}: duration {a[i]['duration']} s, reference {b[i]['duration']} s")
    return out
