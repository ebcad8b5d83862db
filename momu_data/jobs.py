"""A dataset's extraction jobs: inputs (videos or keypoint files) -> `extract.Job`s with
their audio and labels -> the jobs not yet done -> records and manifests.

`momu-data extract` is `extract_dataset`; the recipe runner builds its jobs with the same
`build_jobs` and runs them with `run_extraction`.

    from momu_data.extract import ExtractConfig
    from momu_data.jobs import extract_dataset
    res = extract_dataset(["videos/"], "data", ExtractConfig(clip_seconds=4.0))
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from momu_data.extract import EnvironmentFailure, ExtractConfig, Job, conflict, is_done, run_job
from momu_data.io import clean_stale_temps, environment_error
from momu_data.lock import FolderLocked, folder_lock
from momu_data.manifest import LABELS, compile_manifests
from momu_data.media import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, find_videos, item_id
from momu_data.parallel import map_unordered
from momu_data.pose.importers import find_keypoint_items
from momu_data.pose.importers.aistpp import parse_aist_name
from momu_data.pose.importers.dance_with_melody import find_audio


class JobError(ValueError):
    """Inputs that cannot be turned into jobs (no inputs, clashing ids, a bad metadata CSV);
    the message is a one-line reason for the user."""


def read_metadata(path) -> dict[str, dict]:
    """CSV with an `id` (or `stem`) column and any of genre, music, dancer, style, choreo:
    {id: {label: value}} (empty values left out); {} without a path."""
    if path is None:
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not ({"id", "stem"} & set(rows[0])):
        raise JobError(f"{path}: the metadata CSV needs an 'id' or 'stem' column")
    return {(r.get("id") or r.get("stem")): {k: r[k] for k in LABELS if r.get(k)} for r in rows}


def match_audio(audio, names: list[str], exclude=None) -> str | None:
    """The audio of an input: `audio` itself when it is a file, else the first file in the
    folder `audio` (searched recursively) whose stem is one of names; None if none. An audio
    file wins over a video of the same stem; `exclude` (the input itself, when the audio
    folder is the videos' folder) is never its own audio."""
    if audio is None:
        return None
    audio = Path(audio)
    if audio.is_file():
        return str(audio)
    skip = Path(exclude).resolve() if exclude is not None else None
    cands: dict[str, Path] = {}
    for p in sorted(audio.rglob("*")):
        ext = p.suffix.lower()
        if ext not in AUDIO_EXTENSIONS + VIDEO_EXTENSIONS or (skip is not None and p.resolve() == skip):
            continue
        if p.stem not in cands or (ext in AUDIO_EXTENSIONS and cands[p.stem].suffix.lower() not in AUDIO_EXTENSIONS):
            cands[p.stem] = p
    for n in names:
        if n and n in cands:
            return str(cands[n])
    return None


def synth_labels(video) -> dict:
    """Labels of a synthetic video (`momu-data synth`) from its `<name>.gt.json` sidecar:
    genre = the music style the song was made in (which also picks the dance repertoire);
    {} for any other video. Without them synthetic clips could not train a classifier."""
    gt = Path(video).with_suffix(".gt.json")
    if not gt.is_file():
        return {}
    try:
        style = json.loads(gt.read_text()).get("style")
    except (OSError, ValueError, AttributeError):
        return {}  # not a synth sidecar after all: no labels rather than a failed extraction
    return {"genre": style} if isinstance(style, str) and style else {}


def build_jobs(inputs, pose_source: str, audio=None, dataset: str = "", metadata: dict | None = None) -> list[Job]:
    """One job per input found under `inputs` (videos for mediapipe, else the keypoint items
    of `pose_source`), with its audio (see match_audio) and labels (metadata rows by id or
    stem; synthetic videos' sidecars). Raises FileNotFoundError for a missing input and
    JobError for an input the pose source cannot read."""
    metadata = metadata or {}
    audio = Path(audio) if audio is not None else None
    jobs = []
    if pose_source == "mediapipe":
        for v, root in find_videos(inputs):
            jid = item_id(v, root)
            # A metadata CSV row wins over what a synthetic video's sidecar says.
            labels = {**synth_labels(v), **(metadata.get(jid) or metadata.get(v.stem) or {})}
            # An audio folder is matched by the video's name, else by its music id (AIST
            # videos: gBR_sBM_c01_d04_mBR0_ch01.mp4 plays wav/mBR0.wav). Videos without sound
            # take their music from there; so can videos with it (the file replaces theirs).
            music = match_audio(audio, [v.stem, jid, labels.get("music", "")], exclude=v)
            jobs.append(Job(jid, str(v), music, dataset, labels))
        return jobs
    try:
        items = find_keypoint_items(pose_source, inputs)
    except ValueError as e:  # a file of the wrong kind; a missing one stays FileNotFoundError
        raise JobError(str(e)) from None
    for p in items:
        p = Path(p)
        stem = p.name if p.is_dir() else p.stem
        jid = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)
        names = [stem, jid]
        if pose_source == "aistpp":
            try:
                names.append(parse_aist_name(stem).get("music", ""))
            except ValueError as e:
                raise JobError(str(e)) from None
        labels = metadata.get(jid) or metadata.get(stem) or {}
        names.append(labels.get("music", ""))
        match = match_audio(audio, names)
        if pose_source == "dance_with_melody" and audio is None:
            found = find_audio(p)  # each dance folder holds its own music (audio.mp3)
            match = str(found) if found else None
        jobs.append(Job(jid, str(p), match, dataset, labels))
    return jobs


def duplicate_ids(jobs) -> list[str]:
    """Ids that more than one job maps to, sorted."""
    return sorted(i for i, n in Counter(j.id for j in jobs).items() if n > 1)


