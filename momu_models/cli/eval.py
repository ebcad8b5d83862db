"""momu-eval: beat alignment, beat plots, FAD, motion metrics and diversity of generated
samples, and all of them as paper-style tables (docs/metrics.md).

    momu-eval beats GENERATED --reference REFERENCE [--kind music|motion] [--json out.json]
                    [--fps F] [--tolerance 0.1s] [--metric loris,tolerance,bas-bailando,bas-aist,d2m|all]
                    [--scorer loris|16k] [--plot DIR] [--per-pair] [--sync]
    momu-eval plot  GENERATED --reference REFERENCE --out DIR [--kind ...] [--fps F] [--scorer loris|16k]
    momu-eval fad   GENERATED --reference REFERENCE [--embedder logmel-stats|vggish]
                    [--vggish-weights PATH] [--json out.json]
    momu-eval motion    GENERATED --classifier RUN [--reference REFERENCE] [--fps F] [--json out.json]
    momu-eval diversity GENERATED [--kind music|motion] [--classifier RUN] [--embedder ...] [--json out.json]
    momu-eval all   RUN_OUTPUTS... [--reference REF] [--classifier RUN] [--vggish-weights PATH]
                    [--metric NAMES|all] [--scorer loris|16k] [--json out.json] [--markdown out.md]
    momu-eval ceiling DATA... [--name N]... [--title T] [--bin-seconds B] [--tolerance 0.1s]
                    [--label L] [--json F] [--markdown F]
    momu-eval heldout SHARDS [--checkpoints RUNS] [--tasks ...] [--splits val,test] [--steps 50]
                    [--guidance 3] [--tolerance 0.1s] [--json F]
    momu-eval guidance SHARDS [--checkpoints RUNS] [--tasks ...] [--split val] [--scales 1.5,3,5,7]
                    [--dry-run] [--json F]

GENERATED and REFERENCE are folders (files directly inside, not recursive) or single files.
For beats and plot, generated and reference files pair by file stem; a single reference file
pairs with every generated file. For fad they are two unpaired sets. motion, diversity and
all read momu-generate's file names (condition ids, which file of a sample is generated);
see momu_models/evaluate/files.py. Each command is a thin layer over a function of
momu_models.evaluate: alignment.evaluate_beats, metrics.fad.fad_from_files,
suite.evaluate_motion / evaluate_diversity / evaluate_all, ceiling.ceiling_report,
heldout.evaluate_heldout, heldout.tune_guidance.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from momu_data import io
from momu_data.cli.common import fail, progress, setup_logging
from momu_data.optional import MissingPackage
from momu_models.evaluate import report
from momu_models.evaluate.alignment import evaluate_beats
from momu_models.evaluate.ceiling import beat_report_markdown, ceiling_report
from momu_models.evaluate.files import MEDIA_EXTENSIONS, EvalError, Kind, MusicScorer, parse_tolerance, scan
from momu_models.evaluate.metrics import beat_variants as V
from momu_models.evaluate.metrics import fad as F
from momu_models.evaluate.suite import evaluate_all, evaluate_diversity, evaluate_motion

app = typer.Typer(
    help="Evaluate generated music and motion: beat alignment (BCS/BHS), plots, FAD, "
    "motion FID / Mean KLD / Diversity, and all of them as paper-style tables.",
    no_args_is_help=True,
    add_completion=False,
)


# ---- console ----------------------------------------------------------------------------


@contextmanager
def _one_line_errors():
    """A problem with the inputs ends the command with its one-line reason, not a traceback."""
    try:
        yield
    except (EvalError, F.EmbedderError, ValueError, OSError, MissingPackage) as e:
        fail(str(e), 1)


def _tolerance(text: str | None) -> float | None:
    try:
        return parse_tolerance(text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--tolerance") from None


def _metrics(text: str | None, tolerance: float | None) -> list[str]:
    try:
        return V.parse_metrics(text, tolerance)
    except ValueError as e:
        raise typer.BadParameter(str(e).removeprefix("--metric: "), param_hint="--metric") from None


def _notes(notes: list[str]) -> None:
    for n in notes:
        typer.echo(f"note: {n}", err=True)


def _print(*tables) -> None:
    con = Console()
    for t in tables:
        con.print(t)


def _progress_callback(bar, label: str):
    """A progress(done, total) callback for the library's loops: the bar's task is added on the
    first call, once the models are loaded and the work counted."""
    task = []

    def step(done, total):
        if not task:
            task.append(bar.add_task(label, total=total))
        bar.update(task[0], completed=done)

    return step


def _save_json(obj: dict, path: Path | None) -> None:
    if path is not None:
        io.write_json(path, obj, indent=2, nan_to_null=True)  # strict JSON: NaN (the SD of one pair) -> null
        typer.echo(f"wrote {path}")


def _save_text(text: str, path: Path | None) -> None:
    if path is not None:
        with io.atomic_path(path) as tmp:
            tmp.write_text(text)
        typer.echo(f"wrote {path}")


# ---- commands ---------------------------------------------------------------------------

GEN_ARG = typer.Argument(..., help="Generated samples: a folder or one file.", show_default=False)
REF_OPT = typer.Option(..., "--reference", "-r", help="Reference samples: a folder or one file.", show_default=False)
KIND_OPT = typer.Option(
    Kind.music,
    "--kind",
    "-k",
    help="music: generated audio vs reference audio (motion-to-music); "
    "motion: generated .npy [T,14,2] motion vs reference music (music-to-motion).",
)
FPS_OPT = typer.Option(None, "--fps", help="Motion frame rate for .npy files without a <stem>.json sidecar.")
TOL_OPT = typer.Option(
    None, "--tolerance", help="Tolerance-window matching (e.g. 0.1s, 100ms) instead of the paper's 1 s bins."
)
SCORER_OPT = typer.Option(
    MusicScorer.loris,
    "--scorer",
    help="Where music onsets are detected. loris: as LORIS's beats_scores.py (librosa.load at 22,050 Hz), "
    "the paper's tables; 16k: the toolkit's 16 kHz time base, as the extracted data's onsets and "
    "`momu-eval ceiling`.",
)

METRIC_OPT = typer.Option(
    None,
    "--metric",
    "-m",
    help="Beat metric(s), comma-separated, or all: loris (LORIS's 1 s bins, the paper's; default), "
    "tolerance (one-to-one within ±--tolerance, default 0.1 s; the default when only --tolerance is given), "
    "bas-bailando / bas-aist (Beat Align Score as Bailando / the AIST++ code computes it; generated "
    "motion only), d2m (D2M-GAN's BCS = generated / reference beats, can exceed 100). Several metrics "
    "are reported side by side (docs/metrics.md).",
    show_default=False,
)

JSON_OPT = typer.Option(None, "--json", help="Write the result here.")
CLASSIFIER_OPT = typer.Option(
    None,
    "--classifier",
    "-c",
    help="A `momu-train classifier` run folder: its "
    "encoder gives the motion features (FID, Diversity) and its head the class "
    "distributions (Mean KLD).",
)
PAIRS_OPT = typer.Option(200, "--pairs", help="Inter-diversity: random cross-condition pairs (paper: 200).")
SEED_OPT = typer.Option(0, "--seed", help="Seed of the inter-diversity pair draw.")


@app.command()
def beats(
    generated: Path = GEN_ARG,
    reference: Path = REF_OPT,
    kind: Kind = KIND_OPT,
    json_out: Path | None = typer.Option(None, "--json", help="Write the summary and per-pair rows here."),
    fps: float | None = FPS_OPT,
    tolerance: str | None = TOL_OPT,
    plot: Path | None = typer.Option(None, "--plot", help="Also write a PNG per pair into this folder."),
    per_pair: bool = typer.Option(False, "--per-pair", help="Print a row per pair too."),
    sync: bool = typer.Option(
        False,
        "--sync",
        help="Also the envelope sync: peak normalised cross-correlation "
        "(within ±0.1 s) of the generated envelope with the reference music's log-mel flux.",
    ),
    scorer: MusicScorer = SCORER_OPT,
    metric: str | None = METRIC_OPT,
):
    """Beat alignment: BCS, CSD, BHS, HSD, F1 (percent), pairing files by stem; by default
    exactly LORIS's scorer; --metric adds or picks the field's other beat metrics (docs/metrics.md)."""
    tol = _tolerance(tolerance)
    names = _metrics(metric, tol)
    if metric is not None and metric.strip().lower() == "all":
        names = V.for_kind(names, kind.value)  # "all": every metric this kind has
    with _one_line_errors():
        res = evaluate_beats(generated, reference, kind, fps, tol, plot, sync=sync, scorer=scorer, metrics=names)
    _notes(report.beat_notes(res))
    _print(*report.beat_tables(res, per_pair))
    _save_json(res, json_out)
    if plot is not None:
        typer.echo(f"wrote {res['n']} plot(s) to {plot}")


@app.command("plot")
def plot_cmd(
    generated: Path = GEN_ARG,
    reference: Path = REF_OPT,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the PNGs (<stem>.png).", show_default=False),
    kind: Kind = KIND_OPT,
    fps: float | None = FPS_OPT,
    tolerance: str | None = TOL_OPT,
    scorer: MusicScorer = SCORER_OPT,
):
    """A PNG per pair: onset envelope / kinematic amplitude with both beat sets."""
    tol = _tolerance(tolerance)
    with _one_line_errors():
        res = evaluate_beats(generated, reference, kind, fps, tol, out, scorer=scorer)
    typer.echo(f"wrote {res['n']} plot(s) to {out}")


@app.command()
def fad(
    generated: Path = GEN_ARG,
    reference: Path = REF_OPT,
    embedder: str = typer.Option(
        F.DEFAULT_EMBEDDER,
        "--embedder",
        "-e",
        help=f"One of: {', '.join(F.EMBEDDERS)}. Values are only comparable within one embedder.",
    ),
    vggish_weights: Path | None = typer.Option(
        None, "--vggish-weights", help="Local torchvggish state dict (vggish-10086976.pth)."
    ),
    json_out: Path | None = JSON_OPT,
):
    """Fréchet Audio Distance between two sets of audio files (not paired)."""
    with _one_line_errors():
        gen = scan(generated, MEDIA_EXTENSIONS, "generated")
        ref = scan(reference, MEDIA_EXTENSIONS, "reference")
        emb = F.get_embedder(embedder, vggish_weights=vggish_weights)
        res = F.fad_from_files(list(gen.values()), list(ref.values()), emb)
    _print(report.fad_table(res))
    if res["rank_deficient"]:
        typer.echo(
            f"warning: no more windows than the embedding's {res['dim']} dimensions: the "
            "covariance is singular and the value is dominated by regularisation",
            err=True,
        )
    _save_json(res, json_out)


@app.command()
def motion(
    generated: Path = GEN_ARG,
    classifier: Path | None = CLASSIFIER_OPT,
    reference: Path | None = typer.Option(
        None,
        "--reference",
        "-r",
        help="Ground-truth .npy motions: FID (unpaired) and Mean KLD (paired by stem / condition).",
    ),
    fps: float | None = FPS_OPT,
    pairs: int = PAIRS_OPT,
    seed: int = SEED_OPT,
    json_out: Path | None = JSON_OPT,
):
    """Motion quality on classifier features: FID, Mean KLD, Diversity (inter and intra).

    Generated .npy motions [T,14,2] (fps from <stem>.json or --fps) are encoded by the classifier's encoder. Diversity groups samples by condition, read from the stem (<cond>_dance_s<seed>_<k>, <cond>_s<k>); Mean KLD is the mean KL(p_ref || p_gen) of the class distributions of each generated clip and its ground truth (the reference stem equal to the stem, else to its condition)."""  # noqa: E501 (one line: typer keeps a docstring's line breaks)
    with _one_line_errors():
        res = evaluate_motion(generated, reference, classifier, fps, pairs, seed)
    _notes(res["notes"])
    _print(report.motion_table(res))
    _save_json(res, json_out)


