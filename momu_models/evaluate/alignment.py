"""Beat alignment of generated files against their references, paired by stem: the work
behind `momu-eval beats` and `momu-eval plot` (docs/metrics.md, "Beat alignment" and
"Envelope sync")."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from momu_data.timebase import FPS, SR
from momu_models.evaluate.files import (
    MEDIA_EXTENSIONS,
    MOTION_EXTENSIONS,
    EvalError,
    Kind,
    MusicScorer,
    load_motion,
    load_music,
    load_music_as_librosa,
    load_scorer_music,
    pair_files,
)
from momu_models.evaluate.metrics import beat_variants as V
from momu_models.evaluate.metrics.beats import (
    DEFAULT_BIN_S,
    aggregate,
    method_name,
    motion_beats,
    music_beats,
    n_bins,
    pair_scores,
)
from momu_models.evaluate.metrics.sync import DEFAULT_MAX_LAG_S, motion_envelope, music_envelope, sync_correlation
from momu_models.evaluate.plots import plot_pair

log = logging.getLogger(__name__)


def score_pair(
    stem: str,
    gen: Path,
    ref: Path,
    kind: Kind,
    fps: float | None = None,
    tolerance: float | None = None,
    plot_dir: Path | None = None,
    sync: bool = False,
    scorer: MusicScorer = MusicScorer.loris,
    metrics: list[str] | None = None,
) -> tuple[dict, dict]:
    """Beats of one pair: a JSON-ready row and {metric: score} (metrics.beat_variants);
    writes its plot if asked. metrics: the beat metrics to score (default: "tolerance" when a
    tolerance is given, else "loris"); the row's BCS / BHS / F1 and the plot are those of the
    first of loris and tolerance (primary_metric), every metric's figures are in
    row["metrics"]. sync: also the envelope sync (metrics.sync) of the generated signal against
    the reference music, as row["sync"]. scorer: where music onsets are detected
    (files.MusicScorer); kinematic beats are picked with windows as long as that detector's."""
    metrics = metrics or V.parse_metrics(None, tolerance)
    primary = V.primary_metric(metrics)
    tol = V.primary_tolerance(metrics, tolerance)
    sr = MusicScorer(scorer).sr
    ref_y = load_scorer_music(ref, scorer)
    ref_beats = music_beats(ref_y, sr)
    pose = gen_y = None
    if kind == Kind.music:
        gen_y = load_scorer_music(gen, scorer)
        gen_beats = music_beats(gen_y, sr)
        duration = gen_y.size / sr
        motion_rate = None
    else:
        pose, motion_rate = load_motion(gen, fps)
        gen_beats = motion_beats(pose, motion_rate, onset_sr=sr)
        duration = pose.shape[0] / motion_rate
    bas_music = {}
    if any(m in V.BAS_METRICS for m in metrics):
        y_bas = load_music_as_librosa(ref, V.BAS_SR)
        bas_music = {m: V.bas_music_beats(m, y_bas, V.BAS_SR, ref.stem) for m in metrics if m in V.BAS_METRICS}
    scores = V.pair_metrics(metrics, gen_beats, ref_beats, duration, tolerance, pose, motion_rate, bas_music)
    s = scores[primary] if primary in scores else pair_scores(gen_beats, ref_beats, duration, tol)
    # the reference beats scored: the binned metric counts the generated clip's last bin whole
    horizon = duration if tol is not None else n_bins(duration) * DEFAULT_BIN_S
    row = {
        "stem": stem,
        "generated": str(gen),
        "reference": str(ref),
        "duration_s": round(duration, 6),
        "reference_duration_s": round(ref_y.size / sr, 6),
        "BCS": 100.0 * s.bcs,
        "BHS": 100.0 * s.bhs,
        "F1": 100.0 * s.f1,
        "n_generated": s.n_generated,
        "n_reference": s.n_reference,
        "n_matched": s.n_matched,
        "generated_beats_s": [round(float(t), 4) for t in gen_beats],
        "reference_beats_s": [round(float(t), 4) for t in ref_beats if t < horizon],
        "metrics": {m: V.pair_row(m, sc) for m, sc in scores.items()},
    }
    if motion_rate is not None:
        row["fps"] = motion_rate
    if sync or plot_dir is not None:  # envelopes and plots are at the 16 kHz time base
        ref_y = ref_y if sr == SR else load_music(ref)
        gen_y = gen_y if gen_y is None or sr == SR else load_music(gen)
    if sync:
        gen_env = music_envelope(gen_y) if pose is None else motion_envelope(pose, motion_rate)
        row["sync"] = sync_correlation(gen_env, music_envelope(ref_y), FPS)
    if plot_dir is not None:
        plot_pair(
            Path(plot_dir) / f"{stem}.png",
            stem,
            duration,
            gen_beats,
            ref_beats,
            ref_y,
            gen_y=gen_y,
            pose=pose,
            fps=motion_rate,
            score=s,
            tolerance=tol,
        )
    log.debug("%s: BCS %.1f BHS %.1f", stem, 100.0 * s.bcs, 100.0 * s.bhs)
    return row, scores


