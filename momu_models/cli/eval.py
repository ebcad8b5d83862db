"""momu-eval: beat alignment, beat plots, FAD, motion metrics and diversity of generated
samples, and all of them as paper-style tables (docs/metrics.md).

    momu-eval beats GENERATED --reference REFERENCE [--kind music|motion] [--json out.json]
                    [--fps F] [--tolerance 0.1s] [--plot DIR] [--per-pair]
    momu-eval plot  GENERATED --reference REFERENCE --out DIR [--kind ...] [--fps F]
    momu-eval fad   GENERATED --reference REFERENCE [--embedder logmel-stats|vggish]
                    [--vggish-weights PATH] [--json out.json]
    momu-eval motion    GENERATED --classifier RUN [--reference REFERENCE] [--fps F] [--json out.json]
    momu-eval diversity GENERATED [--kind music|motion] [--classifier RUN] [--embedder ...] [--json out.json]
    momu-eval all   RUN_OUTPUTS... [--reference REF] [--classifier RUN] [--vggish-weights PATH]
                    [--json out.json] [--markdown out.md]

GENERATED and REFERENCE are folders (files directly inside, not recursive) or single files.
For beats and plot, generated and reference files pair by file stem; a single reference file
pairs with every generated file. For fad they are two unpaired sets. motion, diversity and
all read momu-generate's file names (condition ids, which file of a sample is generated);
see momu_models/evaluate/suite.py.
"""
from __future__ import annotations

import json
import math
import re
from enum import Enum
from pathlib import Path
from typing import List, NoReturn, Optional

import numpy as np
import typer

from momu_data.timebase import FPS, SR
from momu_data.media import VIDEO_EXTENSIONS, MediaError

from momu_models.evaluate.metrics import beats as B
from momu_models.evaluate.metrics import fad as F

app = typer.Typer(
    help="Evaluate generated music and motion: beat alignment (BCS/BHS), plots, FAD, "
         "motion FID / Mean KLD / Diversity, and all of them as paper-style tables.",
    no_args_is_help=True,
    add_completion=False,
)

MEDIA_EXTENSIONS = tuple(dict.fromkeys(B.AUDIO_EXTENSIONS + VIDEO_EXTENSIONS))


class EvalError(Exception):
    """A one-line reason the evaluation cannot run."""


class Kind(str, Enum):
    music = "music"  # motion-to-music: generated audio vs reference audio
    motion = "motion"  # music-to-motion: generated motion .npy vs reference music


# ---- files ------------------------------------------------------------------------------

def _listing(names: list[str], limit: int = 8) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def scan(path: Path, exts: tuple[str, ...], role: str) -> dict[str, Path]:
    """{stem: file} of a folder's files with one of exts, or of a single file."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in exts:
            raise EvalError(f"{role} file {path} is not one of {' '.join(exts)}")
        return {path.stem: path}
    if not path.is_dir():
        raise EvalError(f"{role}: no such file or folder: {path}")
    found: dict[str, list[Path]] = {}
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix.lower() in exts:
            found.setdefault(f.stem, []).append(f)
    dup = [f"{s} ({', '.join(p.name for p in ps)})" for s, ps in found.items() if len(ps) > 1]
    if dup:
        raise EvalError(f"{role} stems are ambiguous: {_listing(dup)}")
    if not found:
        hint = ""
        if role == "generated" and ".npy" not in exts and any(path.glob("*.npy")):
            hint = " (it holds .npy motions: use --kind motion)"
        raise EvalError(f"no {role} files ({' '.join(exts)}) in {path}{hint}")
    return {s: ps[0] for s, ps in found.items()}


def pair_files(generated: Path, reference: Path, gen_exts, ref_exts) -> tuple[list, list[str]]:
    """[(stem, generated_file, reference_file)] and the unused reference stems.

    Generated stems without a reference are an error (the score would silently cover a
    subset); extra reference files are allowed (e.g. a full test set, a partial generation).
    """
    gen = scan(generated, gen_exts, "generated")
    ref = scan(reference, ref_exts, "reference")
    if Path(reference).is_file():
        (only,) = ref.values()
        return [(s, g, only) for s, g in gen.items()], []
    if Path(generated).is_file():
        (stem,) = gen
        if stem not in ref:
            raise EvalError(f"no reference for {stem!r} in {reference}")
        return [(stem, gen[stem], ref[stem])], [s for s in ref if s != stem]
    missing = [s for s in gen if s not in ref]
    if len(missing) == len(gen):
        raise EvalError(f"no pairs found: no generated stem of {generated} has a reference in {reference} "
                        f"(generated: {_listing(list(gen))}; reference: {_listing(list(ref))})")
    if missing:
        raise EvalError(f"unpaired generated stems (no reference in {reference}): {_listing(missing)}")
    return [(s, gen[s], ref[s]) for s in gen], [s for s in ref if s not in gen]


def parse_tolerance(text: Optional[str]) -> Optional[float]:
    """'0.1s', '100ms' or '0.1' (seconds) -> seconds; None keeps the binned default."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s)?\s*", text)
    if not m:
        raise typer.BadParameter(f"cannot read {text!r}; write e.g. 0.1s or 100ms", param_hint="--tolerance")
    val = float(m.group(1)) * (1e-3 if m.group(2) == "ms" else 1.0)
    return val