@app.command()
def diversity(
    generated: Path = GEN_ARG,
    kind: Kind = typer.Option(
        Kind.music, "--kind", "-k", help="music: clip embeddings of --embedder; motion: features of --classifier."
    ),
    classifier: Path | None = CLASSIFIER_OPT,
    embedder: str = typer.Option(
        F.DEFAULT_EMBEDDER, "--embedder", "-e", help=f"Music: one of {', '.join(F.EMBEDDERS)} (the paper: vggish)."
    ),
    vggish_weights: Path | None = typer.Option(None, "--vggish-weights", help="Local torchvggish state dict."),
    fps: float | None = FPS_OPT,
    pairs: int = PAIRS_OPT,
    seed: int = SEED_OPT,
    json_out: Path | None = JSON_OPT,
):
    """Inter- and intra-diversity of generated samples (appendix B.4, B.5).

    Conditions come from file stems: momu-generate's <cond>_dance_s<seed>_<k> / <cond>_music_s<seed>_<k>, or <cond>_s<k>; any other stem is its own condition. Inter: mean distance of random pairs from different conditions; intra: mean distance among the samples of one condition, averaged over conditions."""  # noqa: E501 (one line: typer keeps a docstring's line breaks)
    with _one_line_errors():
        res = evaluate_diversity(generated, kind.value, classifier, embedder, vggish_weights, fps, pairs, seed)
    _print(report.diversity_table(res))
    _save_json(res, json_out)


