"""`momu-data`: build training-ready shards from dance videos. One command per stage:
synth (make demo videos) -> extract (videos -> poses, mels, rhythm, clips) -> shard
(clips -> WebDataset tars) -> inspect; export (motion for pose-guided video tools)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from momu_data.cli.common import console, fail, progress, setup_logging
from momu_data.export import DEFAULT_FPS, ExportError, ExportSettings, export_motion, load_motion
from momu_data.extract import POSE_SOURCES, EnvironmentFailure, ExtractConfig
from momu_data.inspect import items_row, plot_clip, summarise, verify_shards
from momu_data.jobs import JobError, extract_dataset
from momu_data.native_logs import show_native_logs
from momu_data.optional import MissingPackage, import_optional
from momu_data.pose.multi import parse_dancers
from momu_data.recipes import RecipeError, Runner, load_recipe
from momu_data.shards import parse_split, write_shards

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command()
def synth(
    out: Path = typer.Option(
        Path("videos"), "--out", "-o", help="Folder for the mp4 files and their .gt.json ground truth."
    ),
    n: int = typer.Option(20, "--n", help="Number of videos."),
    seconds: float = typer.Option(12.0, "--seconds", help="Length of each video in seconds."),
    seed: int = typer.Option(0, "--seed", help="Video i depends only on (seed, i)."),
    jobs: int = typer.Option(-1, "--jobs", "-j", help="Parallel workers (-1: all cores)."),
    dancers: int = typer.Option(
        1, "--dancers", help="Dancers per video: 2 or more write group_XXX.mp4, each dancer with its own ground truth."
    ),
    crossing: bool = typer.Option(
        False, "--crossing", help="With --dancers 2+: the first two dancers swap places mid-clip, one walking behind."
    ),
):
    """Write synthetic dance videos (h264 + AAC) of a rendered humanoid dancing to procedurally
    generated music, with ground-truth 14 keypoints and beat times: the embedded default
    dataset of the demo and the tests (no download)."""
    if dancers < 1:
        fail("--dancers must be 1 or more")
    if crossing and dancers < 2:
        fail("--crossing needs --dancers 2 or more")
    try:  # the renderer imports OpenCV at import: name what to install instead of a traceback
        import_optional("av", "cv2", purpose="rendering synthetic videos", install="'momu[data]'")
    except MissingPackage as e:
        fail(str(e))
    from momu_data.synth import synthesize
    from momu_data.synth.group import synthesize_group

    t = time.perf_counter()
    with progress() as pb:
        task = pb.add_task("synthesizing", total=n)
        if dancers > 1:
            synthesize_group(
                n, seconds, out, dancers, seed=seed, crossing=crossing, jobs=jobs, progress=lambda *_: pb.advance(task)
            )
        else:
            synthesize(n, seconds, out, seed=seed, jobs=jobs, progress=lambda *_: pb.advance(task))
    console.print(f"wrote {n} videos of {seconds:g} s to {out}/ in {time.perf_counter() - t:.1f} s")


@app.command()
def extract(
    inputs: list[Path] = typer.Argument(
        ...,
        help=(
            "Video files or folders (searched recursively for mp4, mov, m4v, avi, mkv, webm); keypoint files/folders"
            " with --pose-source. A name starting with '-' goes after `--` (extract --out data -- -take1.mp4)."
        ),
    ),
    out: Path = typer.Option(
        Path("data"), "--out", "-o", help="Output folder: items/, videos.parquet, clips.parquet."
    ),
    pose_source: str = typer.Option(
        "mediapipe",
        "--pose-source",
        help=(
            "mediapipe (from the video), openpose (BODY_25 JSON folders), coco (AlphaPose-style COCO-17 JSON), "
            "aistpp (AIST++ keypoints2d .pkl) or dance_with_melody (mocap folders with skeletons.json, projected to "
            "2D)."
        ),
    ),
    audio: Path | None = typer.Option(
        None,
        "--audio",
        help=(
            "Audio file, or a folder matched by file stem (AIST++: by music id); videos without sound take their "
            "music from there. Default: the video's own audio (dance_with_melody: audio.mp3 in each folder)."
        ),
    ),
    fps: float | None = typer.Option(
        None, "--fps", help="Frame rate of OpenPose/COCO keypoint files (default: the --audio video's rate, else 30)."
    ),
    cameras: str = typer.Option(
        "all", "--cameras", help="AIST++ views: all, or comma-separated cameras (1-9 or c01-c09)."
    ),
    clip_seconds: float = typer.Option(10.0, "--clip-seconds", help="Clip length."),
    hop_seconds: float | None = typer.Option(
        None, "--hop-seconds", help="Distance between clip starts (default: clip length, no overlap)."
    ),
    min_clip_seconds: float | None = typer.Option(
        None, "--min-clip-seconds", help="Keep a shorter last clip if at least this long (default: half a clip)."
    ),
    max_interp: float = typer.Option(
        0.3, "--max-interp", help="Reject clips with a larger fraction of interpolated joints."
    ),
    max_no_person: float = typer.Option(
        0.2, "--max-no-person", help="Reject clips with a larger fraction of frames without a person."
    ),
    conf_threshold: float = typer.Option(
        0.5, "--conf-threshold", help="Joints below this confidence count as missing."
    ),
    max_side: int = typer.Option(
        640, "--max-side", help="Downscale frames to this longest side before the pose model."
    ),
    bins: int = typer.Option(8, "--bins", help="Directogram angle bins (K)."),
    segment_seconds: float = typer.Option(
        60.0,
        "--segment-seconds",
        help="mediapipe: estimate poses in segments of this much video, each checkpointed (a rerun resumes there).",
    ),
    dancers: str = typer.Option(
        "main",
        "--dancers",
        help=(
            "mediapipe: main (one person, as before), all (every dancer tracked, each its own item"
            " <video>__dancer<k>) or N (at most N dancers at a time)."
        ),
    ),
    jobs: int = typer.Option(-1, "--jobs", "-j", help="Parallel workers (-1: all cores)."),
    backend: str = typer.Option("joblib", "--backend", help="joblib (local processes) or dask."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default with --backend dask: a local cluster)."
    ),
    dataset: str = typer.Option("", "--dataset", help="Dataset name recorded in the manifests."),
    metadata: Path | None = typer.Option(
        None, "--metadata", help="CSV with id/stem and genre, music, dancer, style columns."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit non-zero if any video fails."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Redo videos that failed in an earlier run."),
    verbose: bool = typer.Option(
        False, "--verbose", help="Show the pose model's own log lines (mediapipe, TensorFlow Lite): hidden by default."
    ),
):
    """Extract poses, 16 kHz log-mels, directograms, kinematic amplitude, beats and clips.

    Resumable: finished videos are skipped on a rerun (with the same settings and content; another input with the same id is refused), a long video continues at its last checkpointed segment. A video that fails gets a row with the reason in videos.parquet and the run goes on; a full disk or a permission error stops the run with one line (nothing recorded), and a plain rerun after the fix completes it.

    File names starting with '-' go after `--`: momu-data extract --out data -- -take1.mp4"""  # noqa: E501 (one line per paragraph: typer keeps a docstring's line breaks)
    if pose_source not in POSE_SOURCES:
        fail(f"--pose-source must be one of {', '.join(POSE_SOURCES)}")
    if backend not in ("joblib", "dask"):
        fail("--backend must be joblib or dask")
    if verbose:
        show_native_logs()  # inherited by the workers this run starts
    try:
        dancers = parse_dancers(dancers)
    except ValueError as e:
        fail(str(e))
    if dancers != "main" and pose_source != "mediapipe":
        fail("--dancers applies to --pose-source mediapipe (keypoint files hold the people they hold)")
    cfg = ExtractConfig(
        pose_source=pose_source,
        max_side=max_side,
        conf_threshold=conf_threshold,
        clip_seconds=clip_seconds,
        hop_seconds=hop_seconds,
        min_clip_seconds=min_clip_seconds,
        max_interp_frac=max_interp,
        max_no_person_frac=max_no_person,
        bins=bins,
        fps=fps,
        cameras=cameras,
        segment_seconds=segment_seconds,
        dancers=dancers,
    )
    pbar = progress()
    bars = {}

    def planned(plan):
        if plan.skipped:
            console.print(f"skipping {plan.skipped} finished of {len(plan.jobs)} (resume)")
        pbar.start()
        bars["videos"] = pbar.add_task("videos", total=len(plan.todo))
        bars["frames"] = pbar.add_task("frames", total=None)

    def finished(rec):
        pbar.advance(bars["videos"])
        pbar.advance(bars["frames"], sum(v["video_frames"] for v in rec["views"]))
        if rec["status"] != "ok":
            pbar.console.print(f"[yellow]failed[/yellow] {rec['path']}: {rec['reason']}")

    try:
        res = extract_dataset(
            inputs,
            out,
            cfg,
            audio,
            dataset,
            metadata,
            jobs,
            backend,
            scheduler,
            retry_failed,
            on_plan=planned,
            on_record=finished,
        )
    except (JobError, FileNotFoundError, MissingPackage) as e:
        fail(str(e))
    except EnvironmentFailure as e:
        fail(str(e), 1)
    finally:
        pbar.stop()
    _summary(res, out)
    if res.ok == 0:
        fail("no video succeeded", 1)
    if strict and res.failed_now:
        fail(f"{res.failed_now} input(s) failed (--strict)", 1)


def _summary(res, out):
    videos, clips = res.videos, res.clips
    bad = [v for v in videos if v["status"] != "ok"]
    cok = [c for c in clips if c["status"] == "ok"]
    t = Table(title=f"extract -> {out}", show_header=False)
    t.add_row(*items_row(videos))
    t.add_row("clips kept / rejected", f"{len(cok)} / {len(clips) - len(cok)}")
    t.add_row("hours (kept clips)", f"{sum(c['duration'] for c in cok) / 3600:.3f}")
    if res.new:
        frames, wall = res.frames, res.seconds
        t.add_row(
            "this run",
            f"{len(res.new)} inputs, {frames} frames in {wall:.1f} s ({frames / max(wall, 1e-9):.1f} frames/s)",
        )
    for reason, n in Counter(v["reason"] for v in bad).most_common():
        t.add_row("failed", f"{n} x {reason}")
    for reason, n in Counter(c["reason"].split(" (")[0] for c in clips if c["status"] != "ok").most_common(5):
        t.add_row("rejected clips", f"{n} x {reason}")
    Console().print(t)


@app.command()
def shard(
    data: Path = typer.Argument(Path("data"), help="Output folder of `momu-data extract`."),
    out: Path = typer.Option(
        Path("shards"), "--out", "-o", help="Shard folder: {train,val,test}/NNNNNN.tar, *.wids.json, manifest.parquet."
    ),
    split: str = typer.Option("90/5/5", "--split", help="train/val/test proportions."),
    group_by: str = typer.Option(
        "video",
        "--group-by",
        help="Keep each video (or music, or dancer) in one split; clip: each clip on its own "
        "(the paper's random split over clips).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and shard order."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Clips per shard at most."),
):
    """Write WebDataset shards with a deterministic grouped split."""
    try:
        ratios = parse_split(split)
    except ValueError as e:
        fail(str(e))
    if not (data / "clips.parquet").exists():
        fail(f"{data}/clips.parquet not found: run `momu-data extract VIDEOS --out {data}` first")
    total = sum(
        1 for r in pq.read_table(data / "clips.parquet", columns=["status"]).to_pylist() if r["status"] == "ok"
    )
    t = time.perf_counter()
    try:  # errors after the progress bar's last line
        with progress() as pb:
            task = pb.add_task("clips", total=total)
            info = write_shards(data, out, ratios, group_by, seed, shard_size, progress=lambda k: pb.advance(task, k))
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    except OSError as e:  # disk full, permissions: the environment, not the data
        fail(
            f"cannot write shards to {out}: {e.strerror or e}"
            + (f" ({e.filename})" if e.filename else "")
            + "; the previous shard set, if any, is unchanged: fix this and rerun",
            1,
        )
    wall = time.perf_counter() - t
    tab = Table(title=f"shards -> {out}  (group by {group_by}, seed {seed})")
    for c in ("split", "clips", "share", "hours", "groups", "shards", "MB"):
        tab.add_column(c)
    n = sum(s["clips"] for s in info["splits"].values()) or 1
    mb = 0.0
    for name, s in info["splits"].items():
        mb += s["bytes"] / 1e6
        tab.add_row(
            name,
            str(s["clips"]),
            f"{s['clips'] / n:.1%}",
            f"{s['hours']:.3f}",
            str(s["groups"]),
            str(s["shards"]),
            f"{s['bytes'] / 1e6:.1f}",
        )
    Console().print(tab)
    console.print(f"{mb:.1f} MB in {wall:.1f} s ({mb / max(wall, 1e-9):.1f} MB/s)")


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="A data folder (extract output) or a shard folder."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw one clip (mel, kinematic amplitude with kinematic beats, music onsets) to this PNG."
    ),
    key: str | None = typer.Option(None, "--key", help="Clip to plot (default: the first)."),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Read every tar of a shard folder and check every sample (checksums, values, the manifest's keys); "
        "print each damaged tar, sample and member; exit 1 if any.",
    ),
):
    """Summarise a data or shard folder: clips, hours, splits, failures by reason."""
    try:
        for table in summarise(path):
            Console().print(table)
        if plot:
            k = plot_clip(path, plot, key)
            console.print(f"plotted {k} to {plot}")
        if verify:
            with progress() as pb:
                task = pb.add_task("verifying tars", total=len(list(path.glob("*/*.tar"))))
                res = verify_shards(path, progress=lambda k: pb.advance(task, k))
    except (FileNotFoundError, KeyError, ValueError) as e:
        fail(str(e))
    if verify:
        for d in res.damage:
            typer.echo(f"damaged: {d}")
        console.print(
            f"verified {res.tars} tars ({res.bytes / 1e6:.1f} MB) in {res.seconds:.1f} s: "
            f"{res.intact} samples intact, {res.damaged_samples} damaged"
        )
        if res.damage:
            fail(
                f"{res.damaged_samples} damaged sample(s) in {len(res.damaged_tars)} file(s) of {path}: rebuild them "
                "with `momu-data shard`, or train with --skip-corrupt",
                1,
            )


@app.command()
def export(
    path: Path = typer.Argument(
        ...,
        help="A data folder (extract output), one item (DATA/items/ID.npz or its record ID.json), or generated "
        "keypoints (NAME.npy beside NAME.json).",
    ),
    formats: list[str] = typer.Option(
        ["openpose"],
        "--format",
        "-f",
        help="openpose (BODY_25 JSON per frame), pose-video (mp4 control frames), pose-frames (PNGs), csv, npz: "
        "repeatable or a comma list.",
    ),
    out: Path = typer.Option(Path("export"), "--out", "-o", help="Output folder."),
    fps: float = typer.Option(DEFAULT_FPS, "--fps", help="Frame rate of the export (e.g. 24, 25, 30)."),
    canvas: str | None = typer.Option(
        None,
        "--canvas",
        help="Canvas WIDTHxHEIGHT, e.g. 512x768: the source (or reference) frame resized into it; motion without a "
        "frame is fitted into it (default: the source's own frame, else 512x768).",
    ),
    reference_dancer: Path | None = typer.Option(
        None,
        "--reference-dancer",
        help="Place and size the skeleton as the dancer of this video (pose extracted with mediapipe) or extracted "
        "item (DATA/items/ID.npz).",
    ),
    item: list[str] = typer.Option([], "--item", help="With a data folder: only this item id (repeatable)."),
):
    """Export extracted or generated motion for pose-guided video tools and your own code (docs/export.md)."""
    try:
        settings = ExportSettings.parse(formats, fps, canvas, reference_dancer)
        sources = load_motion(path, item or None)
        for src in sources:
            w = export_motion(src.pose, out, src.name, settings, fps_in=src.fps, frame=src.frame)
            console.print(f"{src.name}: {w['frames']} frames at {settings.fps:g} fps -> {w['export']}")
    except (ExportError, MissingPackage) as e:
        fail(str(e))
    except OSError as e:  # disk full, permissions: the environment, not the data
        fail(f"cannot write to {out}: {e.strerror or e}" + (f" ({e.filename})" if e.filename else ""), 1)


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="A recipe file, e.g. pipelines/demo.toml (see docs/recipes.md)."),
    source: Path | None = typer.Option(
        None, "--source", help="The raw data folder (default: the recipe's source path)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: the recipe's out, else work/NAME)."
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="Override a recipe value: SECTION.KEY=VALUE (TOML value), repeatable, e.g. --set clips.seconds=6.",
    ),
    train: bool = typer.Option(False, "--train", help="Also run the recipe's train stages (off by default)."),
    force: list[str] = typer.Option([], "--force", help="Rerun this stage even if it is up to date (repeatable)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only show which stages are up to date and which would run."
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", help="Parallel workers (default: the recipe's run.jobs, -1 = all cores)."
    ),
):
    """Run a dataset recipe: synth (demo) -> extract -> shard -> manifest -> report (-> train).

    Each stage is skipped when its outputs are up to date (its settings and inputs hashed
    into OUT/.stamps/), so a rerun after a change redoes only what changed."""
    t = time.perf_counter()
    try:
        rec = load_recipe(recipe, set_)
        results = Runner(
            rec,
            out=out,
            source=source,
            train=train,
            jobs=jobs,
            force=force,
            log=lambda m: console.print(escape(m), highlight=False),
        ).run(dry_run)
    except (RecipeError, FileNotFoundError, EnvironmentFailure) as e:
        fail(str(e))  # fail() escapes: messages name [sections], not rich markup
    tab = Table(title=f"{rec.name} -> {out or rec['recipe']['out'] or 'work/' + rec.name}")
    for c in ("stage", "status", "seconds", "detail"):
        tab.add_column(c)
    for r in results:
        tab.add_row(escape(r.name), r.status, f"{r.seconds:.1f}" if r.status == "ran" else "", escape(r.detail))
    Console().print(tab)
    console.print(f"done in {time.perf_counter() - t:.1f} s")


def main():
    setup_logging()
    app()


if __name__ == "__main__":
    main()