# ---- beats ------------------------------------------------------------------------------

def _load_music(path: Path) -> np.ndarray:
    try:
        y = B.load_music(path)
    except MediaError as e:
        raise EvalError(f"{path}: {e}") from None
    if y.size == 0:
        raise EvalError(f"{path}: no audio samples")
    return y


def _load_motion(path: Path, fps: Optional[float]) -> tuple[np.ndarray, float]:
    try:
        return B.load_motion(path), B.motion_fps(path, fps)
    except ValueError as e:
        raise EvalError(str(e)) from None


def score_pair(stem: str, gen: Path, ref: Path, kind: Kind, fps: Optional[float] = None,
               tolerance: Optional[float] = None,
               plot_dir: Optional[Path] = None) -> tuple[dict, B.PairScore]:
    """Beats of one pair: a JSON-ready row and its PairScore; writes its plot if asked."""
    ref_y = _load_music(ref)
    ref_beats = B.music_beats(ref_y)
    pose = gen_y = None
    if kind == Kind.music:
        gen_y = _load_music(gen)
        gen_beats = B.music_beats(gen_y)
        duration = gen_y.size / SR
        motion_rate = None
    else:
        pose, motion_rate = _load_motion(gen, fps)
        gen_beats = B.motion_beats(pose, motion_rate)
        duration = pose.shape[0] / motion_rate
    s = B.pair_scores(gen_beats, ref_beats, duration, tolerance)
    row = {
        "stem": stem,
        "generated": str(gen),
        "reference": str(ref),
        "duration_s": round(duration, 6),
        "reference_duration_s": round(ref_y.size / SR, 6),
        "BCS": 100.0 * s.bcs,
        "BHS": 100.0 * s.bhs,
        "F1": 100.0 * s.f1,
        "n_generated": s.n_generated,
        "n_reference": s.n_reference,
        "n_matched": s.n_matched,
        "generated_beats_s": [round(float(t), 4) for t in gen_beats],
        "reference_beats_s": [round(float(t), 4) for t in ref_beats if t < duration],
    }
    if motion_rate is not None:
        row["fps"] = motion_rate
    if plot_dir is not None:
        plot_pair(Path(plot_dir) / f"{stem}.png", stem, duration, gen_beats, ref_beats, ref_y,
                  gen_y=gen_y, pose=pose, fps=motion_rate, score=s, tolerance=tolerance)
    return row, s


def evaluate_beats(generated: Path, reference: Path, kind: Kind = Kind.music,
                   fps: Optional[float] = None, tolerance: Optional[float] = None,
                   plot_dir: Optional[Path] = None) -> dict:
    """Beat alignment of every pair: the summary dict the CLI prints and writes as JSON."""
    kind = Kind(kind)  # also accept "music" / "motion" from Python callers
    gen_exts = MEDIA_EXTENSIONS if kind == Kind.music else B.MOTION_EXTENSIONS
    pairs, unused = pair_files(generated, reference, gen_exts, MEDIA_EXTENSIONS)
    if plot_dir is not None:
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
    rows, scores = [], []
    for stem, g, r in pairs:
        row, s = score_pair(stem, g, r, kind, fps, tolerance, plot_dir)
        rows.append(row)
        scores.append(s)
    summary = B.aggregate(scores)
    return {
        "metric": "beat-alignment",
        "kind": kind.value,
        "method": B.method_name(tolerance),
        "unit": "beats" if tolerance is not None else "bins",
        **summary,
        "unused_reference": unused,
        "pairs": rows,
    }