@app.command("all")
def all_cmd(
    runs: list[Path] = typer.Argument(
        ...,
        help="Run outputs: a folder of generated samples (one method), or a folder of such folders (one method each).",
        show_default=False,
    ),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        "-r",
        help="Ground truth: <cond> music files (beats, FAD) and <cond>.npy motions (FID, Mean KLD).",
    ),
    classifier: Path | None = CLASSIFIER_OPT,
    vggish_weights: Path | None = typer.Option(
        None, "--vggish-weights", help="Also FAD[vggish] and Diversity[vggish] (the paper's)."
    ),
    fps: float | None = FPS_OPT,
    tolerance: str | None = TOL_OPT,
    scorer: MusicScorer = SCORER_OPT,
    metric: str | None = METRIC_OPT,
    pairs: int = PAIRS_OPT,
    seed: int = SEED_OPT,
    json_out: Path | None = typer.Option(None, "--json", help="Write every figure and note here."),
    md_out: Path | None = typer.Option(None, "--markdown", help="Write the tables here."),
):
    """Every metric the files allow, as tables laid out like the paper's (rows: methods).

    Motion-to-music: BCS CSD BHS HSD F1 (generated music vs reference music), FAD and Diversity of the music. Music-to-motion: BCS CSD BHS HSD F1 (kinematic beats vs reference music), FID, Diversity, Mean KLD (with --classifier). Every beat metric of the field (--metric, default all) is also reported side by side, a row per method and metric; the paper's tables use the first (loris, or tolerance with --tolerance). What cannot be computed is skipped with a one-line note saying why."""  # noqa: E501 (one line: typer keeps a docstring's line breaks)
    tol = _tolerance(tolerance)
    names = _metrics(metric or "all", tol)  # default: every beat metric, side by side
    if tol is not None and metric is None:
        names = ["tolerance"] + [n for n in names if n != "tolerance"]
    with _one_line_errors():
        res = evaluate_all(
            runs, reference, classifier, vggish_weights, fps, tol, pairs, seed, scorer=scorer, metrics=names
        )
    text = report.markdown(res)
    _notes(report.method_notes(res))
    typer.echo(report.markdown_tables(text))
    _save_json(res, json_out)
    _save_text(text, md_out)