@dataclass
class ExtractionPlan:
    jobs: list[Job]  # every input
    todo: list[Job]  # those not yet extracted with these settings

    @property
    def skipped(self) -> int:
        return len(self.jobs) - len(self.todo)


def plan_extraction(
    inputs, out, cfg: ExtractConfig, audio=None, dataset: str = "", metadata=None, retry_failed: bool = False
) -> ExtractionPlan:
    """The jobs of `inputs` and those of them still to do in `out` (resume: finished jobs of
    the same settings are skipped). Prepares `out/items` (stale temporary files removed).
    metadata: {id: labels} or the path of a metadata CSV (see read_metadata)."""
    return prepare_extraction(checked_jobs(inputs, out, cfg, audio, dataset, metadata), out, cfg, retry_failed)


def checked_jobs(inputs, out, cfg: ExtractConfig, audio=None, dataset: str = "", metadata=None) -> list[Job]:
    """The jobs of `inputs`, checked (some found, distinct ids, none clashing with another
    input already in `out`); writes nothing. Raises JobError or FileNotFoundError."""
    if not isinstance(metadata, dict):
        metadata = read_metadata(metadata)
    jobs = build_jobs(inputs, cfg.pose_source, audio, dataset, metadata)
    if not jobs:
        raise JobError(f"no inputs found in {', '.join(map(str, inputs))} for --pose-source {cfg.pose_source}")
    dup = duplicate_ids(jobs)
    if dup:
        raise JobError(f"two inputs map to the same id: {dup[0]} (rename one, or extract them into different --out)")
    # Another input already extracted under the same id is never taken for this one.
    clashes = [m for j in jobs if (m := conflict(Path(out), j))]
    if clashes:
        raise JobError(clashes[0] + (f" ({len(clashes) - 1} more inputs like it)" if len(clashes) > 1 else ""))
    return jobs


def prepare_extraction(jobs: list[Job], out, cfg: ExtractConfig, retry_failed: bool = False) -> ExtractionPlan:
    """`out/items` made and cleaned of a killed run's temporary files; the plan of `jobs`.
    Run it under the folder's lock: a concurrent run's temporaries are not stale."""
    out = Path(out)
    (out / "items").mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out / "items")
    return ExtractionPlan(jobs, [j for j in jobs if not is_done(out, j, cfg, retry_failed)])


def run_extraction(
    jobs, cfg: ExtractConfig, out, n_jobs: int = -1, backend: str = "joblib", scheduler: str | None = None
) -> Iterator[dict]:
    """Extract the jobs in parallel (see parallel.map_unordered); yields each job's record
    as it finishes. Failures of an input are records with a reason, never exceptions; a
    failure of the machine raises EnvironmentFailure (see extract.run_job)."""
    yield from map_unordered(partial(run_job, cfg=cfg, out=Path(out)), jobs, n_jobs, backend, scheduler)


@dataclass
class ExtractionResult:
    videos: list[dict]  # rows of videos.parquet (every input extracted so far)
    clips: list[dict]  # rows of clips.parquet
    new: list[dict]  # records of the inputs extracted by this run
    skipped: int  # inputs already extracted with these settings
    frames: int  # video (or keypoint) frames read by this run
    seconds: float  # wall time of this run's extraction

    @property
    def ok(self) -> int:
        return sum(v["status"] == "ok" for v in self.videos)

    @property
    def failed_now(self) -> int:
        return sum(r["status"] != "ok" for r in self.new)


def extract_dataset(
    inputs,
    out,
    cfg: ExtractConfig,
    audio=None,
    dataset: str = "",
    metadata=None,
    n_jobs: int = -1,
    backend: str = "joblib",
    scheduler: str | None = None,
    retry_failed: bool = False,
    on_plan: Callable[[ExtractionPlan], None] | None = None,
    on_record: Callable[[dict], None] | None = None,
) -> ExtractionResult:
    """Extract every input under `inputs` into `out` (items/, videos.parquet, clips.parquet),
    resuming an earlier run: `momu-data extract` as a function. on_plan(plan) is called once
    the jobs are known, on_record(record) after each job. Raises JobError for inputs that
    cannot be jobs, EnvironmentFailure when the machine stops the run (a full disk, ...):
    the jobs not finished stay to do, so a plain rerun after the fix completes. A second
    extraction into the same `out` while one runs is refused with JobError (lock.folder_lock)."""
    try:
        return _extract_dataset(
            inputs, out, cfg, audio, dataset, metadata, n_jobs, backend, scheduler, retry_failed, on_plan, on_record
        )
    except FolderLocked as e:
        raise JobError(str(e)) from None
    except OSError as e:
        env = environment_error(e)
        if env is None:
            raise
        raise EnvironmentFailure.of(env, f"extracting into {out}") from None


def _extract_dataset(
    inputs, out, cfg, audio, dataset, metadata, n_jobs, backend, scheduler, retry_failed, on_plan, on_record
) -> ExtractionResult:
    out = Path(out)
    jobs = checked_jobs(inputs, out, cfg, audio, dataset, metadata)  # bad inputs: refused before out is made
    with folder_lock(out, "extraction"):
        plan = prepare_extraction(jobs, out, cfg, retry_failed)
        if on_plan is not None:
            on_plan(plan)
        t0 = time.perf_counter()
        frames = 0
        new = []
        for rec in run_extraction(plan.todo, cfg, out, n_jobs, backend, scheduler):
            new.append(rec)
            frames += sum(v["video_frames"] for v in rec["views"])
            if on_record is not None:
                on_record(rec)
        wall = time.perf_counter() - t0
        videos, clips = compile_manifests(out)
    return ExtractionResult(videos.to_pylist(), clips.to_pylist(), new, plan.skipped, frames, wall)