def _jsonable(x):
    """NaN (e.g. CSD of one pair) -> null: strict JSON has no NaN."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_json(obj: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def _fmt(v) -> str:
    return "n/a" if isinstance(v, float) and not math.isfinite(v) else f"{v:.1f}"


def print_beats(res: dict, per_pair: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if per_pair:
        t = Table(title="pairs")
        for c in ("stem", "dur (s)", "gen", "ref", "matched", "BCS", "BHS", "F1"):
            t.add_column(c, justify="left" if c == "stem" else "right")
        for r in res["pairs"]:
            t.add_row(r["stem"], f"{r['duration_s']:.2f}", str(r["n_generated"]), str(r["n_reference"]),
                      str(r["n_matched"]), _fmt(r["BCS"]), _fmt(r["BHS"]), _fmt(r["F1"]))
        con.print(t)
    t = Table(title=f"Beat alignment ({res['kind']}, {res['method']}), percent")
    for c in ("BCS", "CSD", "BHS", "HSD", "F1", "n"):
        t.add_column(c, justify="right")
    t.add_row(*(_fmt(res[c]) for c in ("BCS", "CSD", "BHS", "HSD", "F1")), str(res["n"]))
    con.print(t)


# ---- plots ------------------------------------------------------------------------------

def plot_pair(out: Path, stem: str, duration: float, gen_beats, ref_beats, ref_y: np.ndarray,
              gen_y: Optional[np.ndarray] = None, pose: Optional[np.ndarray] = None,
              fps: Optional[float] = None, score: Optional[B.PairScore] = None,
              tolerance: Optional[float] = None, bin_s: float = B.DEFAULT_BIN_S) -> Path:
    """PNG of one pair: the generated signal (music onset envelope, or the motion's kinematic
    amplitude) above the reference music's onset envelope, both beat sets as vertical lines
    on both panels, and, for the binned metric, the matched bins shaded."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    from momu_data import features as rhythm

    def envelope(y):
        # onset_detect's own envelope (default hop 512), so peaks line up with the beats.
        env = librosa.onset.onset_strength(y=y, sr=SR)
        return librosa.times_like(env, sr=SR), env

    if pose is not None:
        amp = rhythm.kinematic_amplitude(rhythm.resample_to_fps(pose, fps, FPS))
        top = (np.arange(amp.size) / FPS, amp, "generated motion: kinematic amplitude")
    else:
        top = (*envelope(gen_y), "generated music: onset strength")
    bottom = (*envelope(ref_y), "reference music: onset strength")

    fig, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    matched = None
    if tolerance is None:
        g = B.beat_bins(gen_beats, duration, bin_s)
        r = B.beat_bins(ref_beats, duration, bin_s)
        matched = np.flatnonzero(g & r)
    gb = [t for t in gen_beats if 0 <= t < duration]
    rb = [t for t in ref_beats if 0 <= t < duration]
    for ax, (t, y, label) in zip(axes, (top, bottom)):
        keep = t <= duration
        ax.plot(t[keep], y[keep], color="0.3", lw=0.8, label=label)
        if matched is not None:
            for k in matched:
                ax.axvspan(k * bin_s, min((k + 1) * bin_s, duration), color="tab:green", alpha=0.12, lw=0)
        for i, b in enumerate(gb):
            ax.axvline(b, color="tab:red", lw=1.0, label="generated beats" if i == 0 else None)
        for i, b in enumerate(rb):
            ax.axvline(b, color="tab:blue", lw=1.0, ls="--", label="reference beats" if i == 0 else None)
        ax.set_xlim(0, duration)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time (s)")
    title = stem
    if score is not None:
        rule = B.method_name(tolerance, bin_s) + ("; shaded: matched bins" if matched is not None else "")
        title += f"   BCS {100 * score.bcs:.1f}  BHS {100 * score.bhs:.1f}  ({rule})"
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