@app.command()
def ceiling(
    data: list[Path] = typer.Argument(
        ..., help="Extracted data folders (momu-data extract --out).", show_default=False
    ),
    name: list[str] | None = typer.Option(
        None, "--name", help="A name per data folder, in order (default: the folder name)."
    ),
    title: str = typer.Option("dataset", "--title", help="Title of the markdown report."),
    tolerance: str | None = TOL_OPT,
    bin_seconds: float = typer.Option(1.0, "--bin-seconds", help="LORIS bin length."),
    label: str = typer.Option("", "--label", help="Also score per value of this label (genre, style, ...)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the figures here."),
    md_out: Path | None = typer.Option(None, "--markdown", help="Write the report here."),
):
    """The ceiling for generators: each clip's real motion against its own music (and a floor of
    mismatched pairs), scored as `beats` scores a generated pair."""
    names = list(name or [])
    if names and len(names) != len(data):
        fail(f"{len(names)} --name for {len(data)} data folders", 1)
    tol = _tolerance(tolerance)
    with _one_line_errors():
        results = ceiling_report(
            list(zip(names or [d.name for d in data], data)), tolerance=tol, bin_s=bin_seconds, label=label
        )
    text = beat_report_markdown(results, title)
    typer.echo(text)
    if json_out is not None:
        io.write_json(json_out, {"title": title, "results": results})
    if md_out is not None:
        with io.atomic_path(md_out) as tmp:
            tmp.write_text(text)


