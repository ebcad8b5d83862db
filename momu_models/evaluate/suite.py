"""Folders of generated samples -> motion metrics, diversity and whole paper-style tables:
the work behind `momu-eval motion`, `momu-eval diversity` and `momu-eval all`
(docs/metrics.md, "Motion metrics" and "momu-eval all"). Which files are generated, their
conditions and their references follow momu-generate's names (momu_models.evaluate.files).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from momu_data.timebase import SR
from momu_models.evaluate.files import (
    EvalError,
    MusicScorer,
    condition_of,
    find_motion,
    find_music,
    listing,
    load_motion,
    load_music,
    load_music_as_librosa,
    load_scorer_music,
    reference_stem,
)
from momu_models.evaluate.metrics import beat_variants as V
from momu_models.evaluate.metrics import beats as B
from momu_models.evaluate.metrics import fad as F
from momu_models.evaluate.metrics import motion as M
from momu_models.evaluate.metrics.diversity import DEFAULT_PAIRS

log = logging.getLogger(__name__)


def load_classifier_run(path):
    """The motion classifier of a `momu-train classifier` run folder (features of FID, Mean
    KLD and motion Diversity); a missing or unusable run is an EvalError."""
    from momu_models.models.motion_encoder import load_classifier  # torch: only when motion features are asked for

    if path is None:
        raise EvalError("motion features need a classifier: pass --classifier RUN_DIR (from `momu-train classifier`)")
    try:
        return load_classifier(path)
    except (FileNotFoundError, ValueError, KeyError, OSError) as e:
        raise EvalError(f"--classifier {path}: {e}") from None


def encode_files(model, files: dict[str, Path], fps: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Features [N, D] and logits [N, K] of motion files (in the dict's order)."""
    from momu_models.models.motion_encoder import encode_motions  # torch, as above

    poses, rates = [], []
    for p in files.values():
        pose, rate = load_motion(p, fps)
        poses.append(pose)
        rates.append(rate)
    try:
        return encode_motions(model, poses, rates)
    except ValueError as e:
        raise EvalError(str(e)) from None


def _unpaired_note(metric: str, missing: list[str], reference) -> str:
    return f"{metric} skipped: no reference in {reference} for {len(missing)} generated clip(s): {listing(missing)}"


# ---- motion metrics ---------------------------------------------------------------------


def motion_scores(
    gen: dict[str, Path],
    model,
    fps=None,
    ref: dict[str, Path] | None = None,
    reference=None,
    n_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
    ref_encoded=None,
) -> tuple[dict, list[str]]:
    """FID, Mean KLD and Diversity of generated motions; (result, notes on what was skipped)."""
    notes: list[str] = []
    stems = list(gen)
    g_feat, g_logit = encode_files(model, gen, fps)
    conds = [condition_of(s) for s in stems]
    div = M.diversity_scores(g_feat, conds, n_pairs=n_pairs, seed=seed)
    res = {
        "classifier_label": model.label,
        "classes": model.classes,
        "dim": model.cfg.dim,
        "n_generated": len(stems),
        "Diversity": div["inter"],
        "intra_diversity": div["intra"],
        "n_conditions": div["n_conditions"],
        "diversity_pairs": div["n_pairs"],
        "FID": None,
        "Mean KLD": None,
    }
    if div["inter"] is None:
        notes.append("motion Diversity skipped: it needs generated motions of at least two conditions")
    if ref:
        r_feat, r_logit = ref_encoded if ref_encoded is not None else encode_files(model, ref, fps)
        if min(len(g_feat), len(r_feat)) < 2:
            notes.append("FID skipped: needs at least 2 generated and 2 reference motions")
        else:
            fid = M.motion_fid(g_feat, r_feat)
            res.update(
                {"FID": fid["FID"], "n_reference": fid["n_reference"], "fid_rank_deficient": fid["rank_deficient"]}
            )
            if fid["rank_deficient"]:
                notes.append(
                    f"FID: no more motions than the feature's {fid['dim']} dimensions; the value is "
                    "dominated by regularisation"
                )
        ref_index = {s: i for i, s in enumerate(ref)}
        paired = {s: reference_stem(s, ref_index) for s in stems}
        missing = [s for s, r in paired.items() if r is None]
        if missing:
            notes.append(_unpaired_note("Mean KLD", missing, reference))
        else:
            kl = M.pairwise_kld(r_logit[[ref_index[paired[s]] for s in stems]], g_logit)
            res["Mean KLD"] = float(kl.mean())
            res["pairs"] = [
                {
                    "stem": s,
                    "reference": paired[s],
                    "KLD": float(k),
                    "predicted": model.classes[int(np.argmax(g_logit[i]))],
                    "reference_predicted": model.classes[int(np.argmax(r_logit[ref_index[paired[s]]]))],
                }
                for i, (s, k) in enumerate(zip(stems, kl))
            ]
    return res, notes