def evaluate_beats(
    generated: Path,
    reference: Path,
    kind: Kind = Kind.music,
    fps: float | None = None,
    tolerance: float | None = None,
    plot_dir: Path | None = None,
    sync: bool = False,
    scorer: MusicScorer = MusicScorer.loris,
    metrics: list[str] | None = None,
) -> dict:
    """Beat alignment of every pair: the summary dict `momu-eval beats` prints and writes as
    JSON. sync: also each pair's envelope sync and, over pairs, their mean ("sync") and sample
    standard deviation ("sync_sd", NaN for one pair). scorer: "loris" (the default: LORIS's
    scorer, the paper's numbers) or "16k" (onsets at the 16 kHz time base). metrics: beat
    metrics by name (metrics.beat_variants; default: tolerance when a tolerance is given, else
    loris); the top-level BCS ... F1 are the primary metric's (the first of loris and
    tolerance), "by_metric" holds every metric's summary. A metric that cannot score the kind
    (BAS on generated music) is an EvalError."""
    kind = Kind(kind)  # also accept "music" / "motion" from Python callers
    scorer = MusicScorer(scorer)
    metrics = metrics or V.parse_metrics(None, tolerance)
    unfit = [m for m in metrics if m not in V.for_kind(metrics, kind.value)]
    if unfit:
        raise EvalError(
            f"{', '.join(unfit)} score(s) a generated dance against music: use --kind motion, or leave them out"
        )
    primary = V.primary_metric(metrics)
    tol = V.primary_tolerance(metrics, tolerance)
    gen_exts = MEDIA_EXTENSIONS if kind == Kind.music else MOTION_EXTENSIONS
    pairs, unused = pair_files(generated, reference, gen_exts, MEDIA_EXTENSIONS)
    if plot_dir is not None:
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
    rows, scores, by_metric = [], [], {m: [] for m in metrics}
    for stem, g, r in pairs:
        row, sc = score_pair(stem, g, r, kind, fps, tolerance, plot_dir, sync, scorer, metrics)
        rows.append(row)
        scores.append(sc[primary] if primary in sc else None)
        for m in metrics:
            by_metric[m].append(sc[m])
    summary = aggregate(scores) if primary in metrics else {"n": len(rows)}
    if sync:
        v = np.array([r["sync"] for r in rows])
        summary.update(
            {
                "sync": float(v.mean()),
                "sync_sd": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                "sync_max_lag_s": DEFAULT_MAX_LAG_S,
            }
        )
    return {
        "metric": "beat-alignment",
        "kind": kind.value,
        "method": method_name(tol) if primary in metrics else metrics[0],
        "unit": ("beats" if tol is not None else "bins") if primary in metrics else None,
        "scorer": scorer.value,
        "onset_sr": scorer.sr,
        "metrics": metrics,
        **summary,
        "by_metric": {m: V.summarise(m, v, tolerance) for m, v in by_metric.items()},
        "unused_reference": unused,
        "pairs": rows,
    }
