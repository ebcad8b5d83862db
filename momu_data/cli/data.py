"""`momu-data`: build training-ready shards from dance videos. One command per stage:
synth (make demo videos) -> extract (videos -> poses, mels, rhythm, clips) -> shard
(clips -> WebDataset tars) -> inspect."""
from __future__ import annotations

import csv
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from momu_data.media import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True, soft_wrap=True)  # one-line errors stay one line


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


def fail(msg: str, code: int = 2):
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(code)


@app.command()
def synth(
    out: Path = typer.Option(Path("videos"), "--out", "-o", help="Folder for the mp4 files and their .gt.json ground truth."),
    n: int = typer.Option(20, "--n", help="Number of videos."),
    seconds: float = typer.Option(12.0, "--seconds", help="Length of each video in seconds."),
    seed: int = typer.Option(0, "--seed", help="Video i depends only on (seed, i)."),
    jobs: int = typer.Option(-1, "--jobs", "-j", help="Parallel workers (-1: all cores)."),
):
    """Write synthetic dance videos (h264 + AAC) of a rendered humanoid dancing to procedurally
    generated music, with ground-truth 14 keypoints and beat times: the embedded default
    dataset of the demo and the tests (no download)."""
    from momu_data.parallel import map_unordered
    from momu_data.synth import synthesize_one

    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with _progress() as pb:
        task = pb.add_task("synthesizing", total=n)
        for _ in map_unordered(partial(synthesize_one, seconds=seconds, out=out, seed=seed), range(n), jobs):
            pb.advance(task)
    console.print(f"wrote {n} videos of {seconds:g} s to {out}/ in {time.perf_counter() - t:.1f} s")


def _read_metadata(path: Optional[Path]) -> dict[str, dict]:
    """CSV with an `id` (or `stem`) column and any of genre, music, dancer, style."""
    if path is None:
        return {}
    from momu_data.manifest import LABELS

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not ({"id", "stem"} & set(rows[0])):
        fail(f"{path}: the metadata CSV needs an 'id' or 'stem' column")
    return {(r.get("id") or r.get("stem")): {k: r[k] for k in LABELS if r.get(k)} for r in rows}


def _match_audio(audio: Optional[Path], names: list[str]) -> Optional[str]:
    if audio is None:
        return None
    if audio.is_file():
        return str(audio)
    cands = {p.stem: p for p in sorted(audio.rglob("*")) if p.suffix.lower() in (AUDIO_EXTENSIONS + VIDEO_EXTENSIONS)}
    for n in names:
        if n and n in cands:
            return str(cands[n])
    return None


def synth_labels(video: Path) -> dict:
    """Labels of a synthetic video (`momu-data synth`) from its `<name>.gt.json` sidecar:
    genre = the music style the song was made in (which also picks the dance repertoire);
    {} for any other video. Without them synthetic clips could not train a classifier."""
    gt = Path(video).with_suffix(".gt.json")
    if not gt.is_file():
        return {}
    import json

    try:
        style = json.loads(gt.read_text()).get("style")
    except (OSError, ValueError, AttributeError):
        return {}  # not a synth sidecar after all: no labels rather than a failed extraction
    return {"genre": style} if isinstance(style, str) and style else {}


def build_jobs(inputs: list[Path], pose_source: str, audio: Optional[Path], dataset: str, metadata: dict):
    from momu_data.extract import Job
    from momu_data.media import find_videos, item_id

    jobs = []
    if pose_source == "mediapipe":
        for v, root in find_videos(inputs):
            jid = item_id(v, root)
            # A metadata CSV row wins over what a synthetic video's sidecar says.
            labels = {**synth_labels(v), **(metadata.get(jid) or metadata.get(v.stem) or {})}
            # An audio folder is matched by the video's name, else by its music id (AIST
            # videos: gBR_sBM_c01_d04_mBR0_ch01.mp4 plays wav/mBR0.wav).
            jobs.append(Job(jid, str(v), _match_audio(audio, [v.stem, jid, labels.get("music", "")]), dataset, labels))
        return jobs
    from momu_data.pose.importers import find_keypoint_items

    for p in find_keypoint_items(pose_source, inputs):
        p = Path(p)
        stem = p.name if p.is_dir() else p.stem
        jid = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)
        names = [stem, jid]
        if pose_source == "aistpp":
            from momu_data.pose.importers.aistpp import parse_aist_name

            names.append(parse_aist_name(stem).get("music", ""))
        labels = metadata.get(jid) or metadata.get(stem) or {}
        names.append(labels.get("music", ""))
        match = _match_audio(audio, names)
        if pose_source == "dance_with_melody" and audio is None:
            from momu_data.pose.importers.dance_with_melody import find_audio

            found = find_audio(p)  # each dance folder holds its own music (audio.mp3)
            match = str(found) if found else None
        jobs.append(Job(jid, str(p), match, dataset, labels))
    return jobs