def evaluate_motion(
    generated: Path,
    reference: Path | None,
    classifier,
    fps: float | None = None,
    n_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
    model=None,
) -> dict:
    """`momu-eval motion`: FID, Mean KLD, Diversity (+ intra) of a folder of generated motions."""
    gen = find_motion(generated, "generated", generated_only=True)
    if not gen:
        raise EvalError(f"no generated .npy motions in {generated}")
    ref = None
    if reference is not None:
        ref = find_motion(reference, "reference")
        if not ref:
            raise EvalError(f"no reference .npy motions in {reference}")
    model = model or load_classifier_run(classifier)
    res, notes = motion_scores(gen, model, fps, ref, reference, n_pairs, seed)
    return {
        "metric": "motion",
        "generated": str(generated),
        "reference": str(reference) if reference else None,
        "classifier": str(classifier),
        **res,
        "notes": notes,
    }


def evaluate_diversity(
    generated: Path,
    kind: str = "music",
    classifier=None,
    embedder: str = F.DEFAULT_EMBEDDER,
    vggish_weights=None,
    fps: float | None = None,
    n_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
    model=None,
) -> dict:
    """`momu-eval diversity`: inter- and intra-diversity of generated music (clip embeddings of
    the FAD embedder) or motion (classifier features), conditions from the file stems."""
    if kind == "motion":
        files = find_motion(generated, "generated", generated_only=True)
        if len(files) < 2:
            raise EvalError(f"diversity needs at least 2 generated .npy motions in {generated}, found {len(files)}")
        feats, _ = encode_files(model or load_classifier_run(classifier), files, fps)
        name = "Diversity"
    else:
        files = find_music(generated, "generated", generated_only=True)
        if len(files) < 2:
            raise EvalError(f"diversity needs at least 2 generated music files in {generated}, found {len(files)}")
        emb = F.get_embedder(embedder, vggish_weights=vggish_weights)
        feats = np.stack([_clip_embedding(p, emb) for p in files.values()])
        name = f"Diversity[{emb.name}]"
    conds = {s: condition_of(s) for s in files}
    div = M.diversity_scores(feats, list(conds.values()), n_pairs=n_pairs, seed=seed)
    if div["inter"] is None and div["intra"] is None:
        raise EvalError("diversity needs two conditions (inter) or a condition with two samples (intra)")
    return {
        "metric": name,
        "kind": kind,
        name: div["inter"],
        "inter_diversity": div["inter"],
        "intra_diversity": div["intra"],
        "n": div["n"],
        "n_conditions": div["n_conditions"],
        "n_pairs": div["n_pairs"],
        "seed": seed,
        "conditions": conds,
    }


def _clip_embedding(path: Path, emb) -> np.ndarray:
    try:
        return F.clip_embedding(load_music(path), emb)
    except F.EmbedderError as e:
        raise EvalError(f"{path}: {e}") from None


# ---- momu-eval all ----------------------------------------------------------------------


def _has_samples(folder: Path) -> bool:
    return bool(find_music(folder, "run") or find_motion(folder, "run"))


