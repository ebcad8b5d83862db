"""Run a dataset recipe (see ``recipes.schema`` and ``docs/recipes.md``) as a chain of stages
that skip themselves when their outputs are up to date. ``momu-data run pipelines/NAME.toml`` runs

    synth (only with a [synth] table) -> extract -> shard -> manifest
      -> extract[VARIANT]... -> report (only with [report]) -> train (only with --train)

through the same functions the single-step commands use (``jobs.build_jobs``,
``jobs.run_extraction``, ``compile_manifests``, ``write_shards``); the report and train
stages run the model package's commands (``momu-eval ceiling``, ``momu-train``) in a
subprocess, as a Makefile would.

Up-to-date skipping (make-like): each stage hashes its settings and a fingerprint of its
inputs (relative path, size and modification time of every input file) into a key, and
writes ``OUT/.stamps/STAGE.json`` with the key and a fingerprint of its outputs when it
finishes. A stage is skipped when its stamp has the same key and its outputs are still
exactly as it left them. Extraction goes further: the stamp keeps one fingerprint per input,
so after a change only the changed inputs are re-extracted and inputs that disappeared are
removed from the data (the rest is extract's own resume).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pyarrow.parquet as pq

from momu_data.extract import ExtractConfig, is_done, record_path
from momu_data.io import clean_stale_temps, write_json
from momu_data.jobs import JobError, build_jobs, duplicate_ids, read_metadata, run_extraction
from momu_data.lock import FolderLocked, folder_lock
from momu_data.manifest import compile_manifests, read_records
from momu_data.recipes.dataset_manifest import build_manifest, compare_manifests, read_manifest_csv, write_manifest_csv
from momu_data.recipes.labels import aist_metadata, candidate_stems, is_excluded, read_name_list
from momu_data.recipes.schema import Recipe, RecipeError, load_recipe, train_run_dir
from momu_data.recipes.splits import (
    SplitError,
    assign,
    implied_clip_seconds,
    listed_sequences,
    lists_folder,
    protocol,
    read_lists,
    sequence_name,
)
from momu_data.recipes.stamps import STAMPS, digest, fingerprint, table_digest
from momu_data.shards import parse_split, write_shards


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

    def __init__(
        self,
        recipe: Recipe,
        out=None,
        source=None,
        train: bool = False,
        jobs: int | None = None,
        force=(),
        log: Callable[[str], None] | None = None,
    ):
        """log(message) gets one line per stage and per extracted input (default: this
        module's logger at INFO level)."""
        self.recipe = recipe
        r = recipe.data
        self.out = Path(out or r["recipe"]["out"] or Path("work") / recipe.name)
        self.synth = recipe.has("synth")
        src = source or r["source"]["path"]
        if not src and not self.synth:
            raise RecipeError(
                f"{recipe.path}: no data: set [source] path or pass --source DIR"
                + (f" (download: {r['source']['url']})" if r["source"]["url"] else "")
            )
        self.source = Path(src) if src else self.out / "videos"
        self.train = train
        self.jobs = r["run"]["jobs"] if jobs is None else jobs
        self.force = set(force)
        self.log = log if log is not None else logging.getLogger(__name__).info  # `log` is the parameter here
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
        return digest({"stage": stage.name, "settings": stage.settings, "inputs": inputs})

    def up_to_date(self, stage: Stage, inputs: dict) -> bool:
        st = self.read_stamp(stage.name)
        return (
            bool(st)
            and st.get("key") == self._key(stage, inputs)
            and st.get("outputs") == fingerprint(stage.outputs, self.out)
            and stage.name not in self.force
        )

    # ---- the plan
    def stages(self) -> list[Stage]:
        r = self.recipe.data
        st = []
        if self.synth:
            st.append(Stage("synth", dict(r["synth"]), dict, [self.source], self._run_synth))
        st.append(self._extract_stage("extract", self.recipe, self.data))
        split = r["split"]
        st.append(
            Stage(
                "shard",
                {**split, "size": r["shards"]["size"]},
                lambda: {**self._data_inputs(self.data), **self._lists_inputs()},
                [self.shards],
                self._run_shard,
            )
        )
        st.append(
            Stage(
                "manifest",
                dict(r["manifest"]),
                lambda: {
                    "videos": table_digest(self.data / "videos.parquet"),
                    "shards": table_digest(self.shards / "manifest.parquet"),
                    **({"sources": fingerprint([self.source], self.source)} if r["manifest"]["checksums"] else {}),
                },
                [self.out / "manifest.csv"],
                self._run_manifest,
            )
        )
        variants = self.variants()
        for label, rec, data in variants:
            stage = self._extract_stage(f"extract[{label}]", rec, data)
            stage.enabled = self.recipe.has("report") and r["report"]["beats"]
            stage.why_disabled = "only for the beat report"
            st.append(stage)
        st.append(
            Stage(
                "report",
                dict(r["report"]),
                lambda: {
                    "main": self._data_inputs(self.data),
                    **{lab: self._data_inputs(d) for lab, _, d in variants},
                },
                [self.out / "reports"],
                self._run_report,
                enabled=self.recipe.has("report") and r["report"]["beats"],
                why_disabled="no [report] in the recipe",
            )
        )
        for t in r["train"]:
            st.append(
                Stage(
                    f"train-{Path(train_run_dir(t)).name}",
                    dict(t),
                    lambda t=t: self._train_inputs(t),
                    [self.train_dir(t)],
                    lambda prev, t=t: self._run_train(t, prev),
                    enabled=self.train,
                    why_disabled="training runs only with --train",
                )
            )
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
        """Run (dry_run: only report) the stages not up to date. One run per output folder at
        a time: a second one is refused with RecipeError (lock.folder_lock)."""
        if dry_run:
            return self._run_stages(dry_run)
        try:
            with folder_lock(self.out, "recipe run"):
                return self._run_stages(dry_run)
        except FolderLocked as e:
            raise RecipeError(str(e)) from None

    def _run_stages(self, dry_run: bool) -> list[StageResult]:
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
            write_json(
                self.stamp_path(stage.name),
                {
                    "stage": stage.name,
                    "key": self._key(stage, inputs),
                    "settings": stage.settings,
                    "outputs": fingerprint(stage.outputs, self.out),
                    "seconds": round(secs, 2),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    **extra,
                },
            )
            dirty = True
            results.append(StageResult(stage.name, "ran", secs, extra.get("summary", "")))
        return results

    # ---- synth
    def _run_synth(self, prev: dict) -> dict:
        from momu_data.synth import synthesize  # OpenCV and PyAV: only for this stage

        s = self.recipe["synth"]
        self.source.mkdir(parents=True, exist_ok=True)
        made = {Path(p).name for p in synthesize(s["n"], s["seconds"], self.source, seed=s["seed"], jobs=self.jobs)}
        # Videos of an earlier, larger n are not part of this dataset: the synth folder is
        # the recipe's own (OUT/videos), so they are removed rather than extracted.
        if self.source == self.out / "videos":
            for old in self.source.glob("synth_*.mp4"):
                if old.name not in made:
                    old.unlink()
                    old.with_name(old.name[:-4] + ".gt.json").unlink(missing_ok=True)
        return {"summary": f"{len(made)} videos of {s['seconds']:g} s"}

    # ---- split protocol
    def split_lists(self, rec: Recipe | None = None) -> dict[str, set[str]] | None:
        """The list files of the recipe's split protocol ({split: names}), or None for a
        protocol without lists ("" and "random")."""
        rec = rec or self.recipe
        s = rec["split"]
        if not protocol(s["protocol"]).files:
            return None
        try:
            return read_lists(s["protocol"], lists_folder(s["protocol"], s["lists"], rec.path), s["subset"])
        except SplitError as e:
            raise RecipeError(str(e)) from None

    def _lists_inputs(self) -> dict:
        s = self.recipe["split"]
        if not protocol(s["protocol"]).files:
            return {}
        folder = lists_folder(s["protocol"], s["lists"], self.recipe.path)
        return {"lists": fingerprint([folder], folder) if folder.is_dir() else "missing"}

    @staticmethod
    def clip_seconds(rec: Recipe) -> float:
        """The clip length: [clips] seconds when the recipe sets it, else the split protocol's
        (loris: its subset's 25 or 50 s; random: 25 s), else the schema default (10 s)."""
        implied = implied_clip_seconds(rec["split"]["protocol"], rec["split"]["subset"])
        return rec["clips"]["seconds"] if rec.sets("clips", "seconds") or implied is None else implied

    # ---- extract
    def extract_config(self, rec: Recipe) -> ExtractConfig:
        p, c = rec["pose"], rec["clips"]
        opts = {}
        if p["source"] == "dance_with_melody":
            opts = {"views": p["views"], "time_scale": p["time_scale"], "time_offset": p["time_offset"]}
        return ExtractConfig(
            pose_source=p["source"],
            max_side=p["max_side"],
            conf_threshold=p["conf_threshold"],
            clip_seconds=self.clip_seconds(rec),
            hop_seconds=c["hop"],
            min_clip_seconds=c["min_seconds"],
            max_interp_frac=c["max_interp"],
            max_no_person_frac=c["max_no_person"],
            bins=p["bins"],
            fps=p["fps"],
            cameras=str(p["cameras"]),
            source_options=opts,
        )

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
        inputs = self._input_paths(rec)
        lab = rec["labels"]
        metadata = {}
        if lab["from_names"] == "aist":
            metadata.update(aist_metadata(candidate_stems(rec["pose"]["source"], inputs)))
        audio = self.source / rec["audio"]["path"] if rec["audio"]["path"] else None
        try:
            if lab["metadata"]:
                for k, v in read_metadata(self.source / lab["metadata"]).items():
                    metadata[k] = {**metadata.get(k, {}), **v}
            if audio is not None and not audio.exists():
                raise RecipeError(f"[audio] path {audio} does not exist")
            jobs = build_jobs(inputs, rec["pose"]["source"], audio, rec["recipe"]["dataset"] or rec.name, metadata)
        except JobError as e:
            raise RecipeError(str(e)) from None
        proto = protocol(rec["split"]["protocol"])
        excl = rec["source"]["exclude_list"]
        if excl and (self.source / excl).is_file():
            names = read_name_list(self.source / excl)
            if proto.use_exclude_list:
                jobs = [j for j in jobs if not is_excluded(j.id, names)]
            else:  # loris: its lists are the item set, ignored sequences included
                kept = sum(is_excluded(j.id, names) for j in jobs)
                if kept:
                    self.log(f"  split protocol {proto.name}: keeping {kept} input(s) listed in {excl} (its lists do)")
        lists = self.split_lists(rec)
        if lists is not None:  # a list protocol: only the sequences its lists name are extracted
            wanted = listed_sequences(proto.name, lists)
            jobs = [j for j in jobs if sequence_name(j.id) in wanted]
        dup = duplicate_ids(jobs)
        if dup:
            raise RecipeError(f"two inputs map to the same id: {dup[0]}")
        return jobs

    def _job_fingerprint(self, job) -> str:
        # Relative to the source folder, so a dataset that moves (or is mounted elsewhere)
        # is not extracted again; the labels are part of what an item records.
        return fingerprint([p for p in (job.source, job.audio) if p], self.source) + f":{digest(job.labels)}"

    def _job_fingerprints(self, rec: Recipe) -> dict:
        return {j.id: self._job_fingerprint(j) for j in self.jobs_of(rec)}

    def _extract_stage(self, name: str, rec: Recipe, data: Path) -> Stage:
        cfg = self.extract_config(rec)
        settings = {"config": cfg.digest(), "dataset": rec["recipe"]["dataset"] or rec.name}
        return Stage(
            name,
            settings,
            lambda: {"jobs": self._job_fingerprints(rec)},
            [data / "items", data / "videos.parquet", data / "clips.parquet"],
            lambda prev: self._run_extract(rec, data, prev),
        )

    def _run_extract(self, rec: Recipe, data: Path, prev: dict) -> dict:
        cfg = self.extract_config(rec)
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
        for k, res in enumerate(run_extraction(todo, cfg, data, self.jobs, r["backend"], r["scheduler"] or None), 1):
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
        summary = f"{ok} items ok, {len(v) - ok} failed, {kept} clips kept ({len(todo)} extracted now)"
        return {"jobs": fps, "summary": summary}

    def _data_inputs(self, data: Path) -> dict:
        """What the shard/report stages read: the clip table and the arrays of its videos."""
        cp = data / "clips.parquet"
        if not cp.exists():
            return {"clips": "missing"}
        rows = pq.read_table(cp, columns=["video", "status"]).to_pylist()
        vids = sorted({r["video"] for r in rows if r["status"] == "ok"})
        files = [data / "items" / f"{v}.{ext}" for v in vids for ext in ("npz", "flac")]
        return {"clips": table_digest(cp), "arrays": fingerprint(files, data)}

    # ---- shard
    def _run_shard(self, prev: dict) -> dict:
        s = self.recipe["split"]
        proto = protocol(s["protocol"])
        ratios, group_by, assignment, extra = parse_split(s["ratios"]), s["group_by"], None, {}
        if proto.ratios is not None:  # random: the paper's 90/5/5 over clips
            ratios, group_by = proto.ratios, "clip"
        lists = self.split_lists()
        if lists is not None:
            rows = pq.read_table(self.data / "clips.parquet").to_pylist()
            assignment, report = assign(proto.name, rows, lists, s["seed"])
            extra = {"protocol": report}
            if report["missing"]:
                self.log(
                    f"  split protocol {proto.name}: {len(report['missing'])} listed item(s) not in the data, "
                    f"e.g. {report['missing'][0]}"
                )
        try:
            info = write_shards(
                self.data,
                self.shards,
                ratios,
                group_by,
                s["seed"],
                self.recipe["shards"]["size"],
                assignment=assignment,
            )
        except ValueError as e:
            raise RecipeError(str(e)) from None
        parts = [f"{k} {v['clips']} clips/{v['groups']} groups" for k, v in info["splits"].items()]
        if proto.name:
            parts.insert(0, f"protocol {proto.name}")
        return {"summary": ", ".join(parts), **extra}

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
        args += [
            "--title",
            self.recipe.name,
            "--bin-seconds",
            f"{r['bin_seconds']:g}",
            "--json",
            str(rep / "beats.json"),
            "--markdown",
            str(rep / "beats.md"),
        ]
        if r["tolerance"] is not None:
            args += ["--tolerance", f"{r['tolerance']:g}s"]
        if label:
            args += ["--label", label]
        run_command("momu-eval", args)
        m = json.loads((rep / "beats.json").read_text())["results"][0]["overall"]
        return {"summary": f"ground truth BCS {m['BCS']:.1f} BHS {m['BHS']:.1f} F1 {m['F1']:.1f} over {m['n']} clips"}

    # ---- train
    def train_dir(self, t: dict) -> Path:
        """The run folder of a [[train]] entry (see schema.train_run_dir)."""
        d = Path(train_run_dir(t))
        return d if d.is_absolute() else self.out / d  # relative run folders live in OUT

    def vae_dir(self, t: dict) -> Path:
        """The VAE a diffusion entry trains on: its own `vae`, else the recipe's VAE run."""
        if t.get("vae"):
            d = Path(t["vae"])
            return d if d.is_absolute() else self.out / d
        vaes = [x for x in self.recipe["train"] if x["model"] == "vae"]
        if not vaes:
            raise RecipeError(
                '[[train]] model diffusion needs a BiCoR-VAE: add a model = "vae" entry or set vae = PATH'
            )
        return self.train_dir(vaes[0])

    def _train_inputs(self, t: dict) -> dict:
        ins = {"shards": fingerprint([self.shards], self.out)}
        if t["model"] == "diffusion":
            ins["vae"] = fingerprint([self.vae_dir(t) / "model.safetensors"], self.out)
        return ins

    def _run_train(self, t: dict, prev: dict) -> dict:
        # Training belongs to the model package: run `momu-train` with the entry's settings
        # as its --config file; momu-train checks them against the trainer's config.
        model = t["model"]
        config = {k: v for k, v in t.items() if k not in ("model", "run_dir")}
        if model == "diffusion":
            config["vae"] = str(self.vae_dir(t))
        run_dir = self.train_dir(t)
        # Resume only a run of these very inputs and settings that was interrupted; a run
        # folder left by other inputs is not silently continued or deleted.
        name = f"train-{run_dir.name}"
        started = self.stamp_path(f"{name}.started")
        key = self._key(Stage(name, dict(t), dict, [], lambda p: {}), self._train_inputs(t))
        resume = started.exists() and json.loads(started.read_text()).get("key") == key
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            raise RecipeError(
                f"{run_dir} holds a run of other inputs or settings: remove it or set run_dir in [[train]]"
            )
        self.stamps.mkdir(parents=True, exist_ok=True)
        write_json(started, {"key": key})
        config_path = self.stamp_path(f"{name}.config")
        write_json(config_path, config)
        args = [model, str(self.shards), "--config", str(config_path), "--run-dir", str(run_dir)]
        try:
            run_command("momu-train", [*args, "--resume"] if resume else args, stream=True)
        except CommandError as e:  # a problem the user can fix: momu-train's one-line reason
            raise RecipeError(f"[[train]] model {model}: {e.reason}") from None
        metrics = trained_metrics(run_dir)
        return {"summary": " ".join(f"{k} {v:.4f}" for k, v in metrics.items()), "metrics": metrics}


def trained_metrics(run_dir) -> dict:
    """The final validation metrics of a finished momu-train run (its config.json's "val")."""
    try:
        val = json.loads((Path(run_dir) / "config.json").read_text()).get("val") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in val.items() if isinstance(v, (int, float))} if isinstance(val, dict) else {}