# ---- commands ---------------------------------------------------------------------------

def _fail(msg: str) -> NoReturn:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


GEN_ARG = typer.Argument(..., help="Generated samples: a folder or one file.", show_default=False)
REF_OPT = typer.Option(..., "--reference", "-r", help="Reference samples: a folder or one file.",
                       show_default=False)
KIND_OPT = typer.Option(Kind.music, "--kind", "-k",
                        help="music: generated audio vs reference audio (motion-to-music); "
                             "motion: generated .npy [T,14,2] motion vs reference music (music-to-motion).")
FPS_OPT = typer.Option(None, "--fps", help="Motion frame rate for .npy files without a <stem>.json sidecar.")
TOL_OPT = typer.Option(None, "--tolerance", help="Tolerance-window matching (e.g. 0.1s, 100ms) "
                                                 "instead of the paper's 1 s bins.")


@app.command()
def beats(
    generated: Path = GEN_ARG,
    reference: Path = REF_OPT,
    kind: Kind = KIND_OPT,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the summary and per-pair rows here."),
    fps: Optional[float] = FPS_OPT,
    tolerance: Optional[str] = TOL_OPT,
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write a PNG per pair into this folder."),
    per_pair: bool = typer.Option(False, "--per-pair", help="Print a row per pair too."),
):
    """Beat alignment: BCS, CSD, BHS, HSD, F1 (percent), pairing files by stem."""
    tol = parse_tolerance(tolerance)
    try:
        res = evaluate_beats(generated, reference, kind, fps, tol, plot)
    except (EvalError, ValueError, OSError) as e:
        _fail(str(e))
    if res["unused_reference"]:
        typer.echo(f"note: {len(res['unused_reference'])} reference file(s) without a generated "
                   f"counterpart were ignored", err=True)
    longer = [p["stem"] for p in res["pairs"]
              if p["duration_s"] > p["reference_duration_s"] + B.DEFAULT_BIN_S]
    if longer:
        # Bins past the reference's end can hold no reference beat, so they cost BCS.
        typer.echo(f"note: generated outlasts its reference by more than 1 s: {_listing(longer)}", err=True)
    print_beats(res, per_pair)
    if json_out is not None:
        write_json(res, json_out)
        typer.echo(f"wrote {json_out}")
    if plot is not None:
        typer.echo(f"wrote {res['n']} plot(s) to {plot}")


@app.command("plot")
def plot_cmd(
    generated: Path = GEN_ARG,
    reference: Path = REF_OPT,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the PNGs (<stem>.png).", show_default=False),
    kind: Kind = KIND_OPT,
    fps: Optional[float] = FPS_OPT,
    tolerance: Optional[str] = TOL_OPT,
):
    """A PNG per pair: onset envelope / kinematic amplitude with both beat sets."""
    tol = parse_tolerance(tolerance)
    try:
        res = evaluate_beats(generated, reference, kind, fps, tol, out)
    except (EvalError, ValueError, OSError) as e:
        _fail(str(e))
    typer.echo(f"wrote {res['n']} plot(s) to {out}")


@app.command()
def fad(
    generated: Path = GEN_ARG,
    reference: Path = REF_OPT,
    embedder: str = typer.Option(F.DEFAULT_EMBEDDER, "--embedder", "-e",
                                 help=f"One of: {', '.join(F.EMBEDDERS)}. Values are only comparable "
                                      "within one embedder."),
    vggish_weights: Optional[Path] = typer.Option(None, "--vggish-weights",
                                                  help="Local torchvggish state dict (vggish-10086976.pth)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the result here."),
):
    """Fréchet Audio Distance between two sets of audio files (not paired)."""
    try:
        gen = scan(generated, MEDIA_EXTENSIONS, "generated")
        ref = scan(reference, MEDIA_EXTENSIONS, "reference")
        emb = F.get_embedder(embedder, vggish_weights=vggish_weights)
        res = F.fad_from_files(list(gen.values()), list(ref.values()), emb, loader=_load_music)
    except (EvalError, F.EmbedderError, ValueError, OSError) as e:
        _fail(str(e))
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="Fréchet Audio Distance")
    for c in ("metric", "value", "generated files / windows", "reference files / windows"):
        t.add_column(c, justify="right")
    # escape: rich would read "[logmel-stats]" as a style tag and drop the embedder name.
    t.add_row(escape(res["metric"]), f"{res['value']:.4f}",
              f"{res['n_generated_files']} / {res['n_generated_windows']}",
              f"{res['n_reference_files']} / {res['n_reference_windows']}")
    Console().print(t)
    if res["rank_deficient"]:
        typer.echo(f"warning: no more windows than the embedding's {res['dim']} dimensions: the "
                   "covariance is singular and the value is dominated by regularisation", err=True)
    if json_out is not None:
        write_json(res, json_out)
        typer.echo(f"wrote {json_out}")