def method_folders(runs: list[Path]) -> list[tuple[str, Path]]:
    """(row name, folder) per method: a folder holding samples is one method; a folder
    holding only sub-folders is one method per sub-folder that holds samples."""
    out = []
    for r in runs:
        r = Path(r)
        if not r.is_dir():
            raise EvalError(f"run outputs: no such folder: {r}")
        if _has_samples(r):
            out.append((r.name, r))
            continue
        subs = [d for d in sorted(r.iterdir()) if d.is_dir() and _has_samples(d)]
        if not subs:
            raise EvalError(f"no generated samples (.npy motions or audio/video) in {r} or its sub-folders")
        out += [(d.name, d) for d in subs]
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise EvalError(f"two methods have the same folder name: {listing(dup)}")
    return out


class AudioCache:
    """Decoded audio, its onsets and its FAD window embeddings per file, computed once for all
    rows. music(): 16 kHz (FAD); scored(): at the beat scorer's rate (MusicScorer);
    bas_beats(): the music beats of the BAS metrics (their own extraction at 30,720 Hz)."""

    def __init__(self, scorer: MusicScorer = MusicScorer.loris):
        self.scorer = MusicScorer(scorer)
        self.audio: dict = {}
        self.scored_audio: dict = {}
        self.onsets: dict = {}
        self.emb: dict = {}
        self.bas: dict = {}

    def music(self, p: Path) -> np.ndarray:
        if p not in self.audio:
            self.audio[p] = load_music(p)
        return self.audio[p]

    def scored(self, p: Path) -> np.ndarray:
        if self.scorer.sr == SR:
            return self.music(p)
        if p not in self.scored_audio:
            self.scored_audio[p] = load_scorer_music(p, self.scorer)
        return self.scored_audio[p]

    def beats(self, p: Path) -> np.ndarray:
        if p not in self.onsets:
            self.onsets[p] = B.music_beats(self.scored(p), self.scorer.sr)
        return self.onsets[p]

    def bas_beats(self, p: Path, metrics) -> dict:
        """{metric: music beats} of the BAS metrics among metrics (the audio is decoded at
        30,720 Hz once per call that needs a beat set not computed yet, and not kept)."""
        want = [m for m in metrics if m in V.BAS_METRICS]
        missing = [m for m in want if (p, m) not in self.bas]
        if missing:
            y = load_music_as_librosa(p, V.BAS_SR)
            for m in missing:
                self.bas[(p, m)] = V.bas_music_beats(m, y, V.BAS_SR, Path(p).stem)
        return {m: self.bas[(p, m)] for m in want}

    def windows(self, p: Path, emb) -> np.ndarray:
        key = (p, emb.name)
        if key not in self.emb:
            self.emb[key] = emb.embed(self.music(p), SR)
        return self.emb[key]


def _beat_table(
    gen: dict[str, Path],
    ref_music: dict[str, Path],
    kind: str,
    cache: AudioCache,
    fps,
    tolerance,
    reference,
    metrics: list[str] | None = None,
) -> tuple[dict | None, list[str]]:
    """Beat scores of generated music (kind "music") or motion against the paired reference
    music: the primary metric's BCS ... F1 at the top (as `momu-eval beats`), every metric
    that scores this kind in "by_metric" (metrics.beat_variants)."""
    missing = [s for s in gen if reference_stem(s, ref_music) is None]
    label = "motion-to-music beats" if kind == "music" else "music-to-motion beats"
    if missing:
        return None, [_unpaired_note(label, missing, reference)]
    metrics = V.for_kind(metrics or V.parse_metrics(None, tolerance), kind)
    primary, tol = V.primary_metric(metrics), V.primary_tolerance(metrics, tolerance)
    scores, rows, longer, by_metric = [], [], [], {m: [] for m in metrics}
    sr = cache.scorer.sr
    for s, g in gen.items():
        r = ref_music[reference_stem(s, ref_music)]
        pose = rate = None
        if kind == "music":
            y = cache.scored(g)
            gb, dur = B.music_beats(y, sr), y.size / sr
        else:
            pose, rate = load_motion(g, fps)
            gb, dur = B.motion_beats(pose, rate, onset_sr=sr), pose.shape[0] / rate
        ref_dur = cache.scored(r).size / sr
        per = V.pair_metrics(metrics, gb, cache.beats(r), dur, tolerance, pose, rate, cache.bas_beats(r, metrics))
        sc = per[primary] if primary in per else B.pair_scores(gb, cache.beats(r), dur, tol)
        scores.append(sc)
        for m in metrics:
            by_metric[m].append(per[m])
        rows.append(
            {
                "stem": s,
                "reference": r.stem,
                "duration_s": round(dur, 6),
                "BCS": 100 * sc.bcs,
                "BHS": 100 * sc.bhs,
                "F1": 100 * sc.f1,
                "metrics": {m: V.pair_row(m, x) for m, x in per.items()},
            }
        )
        if dur > ref_dur + B.DEFAULT_BIN_S:
            longer.append(s)
    notes = [f"{label}: generated outlasts its reference by more than 1 s: {listing(longer)}"] if longer else []
    return {
        **(B.aggregate(scores) if primary in metrics else {"n": len(rows)}),
        "method": B.method_name(tol) if primary in metrics else None,
        "scorer": cache.scorer.value,
        "metrics": metrics,
        "by_metric": {m: V.summarise(m, v, tolerance) for m, v in by_metric.items()},
        "pairs": rows,
    }, notes