@app.command()
def extract(
    inputs: List[Path] = typer.Argument(..., help="Video files or folders (searched recursively for mp4, mov, m4v, avi, mkv, webm); keypoint files/folders with --pose-source."),
    out: Path = typer.Option(Path("data"), "--out", "-o", help="Output folder: items/, videos.parquet, clips.parquet."),
    pose_source: str = typer.Option("mediapipe", "--pose-source", help="mediapipe (from the video), openpose (BODY_25 JSON folders), coco (AlphaPose-style COCO-17 JSON), aistpp (AIST++ keypoints2d .pkl) or dance_with_melody (mocap folders with skeletons.json, projected to 2D)."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Audio file, or a folder matched by file stem (AIST++: by music id). Default: the video's own audio (dance_with_melody: audio.mp3 in each folder)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frame rate of OpenPose/COCO keypoint files (default: the --audio video's rate, else 30)."),
    cameras: str = typer.Option("all", "--cameras", help="AIST++ views: all, or comma-separated cameras (1-9 or c01-c09)."),
    clip_seconds: float = typer.Option(10.0, "--clip-seconds", help="Clip length."),
    hop_seconds: Optional[float] = typer.Option(None, "--hop-seconds", help="Distance between clip starts (default: clip length, no overlap)."),
    min_clip_seconds: Optional[float] = typer.Option(None, "--min-clip-seconds", help="Keep a shorter last clip if at least this long (default: half a clip)."),
    max_interp: float = typer.Option(0.3, "--max-interp", help="Reject clips with a larger fraction of interpolated joints."),
    max_no_person: float = typer.Option(0.2, "--max-no-person", help="Reject clips with a larger fraction of frames without a person."),
    conf_threshold: float = typer.Option(0.5, "--conf-threshold", help="Joints below this confidence count as missing."),
    max_side: int = typer.Option(640, "--max-side", help="Downscale frames to this longest side before the pose model."),
    bins: int = typer.Option(8, "--bins", help="Directogram angle bins (K)."),
    jobs: int = typer.Option(-1, "--jobs", "-j", help="Parallel workers (-1: all cores)."),
    backend: str = typer.Option("joblib", "--backend", help="joblib (local processes) or dask."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address (default with --backend dask: a local cluster)."),
    dataset: str = typer.Option("", "--dataset", help="Dataset name recorded in the manifests."),
    metadata: Optional[Path] = typer.Option(None, "--metadata", help="CSV with id/stem and genre, music, dancer, style columns."),
    strict: bool = typer.Option(False, "--strict", help="Exit non-zero if any video fails."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Redo videos that failed in an earlier run."),
):
    """Extract poses, 16 kHz log-mels, directograms, kinematic amplitude, beats and clips.

    Resumable: finished videos are skipped on a rerun (with the same settings). A video
    that fails gets a row with the reason in videos.parquet and the run goes on."""
    from momu_data.extract import POSE_SOURCES, ExtractConfig, is_done, run_job
    from momu_data.io import clean_stale_temps
    from momu_data.manifest import compile_manifests
    from momu_data.parallel import map_unordered

    if pose_source not in POSE_SOURCES:
        fail(f"--pose-source must be one of {', '.join(POSE_SOURCES)}")
    if backend not in ("joblib", "dask"):
        fail("--backend must be joblib or dask")
    cfg = ExtractConfig(pose_source=pose_source, max_side=max_side, conf_threshold=conf_threshold,
                        clip_seconds=clip_seconds, hop_seconds=hop_seconds, min_clip_seconds=min_clip_seconds,
                        max_interp_frac=max_interp, max_no_person_frac=max_no_person, bins=bins, fps=fps,
                        cameras=cameras)
    try:
        all_jobs = build_jobs(inputs, pose_source, audio, dataset, _read_metadata(metadata))
    except FileNotFoundError as e:
        fail(str(e))
    if not all_jobs:
        fail(f"no inputs found in {', '.join(map(str, inputs))} for --pose-source {pose_source}")
    dup = [k for k, c in Counter(j.id for j in all_jobs).items() if c > 1]
    if dup:
        fail(f"two inputs map to the same id: {dup[0]} (rename one or extract them separately)")
    (out / "items").mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out / "items")
    todo = [j for j in all_jobs if not is_done(out, j, cfg, retry_failed)]
    if len(todo) < len(all_jobs):
        console.print(f"skipping {len(all_jobs) - len(todo)} finished of {len(all_jobs)} (resume)")
    t0 = time.perf_counter()
    frames = 0
    new = []
    with _progress() as pb:
        tv = pb.add_task("videos", total=len(todo))
        tf = pb.add_task("frames", total=None)
        for rec in map_unordered(partial(run_job, cfg=cfg, out=out), todo, jobs, backend, scheduler):
            new.append(rec)
            n = sum(v["video_frames"] for v in rec["views"])
            frames += n
            pb.advance(tv)
            pb.advance(tf, n)
            if rec["status"] != "ok":
                pb.console.print(f"[yellow]failed[/yellow] {rec['path']}: {rec['reason']}")
    wall = time.perf_counter() - t0
    videos, clips = compile_manifests(out)
    _summary(videos.to_pylist(), clips.to_pylist(), new, frames, wall, out)
    ok = sum(r["status"] == "ok" for r in videos.to_pylist())
    failed = sum(r["status"] != "ok" for r in new)
    if ok == 0:
        fail("no video succeeded", 1)
    if strict and failed:
        fail(f"{failed} input(s) failed (--strict)", 1)


def _summary(videos, clips, new, frames, wall, out):
    ok = [v for v in videos if v["status"] == "ok"]
    bad = [v for v in videos if v["status"] != "ok"]
    cok = [c for c in clips if c["status"] == "ok"]
    t = Table(title=f"extract -> {out}", show_header=False)
    t.add_row("videos ok / failed", f"{len(ok)} / {len(bad)}")
    t.add_row("clips kept / rejected", f"{len(cok)} / {len(clips) - len(cok)}")
    t.add_row("hours (kept clips)", f"{sum(c['duration'] for c in cok) / 3600:.3f}")
    if new:
        t.add_row("this run", f"{len(new)} inputs, {frames} frames in {wall:.1f} s ({frames / max(wall, 1e-9):.1f} frames/s)")
    for reason, n in Counter(v["reason"] for v in bad).most_common():
        t.add_row("failed", f"{n} x {reason}")
    for reason, n in Counter(c["reason"].split(" (")[0] for c in clips if c["status"] != "ok").most_common(5):
        t.add_row("rejected clips", f"{n} x {reason}")
    Console().print(t)


@app.command()
def shard(
    data: Path = typer.Argument(Path("data"), help="Output folder of `momu-data extract`."),
    out: Path = typer.Option(Path("shards"), "--out", "-o", help="Shard folder: {train,val,test}/NNNNNN.tar, *.wids.json, manifest.parquet."),
    split: str = typer.Option("90/5/5", "--split", help="train/val/test proportions."),
    group_by: str = typer.Option("video", "--group-by", help="Keep each video (or music, or dancer) in one split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and shard order."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Clips per shard at most."),
):
    """Write WebDataset shards with a deterministic grouped split."""
    from momu_data.shards import parse_split, write_shards

    try:
        ratios = parse_split(split)
    except ValueError as e:
        fail(str(e))
    if not (data / "clips.parquet").exists():
        fail(f"{data}/clips.parquet not found: run `momu-data extract VIDEOS --out {data}` first")
    import pyarrow.parquet as pq

    total = sum(1 for r in pq.read_table(data / "clips.parquet", columns=["status"]).to_pylist() if r["status"] == "ok")
    t = time.perf_counter()
    with _progress() as pb:
        task = pb.add_task("clips", total=total)
        try:
            info = write_shards(data, out, ratios, group_by, seed, shard_size, progress=lambda k: pb.advance(task, k))
        except (ValueError, FileNotFoundError) as e:
            fail(str(e))
    wall = time.perf_counter() - t
    tab = Table(title=f"shards -> {out}  (group by {group_by}, seed {seed})")
    for c in ("split", "clips", "share", "hours", "groups", "shards", "MB"):
        tab.add_column(c)
    n = sum(s["clips"] for s in info["splits"].values()) or 1
    mb = 0.0
    for name, s in info["splits"].items():
        mb += s["bytes"] / 1e6
        tab.add_row(name, str(s["clips"]), f"{s['clips'] / n:.1%}", f"{s['hours']:.3f}", str(s["groups"]),
                    str(s["shards"]), f"{s['bytes'] / 1e6:.1f}")
    Console().print(tab)
    console.print(f"{mb:.1f} MB in {wall:.1f} s ({mb / max(wall, 1e-9):.1f} MB/s)")


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="A data folder (extract output) or a shard folder."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw one clip (mel, kinematic amplitude with kinematic beats, music onsets) to this PNG."),
    key: Optional[str] = typer.Option(None, "--key", help="Clip to plot (default: the first)."),
):
    """Summarise a data or shard folder: clips, hours, splits, failures by reason."""
    from momu_data.inspect import plot_clip, summarise

    try:
        for table in summarise(path):
            Console().print(table)
        if plot:
            k = plot_clip(path, plot, key)
            console.print(f"plotted {k} to {plot}")
    except (FileNotFoundError, KeyError, ValueError) as e:
        fail(str(e))


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="A recipe file, e.g. pipelines/demo.toml (see docs/recipes.md)."),
    source: Optional[Path] = typer.Option(None, "--source", help="The raw data folder (default: the recipe's source path)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: the recipe's out, else work/NAME)."),
    set_: List[str] = typer.Option([], "--set", help="Override a recipe value: SECTION.KEY=VALUE (TOML value), repeatable, e.g. --set clips.seconds=6."),
    train: bool = typer.Option(False, "--train", help="Also run the recipe's train stages (off by default)."),
    force: List[str] = typer.Option([], "--force", help="Rerun this stage even if it is up to date (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show which stages are up to date and which would run."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Parallel workers (default: the recipe's run.jobs, -1 = all cores)."),
):
    """Run a dataset recipe: synth (demo) -> extract -> shard -> manifest -> report (-> train).

    Each stage is skipped when its outputs are up to date (its settings and inputs hashed
    into OUT/.stamps/), so a rerun after a change redoes only what changed."""
    from rich.markup import escape

    from momu_data.recipes.runner import RecipeError, Runner, load_recipe

    t = time.perf_counter()
    try:
        rec = load_recipe(recipe, set_)
        results = Runner(rec, out=out, source=source, train=train, jobs=jobs, force=force,
                         log=lambda m: console.print(escape(m), highlight=False)).run(dry_run)
    except (RecipeError, FileNotFoundError) as e:
        fail(escape(str(e)))  # messages name [sections]: not rich markup
    tab = Table(title=f"{rec.name} -> {out or rec['recipe']['out'] or 'work/' + rec.name}")
    for c in ("stage", "status", "seconds", "detail"):
        tab.add_column(c)
    for r in results:
        tab.add_row(escape(r.name), r.status, f"{r.seconds:.1f}" if r.status == "ran" else "", escape(r.detail))
    Console().print(tab)
    console.print(f"done in {time.perf_counter() - t:.1f} s")


def main():
    app()


if __name__ == "__main__":
    main()