CLASSIFIER_OPT = typer.Option(None, "--classifier", "-c", help="A `momu-train classifier` run folder: its "
                               "encoder gives the motion features (FID, Diversity) and its head the class "
                               "distributions (Mean KLD).")
PAIRS_OPT = typer.Option(200, "--pairs", help="Inter-diversity: random cross-condition pairs (paper: 200).")
SEED_OPT = typer.Option(0, "--seed", help="Seed of the inter-diversity pair draw.")


def _print_kv(title: str, rows: list[tuple[str, object]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(escape(k), "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)))
    Console().print(t)


@app.command()
def motion(
    generated: Path = GEN_ARG,
    classifier: Optional[Path] = CLASSIFIER_OPT,
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="Ground-truth .npy motions: "
                                             "FID (unpaired) and Mean KLD (paired by stem / condition)."),
    fps: Optional[float] = FPS_OPT,
    pairs: int = PAIRS_OPT,
    seed: int = SEED_OPT,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the result here."),
):
    """Motion quality on classifier features: FID, Mean KLD, Diversity (inter and intra).

    Generated .npy motions [T,14,2] (fps from <stem>.json or --fps) are encoded by the classifier's encoder. Diversity groups samples by condition, read from the stem (<cond>_dance_s<seed>_<k>, <cond>_s<k>); Mean KLD is the mean KL(p_ref || p_gen) of the class distributions of each generated clip and its ground truth (the reference stem equal to the stem, else to its condition)."""
    from momu_models.evaluate.suite import evaluate_motion

    try:
        res = evaluate_motion(generated, reference, classifier, fps, pairs, seed)
    except (EvalError, ValueError, OSError) as e:
        _fail(str(e))
    for n in res["notes"]:
        typer.echo(f"note: {n}", err=True)
    _print_kv(f"Motion metrics ({res['classifier_label']} classifier, {res['dim']}-d features)",
              [("FID", res["FID"]), ("Mean KLD", res["Mean KLD"]), ("Diversity (inter)", res["Diversity"]),
               ("intra-diversity", res["intra_diversity"]), ("generated", res["n_generated"]),
               ("conditions", res["n_conditions"]), ("reference", res.get("n_reference", "n/a"))])
    if json_out is not None:
        write_json(res, json_out)
        typer.echo(f"wrote {json_out}")


@app.command()
def diversity(
    generated: Path = GEN_ARG,
    kind: Kind = typer.Option(Kind.music, "--kind", "-k", help="music: clip embeddings of --embedder; "
                              "motion: features of --classifier."),
    classifier: Optional[Path] = CLASSIFIER_OPT,
    embedder: str = typer.Option(F.DEFAULT_EMBEDDER, "--embedder", "-e", help=f"Music: one of {', '.join(F.EMBEDDERS)} "
                                 "(the paper: vggish)."),
    vggish_weights: Optional[Path] = typer.Option(None, "--vggish-weights", help="Local torchvggish state dict."),
    fps: Optional[float] = FPS_OPT,
    pairs: int = PAIRS_OPT,
    seed: int = SEED_OPT,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the result here."),
):
    """Inter- and intra-diversity of generated samples (appendix B.4, B.5).

    Conditions come from file stems: momu-generate's <cond>_dance_s<seed>_<k> / <cond>_music_s<seed>_<k>, or <cond>_s<k>; any other stem is its own condition. Inter: mean distance of random pairs from different conditions; intra: mean distance among the samples of one condition, averaged over conditions."""
    from momu_models.evaluate.suite import evaluate_diversity

    try:
        res = evaluate_diversity(generated, kind.value, classifier, embedder, vggish_weights, fps, pairs, seed)
    except (EvalError, F.EmbedderError, ValueError, OSError) as e:
        _fail(str(e))
    _print_kv(res["metric"], [("inter-diversity", res["inter_diversity"]), ("intra-diversity", res["intra_diversity"]),
                              ("samples", res["n"]), ("conditions", res["n_conditions"]), ("pairs", res["n_pairs"])])
    if json_out is not None:
        write_json(res, json_out)
        typer.echo(f"wrote {json_out}")


@app.command("all")
def all_cmd(
    runs: List[Path] = typer.Argument(..., help="Run outputs: a folder of generated samples (one method), or a "
                                      "folder of such folders (one method each).", show_default=False),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="Ground truth: <cond> music files "
                                             "(beats, FAD) and <cond>.npy motions (FID, Mean KLD)."),
    classifier: Optional[Path] = CLASSIFIER_OPT,
    vggish_weights: Optional[Path] = typer.Option(None, "--vggish-weights", help="Also FAD[vggish] and "
                                                  "Diversity[vggish] (the paper's)."),
    fps: Optional[float] = FPS_OPT,
    tolerance: Optional[str] = TOL_OPT,
    pairs: int = PAIRS_OPT,
    seed: int = SEED_OPT,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every figure and note here."),
    md_out: Optional[Path] = typer.Option(None, "--markdown", help="Write the tables here."),
):
    """Every metric the files allow, as tables laid out like the paper's (rows: methods).

    Motion-to-music: BCS CSD BHS HSD F1 (generated music vs reference music), FAD and Diversity of the music. Music-to-motion: BCS CSD BHS HSD F1 (kinematic beats vs reference music), FID, Diversity, Mean KLD (with --classifier). What cannot be computed is skipped with a one-line note saying why."""
    from momu_models.evaluate.suite import evaluate_all, markdown

    tol = parse_tolerance(tolerance)
    try:
        res = evaluate_all(runs, reference, classifier, vggish_weights, fps, tol, pairs, seed)
    except (EvalError, F.EmbedderError, ValueError, OSError) as e:
        _fail(str(e))
    text = markdown(res)
    for m in res["methods"]:
        for n in m["notes"]:
            typer.echo(f"note: {m['name']}: {n}", err=True)
    typer.echo(text.split("\nNotes:")[0].rstrip())
    if json_out is not None:
        write_json(res, json_out)
        typer.echo(f"wrote {json_out}")
    if md_out is not None:
        md_out.parent.mkdir(parents=True, exist_ok=True)
        md_out.write_text(text)
        typer.echo(f"wrote {md_out}")


@app.command()
def ceiling(
    data: List[Path] = typer.Argument(..., help="Extracted data folders (momu-data extract --out).", show_default=False),
    name: Optional[List[str]] = typer.Option(None, "--name", help="A name per data folder, in order (default: the folder name)."),
    title: str = typer.Option("dataset", "--title", help="Title of the markdown report."),
    tolerance: Optional[str] = TOL_OPT,
    bin_seconds: float = typer.Option(1.0, "--bin-seconds", help="LORIS bin length."),
    label: str = typer.Option("", "--label", help="Also score per value of this label (genre, style, ...)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
    md_out: Optional[Path] = typer.Option(None, "--markdown", help="Write the report here."),
):
    """The ceiling for generators: each clip's real motion against its own music (and a floor of
    mismatched pairs), scored as `beats` scores a generated pair."""
    from momu_data import io
    from momu_models.evaluate.ceiling import beat_report_markdown, ceiling_report

    names = list(name or [])
    if names and len(names) != len(data):
        _fail(f"{len(names)} --name for {len(data)} data folders")
    sets = list(zip(names or [d.name for d in data], data))
    try:
        results = ceiling_report(sets, tolerance=parse_tolerance(tolerance), bin_s=bin_seconds, label=label)
    except (ValueError, OSError) as e:
        _fail(str(e))
    text = beat_report_markdown(results, title)
    typer.echo(text)
    if json_out is not None:
        io.write_json(json_out, {"title": title, "results": results})
    if md_out is not None:
        with io.atomic_path(md_out) as tmp:
            tmp.write_text(text)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