def evaluate_method(
    name: str,
    folder: Path,
    reference: Path | None,
    ref_music: dict,
    ref_motion: dict,
    model,
    embedders: list,
    cache: AudioCache,
    fps=None,
    tolerance=None,
    n_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
    ref_encoded=None,
    metrics: list[str] | None = None,
) -> dict:
    """One row of `momu-eval all`: every figure the method's folder allows, with notes on
    what was skipped (ref_encoded: the reference motions' classifier encodings, shared;
    metrics: the beat metrics, metrics.beat_variants)."""
    metrics = metrics or V.parse_metrics(None, tolerance)
    gen_music = find_music(folder, "generated", generated_only=True)
    gen_motion = find_motion(folder, "generated", generated_only=True)
    m2m: dict = {}  # motion-to-music: generated music
    m2d: dict = {}  # music-to-motion: generated motion
    details: dict = {}
    by_metric: dict = {}  # direction -> {metric: summary}
    notes: list[str] = []

    def skip(msg):
        notes.append(msg)

    def beats(generated: dict, kind: str, row: dict, what: str) -> None:
        """Beat scores of generated music or motion against the reference music, into row."""
        if not ref_music:
            skip(
                f"{what} skipped: " + ("no --reference" if reference is None else f"no reference music in {reference}")
            )
            return
        direction = "motion2music" if kind == "music" else "music2motion"
        unfit = [m for m in metrics if m not in V.for_kind(metrics, kind)]
        if unfit and direction == "motion2music":
            skip(f"{', '.join(unfit)} skipped for motion-to-music: they score a generated dance against music")
        if not V.for_kind(metrics, kind):
            return
        res, n = _beat_table(generated, ref_music, kind, cache, fps, tolerance, reference, metrics)
        notes.extend(n)
        if res is not None:
            if res["method"] is not None:
                row.update({k: res[k] for k in ("BCS", "CSD", "BHS", "HSD", "F1")})
            details[f"{direction}_beats"] = res
            by_metric[direction] = res["by_metric"]

    # -- generated music
    if not gen_music:
        skip("motion-to-music metrics skipped: no generated music (audio/video) files")
    else:
        beats(gen_music, "music", m2m, "motion-to-music beats and FAD")
        for emb in embedders:
            g = [cache.windows(p, emb) for p in gen_music.values()]
            short = [s for s, w in zip(gen_music, g) if w.shape[0] == 0]
            if short:
                skip(
                    f"FAD[{emb.name}] and Diversity[{emb.name}] skipped: shorter than one 0.96 s window: "
                    f"{listing(short)}"
                )
                continue
            if ref_music:
                r = [cache.windows(p, emb) for p in ref_music.values()]
                r_short = [s for s, w in zip(ref_music, r) if w.shape[0] == 0]
                if r_short:
                    skip(f"FAD[{emb.name}] skipped: reference shorter than one 0.96 s window: {listing(r_short)}")
                else:
                    fad = F.fad_from_embeddings(np.concatenate(g), np.concatenate(r), emb)
                    m2m[fad["metric"]] = fad["value"]
                    details[fad["metric"]] = {k: v for k, v in fad.items() if k != fad["metric"]}
                    if fad["rank_deficient"]:
                        skip(
                            f"{fad['metric']}: no more windows than its {fad['dim']} dimensions; the value is "
                            "dominated by regularisation"
                        )
            div = M.diversity_scores(
                np.stack([w.mean(0) for w in g]), [condition_of(s) for s in gen_music], n_pairs=n_pairs, seed=seed
            )
            if div["inter"] is None:
                skip(f"Diversity[{emb.name}] skipped: it needs generated music of at least two conditions")
            else:
                m2m[f"Diversity[{emb.name}]"] = div["inter"]
            details[f"Diversity[{emb.name}]"] = div

    # -- generated motion
    if not gen_motion:
        skip("music-to-motion metrics skipped: no generated .npy motions")
    else:
        beats(gen_motion, "motion", m2d, "music-to-motion beats")
        if model is None:
            skip("FID, Mean KLD and motion Diversity skipped: no --classifier")
        else:
            if not ref_motion:
                skip(
                    "FID and Mean KLD skipped: "
                    + ("no --reference" if reference is None else f"no reference .npy motions in {reference}")
                )
            res, n = motion_scores(
                gen_motion, model, fps, ref_motion or None, reference, n_pairs, seed, ref_encoded=ref_encoded
            )
            notes += n
            for k in ("FID", "Diversity", "Mean KLD"):
                if res.get(k) is not None:
                    m2d[k] = res[k]
            details["motion"] = res
    return {
        "name": name,
        "path": str(folder),
        "n_generated_music": len(gen_music),
        "n_generated_motion": len(gen_motion),
        "motion2music": m2m,
        "music2motion": m2d,
        "beats_by_metric": by_metric,
        "notes": notes,
        "details": details,
    }