_FRAME = " \t│╭╮╰╯─"  # the frame of a rich error panel (typer's usage errors)


class CommandError(RecipeError):
    """A momu command that failed; reason: its own one-line error, without "error: "."""

    def __init__(self, command: str, args: list, reason: str):
        super().__init__(f"{command} {args[0]}: {reason}")
        self.command = command
        self.reason = reason


def error_reason(stderr_lines, returncode: int) -> str:
    """The last line of a command's stderr that says something, as its reason."""
    for ln in reversed(list(stderr_lines)):
        ln = ln.strip(_FRAME)
        if any(c.isalnum() for c in ln):
            return ln.removeprefix("error: ")
    return f"exit status {returncode}"


def command_module(command: str) -> str:
    """The module of an installed console command (`momu-train` -> its `cli` module), from the
    entry points pyproject.toml declares: the data package knows the model package's
    commands by name only."""
    eps = entry_points(group="console_scripts", name=command)
    if not eps:
        raise RecipeError(f"{command} is not installed: install the toolkit (pip install -e .)")
    return next(iter(eps)).module


def run_command(command: str, args: list[str], capture: bool = True, stream: bool = False) -> None:
    """Run a momu command (`momu-eval`, `momu-train`) in a subprocess, as `python -m` so that
    it uses this interpreter's install; a failure becomes a CommandError (a RecipeError)
    carrying the command's own one-line error.

    capture: hide the command's stdout. stream: pass its stderr (progress, messages)
    through to ours line by line as it comes, instead of collecting it."""
    cmd = [sys.executable, "-m", command_module(command), *map(str, args)]
    if not stream:
        res = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE, text=True)
        lines, rc = (res.stderr or "").splitlines(), res.returncode
    else:
        lines = deque(maxlen=50)  # enough to find the last line that says something
        with subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL if capture else None,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
        ) as proc:
            for line in proc.stderr:
                sys.stderr.write(line)
                sys.stderr.flush()
                lines.append(line.rstrip("\n"))
        rc = proc.returncode
    if rc != 0:
        raise CommandError(command, args, error_reason(lines, rc))


def run_recipe(
    path,
    out=None,
    source=None,
    overrides=(),
    train=False,
    jobs=None,
    force=(),
    dry_run=False,
    log: Callable[[str], None] | None = None,
) -> list[StageResult]:
    """Load a recipe file and run it (see Runner)."""
    rec = load_recipe(path, overrides)
    return Runner(rec, out=out, source=source, train=train, jobs=jobs, force=force, log=log).run(dry_run)


def _remove_item(data: Path, rec: dict) -> None:
    """Delete the arrays and record of an input that is no longer part of the recipe."""
    for v in rec.get("views", []):
        for ext in ("npz", "flac"):
            (data / "items" / f"{v['id']}.{ext}").unlink(missing_ok=True)
    (data / "items" / f"{rec['id']}.json").unlink(missing_ok=True)