@app.command()
def heldout(
    shards: Path = typer.Argument(Path("shards"), help="A `momu-data shard` folder (its held-out splits are used)."),
    checkpoints: Path = typer.Option(
        Path("runs"), "--checkpoints", help="Folder with vae/ and the diffusion runs (as momu-generate)."
    ),
    tasks: str = typer.Option(
        "music2motion,motion2music", "--tasks", help="Directions to check: music2motion, motion2music or both."
    ),
    splits: str = typer.Option("val,test", "--splits", help="Splits whose clips are scored (never trained on)."),
    steps: int | None = typer.Option(
        None,
        "--steps",
        help="Sampling steps. Default: as momu-generate (50 for paper-preset runs, 12 otherwise).",
        show_default=False,
    ),
    solver: str | None = typer.Option(
        None,
        "--solver",
        help="ddim or dpm++2m. Default: as momu-generate (ddim for paper-preset runs, dpm++2m otherwise).",
        show_default=False,
    ),
    guidance: float | None = typer.Option(
        None,
        "--guidance",
        help="Guidance scale of the guided samples. Default: each run's scale as `momu-eval guidance` chose it "
        "(its guidance.json), else 3.",
        show_default=False,
    ),
    tolerance: str = typer.Option("0.1s", "--tolerance", help="Beats within this many seconds match."),
    samples: int = typer.Option(
        1, "--samples", help="Samples per clip and condition (more average out the sampling noise)."
    ),
    smooth: float | None = typer.Option(
        None,
        "--smooth",
        help="Smoothing of the generated motion, sigma in seconds (0: off). Default: as momu-generate smooths it.",
        show_default=False,
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write every figure here."),
):
    """Does the condition work? On each held-out clip, generate with guidance and without the
    condition (scale 0, same model and seed) and score the beats against the clip's other
    modality; one line per direction, next to the real pairs' score."""
    tol = _tolerance(tolerance)
    if tol is None:
        fail("--tolerance is needed (e.g. 0.1s)")
    from momu_models.evaluate.heldout import evaluate_heldout, summary_lines
    from momu_models.generate.pipeline import GenerateError

    try:
        with _one_line_errors(), progress() as bar:
            step = _progress_callback(bar, "held-out clips")
            res = evaluate_heldout(
                shards,
                checkpoints,
                tasks=[t.strip() for t in tasks.split(",") if t.strip()],
                splits=tuple(s.strip() for s in splits.split(",") if s.strip()),
                steps=steps,
                guidance=guidance,
                tolerance=tol,
                progress=step,
                solver=solver,
                samples=samples,
                smooth_seconds=smooth,
            )
    except GenerateError as e:  # no trained model in --checkpoints
        fail(str(e), 1)
    for line in summary_lines(res):
        typer.echo(line)
    _save_json(res, json_out)


@app.command()
def guidance(
    shards: Path = typer.Argument(
        Path("shards"), help="A `momu-data shard` folder; the scales are compared on its --split."
    ),
    checkpoints: Path = typer.Option(
        Path("runs"), "--checkpoints", help="Folder with vae/ and the diffusion runs (as momu-generate)."
    ),
    tasks: str = typer.Option(
        "music2motion,motion2music", "--tasks", help="Runs to tune: music2motion, motion2music or both."
    ),
    split: str = typer.Option(
        "val", "--split", help="Split the scales are compared on: one the models never trained on, not test."
    ),
    scales: str = typer.Option("1.5,3,5,7", "--scales", help="Guidance scales to try, comma-separated."),
    steps: int | None = typer.Option(
        None, "--steps", help="Sampling steps. Default: as momu-generate.", show_default=False
    ),
    solver: str | None = typer.Option(
        None, "--solver", help="ddim or dpm++2m. Default: as momu-generate.", show_default=False
    ),
    tolerance: str = typer.Option("0.1s", "--tolerance", help="Beats within this many seconds match."),
    samples: int = typer.Option(1, "--samples", help="Samples per clip and scale."),
    write: bool = typer.Option(
        True,
        "--write/--dry-run",
        help="Record each run's best scale in its folder (guidance.json): momu-generate and momu-eval heldout "
        "then use it by default.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write every figure here."),
):
    """Choose each run's guidance scale: generate on the --split clips at every scale, score the
    beats (music-to-dance: the dance's kinematic beats vs the music's onsets; dance-to-music: the
    music's onsets vs the dance's kinematic beats, F1 within --tolerance) and keep the best."""
    tol = _tolerance(tolerance)
    if tol is None:
        fail("--tolerance is needed (e.g. 0.1s)")
    try:
        tried = [float(x) for x in scales.split(",") if x.strip()]
    except ValueError:
        fail(f"--scales must be numbers separated by commas, got {scales!r}")
    if split.strip() == "test":
        fail("--split test would choose the scale on the clips `momu-eval heldout` reports: use val")
    from momu_models.evaluate.heldout import tune_guidance
    from momu_models.generate.guidance import save_guidance
    from momu_models.generate.pipeline import GenerateError

    try:
        with _one_line_errors(), progress() as bar:
            step = _progress_callback(bar, "clips x scales")
            res = tune_guidance(
                shards,
                checkpoints,
                tasks=[t.strip() for t in tasks.split(",") if t.strip()],
                split=split.strip(),
                scales=tried,
                steps=steps,
                tolerance=tol,
                progress=step,
                solver=solver,
                samples=samples,
            )
    except GenerateError as e:
        fail(str(e), 1)
    for name, r in res.items():
        row = ", ".join(f"{s:g}: {f:.1f}" for s, f in r["f1"].items())
        where = ""
        if write:
            where = f" -> {save_guidance(checkpoints / name, r['guidance'], r['chosen_on'], r['f1'])}"
        typer.echo(
            f"{name}: beat F1 (±{tol:g} s) by guidance scale on {r['chosen_on']['clips']} {split} clips: "
            f"{row}; chosen {r['guidance']:g}{where}"
        )
    _save_json(res, json_out)


def main() -> None:
    setup_logging()
    app()


if __name__ == "__main__":
    main()