def evaluate_all(
    runs: list[Path],
    reference: Path | None = None,
    classifier=None,
    vggish_weights=None,
    fps: float | None = None,
    tolerance: float | None = None,
    n_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
    model=None,
    scorer: MusicScorer = MusicScorer.loris,
    metrics: list[str] | None = None,
) -> dict:
    """Every figure the files allow, per method; see docs/metrics.md ("momu-eval all").
    scorer: where music onsets are detected for the beat scores (MusicScorer). metrics: the
    beat metrics (metrics.beat_variants.parse_metrics; default: tolerance with a tolerance,
    else loris); the paper-style columns are the primary one's, every metric is reported side
    by side in "beats_by_metric"."""
    metrics = metrics or V.parse_metrics(None, tolerance)
    methods = method_folders(runs)
    ref_music, ref_motion = {}, {}
    if reference is not None:
        if not Path(reference).is_dir():
            raise EvalError(f"--reference: no such folder: {reference}")
        ref_music = find_music(reference, "reference")
        ref_motion = find_motion(reference, "reference")
    if model is None and classifier is not None:
        model = load_classifier_run(classifier)
    embedders = [F.get_embedder(F.DEFAULT_EMBEDDER)]
    if vggish_weights is not None:
        embedders.append(F.get_embedder("vggish", vggish_weights=vggish_weights))
    cache = AudioCache(scorer)
    ref_encoded = encode_files(model, ref_motion, fps) if (model is not None and ref_motion) else None
    rows = []
    for n, p in methods:
        log.info("evaluating %s (%s)", n, p)
        rows.append(
            evaluate_method(
                n,
                p,
                reference,
                ref_music,
                ref_motion,
                model,
                embedders,
                cache,
                fps,
                tolerance,
                n_pairs,
                seed,
                ref_encoded,
                metrics,
            )
        )
    return {
        "metric": "all",
        "reference": str(reference) if reference else None,
        "classifier": str(classifier) if classifier else None,
        "classifier_label": model.label if model is not None else None,
        "beats_method": B.method_name(V.primary_tolerance(metrics, tolerance)),
        "beats_metrics": metrics,
        "beats_tolerance": tolerance,
        "beats_scorer": cache.scorer.value,
        "embedders": [e.name for e in embedders],
        "methods": rows,
    }
