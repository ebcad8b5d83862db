"""The beat metrics of the dance/music generation literature, each as its source defines it
(docs/metrics.md, "Which beat metric"): `momu-eval beats --metric NAME[,NAME...]|all`.

| name | source | per pair |
|---|---|---|
| loris | LORIS's beats_scores.py (the paper's) | 1 s bins: BCS = matched / generated, BHS = matched / reference |
| tolerance | (this toolkit) | one-to-one matching within +-tol s: BCS = hits / generated, BHS = hits / reference |
| d2m | D2M-GAN (Zhu et al. 2022), CDCD | BCS = B_c / B_t (can exceed 100), BHS = B_a / B_t |
| bas-bailando | Bailando (utils/beat_align_score.py) | mean over music beats of exp(-d^2 / 2 sigma^2) |
| bas-aist | AIST++ authors' FACT code (google-research/mint) | mean over kinematic beats of the same |

loris and tolerance are momu_models.evaluate.metrics.beats (binned_scores, tolerance_scores);
this module adds d2m, the two Beat Align Scores with their own beat extraction, and the
per-metric rows and summaries that `momu-eval beats` and `momu-eval all` report.

Beat Align Score (BAS). Both sources compare music beats with kinematic beats at 60 frames/s
(their motion and music rate) and score a distance d (frames) with exp(-d^2 / 2 sigma^2),
sigma^2 = 9, i.e. sigma = 3 frames = 0.05 s. They differ in three ways:

- which beats are averaged: Bailando (lisiyao21/Bailando, ``BA`` / ``calc_db`` / ``get_mb``
  in utils/beat_align_score.py, also found in some versions of utils/metrics_new.py) sums,
  over the music beats, the score of the nearest kinematic beat and divides by the number of music beats:
  a recall of music beats. The FACT / AIST++ code (``alignment_score`` in
  tools/calculate_beat_scores.py) sums, over the kinematic beats, the score of the nearest
  music beat and divides by the number of kinematic beats: a precision of kinematic beats.
  A dance that stops on every music beat and also on every off-beat scores 1 with Bailando
  and about 0.5 with AIST++; a dance that stops once, on one music beat, scores 1 with AIST++.
- kinematic beats: Bailando takes the mean joint speed between consecutive frames [T - 1],
  smooths it with a Gaussian of sigma 5 frames (scipy gaussian_filter, reflect) and takes
  every strict local minimum (scipy argrelextrema, order 1); AIST++ takes the summed joint
  speed with velocity[0] = 0 [T], unsmoothed, and keeps strict minima over +-10 frames
  (order 10). The speed between frames i and i + 1 sits at index i in Bailando and at
  index i + 1 in AIST++: the same stop is one frame (17 ms at 60 fps) later in AIST++.
- music beats: both run ``librosa.beat.beat_track`` on an onset-strength envelope of audio
  loaded at 30,720 Hz (hop 512: 60 frames/s, the motion's rate). Bailando (_prepro_aistpp.py,
  extractor.py ``get_onset_beat``: column 53 of its music features): the envelope of the HPSS
  percussive part with median aggregation, beat_track's defaults (start_bpm 120, tightness
  100). AIST++ (FACT tools/preprocessing.py, the last feature column): the envelope of the
  whole signal (mean aggregation), start_bpm the tempo in the AIST music name (mBR0: 80 BPM,
  ...; mHO: 110 + 5 k), tightness 100.

Both use the music beats inside the motion (Bailando: the first T - 1 frames, AIST++: T).
Neither handles an empty set (Bailando's np.min of an empty array raises, a track without
music beats divides by zero; AIST++ returns 0 without kinematic beats and raises without
music beats): here every case with nothing to average or nothing to match scores 0.

Frame rates. Our motion is 62.5 frames/s (or a file's own fps), not 60. Every frame count
is converted to seconds at 60 frames/s and back at the motion's rate: distances are in
seconds with sigma = 0.05 s (3.125 frames at 62.5 fps: sigma^2 = 9.77 frames^2), Bailando's
smoothing sigma 5 frames = 1/12 s (5.21 frames at 62.5 fps) and AIST++'s order 10 frames =
1/6 s (round(10.42) = 10 frames at 62.5 fps). At 60 fps this is the sources' arithmetic; an
implementation that keeps sigma = 3 frames on 30 fps motion (0.1 s) scores higher, one reason
papers' BAS values differ.

D2M (D2M-GAN, Zhu et al. 2022, as CDCD issue 4 restates it): B_t beats in the reference
music, B_c in the generated sample, B_a aligned: BCS = B_c / B_t, BHS = B_a / B_t. BCS is a
ratio of counts, not a share of hits: it exceeds 100 when the generated sample has more
beats than the reference (CDCD issue 4) and 100 does not mean aligned. The papers do not say how beats are aligned;
the one public scorer of that protocol, LORIS's beats_scores.py, counts 1 s bins (its
variables total, cover, hit are B_t, B_c, B_a) and divides hit by cover for BCS. d2m counts
the same bins by default, so its BHS is loris's BHS, and with a tolerance it counts beats
matched one-to-one within +-tol. Beats are appendix B.4's onsets (``onset_detect``, as D2M-GAN
and CDCD, CDCD issue 3), not ``beat_track``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from momu_models.evaluate.metrics import beats as B
from momu_models.evaluate.metrics.edges import joint_speed

DEFAULT_TOLERANCE_S = 0.1  # the tolerance metric's window when --metric asks for it without --tolerance

# Both BAS sources run at 60 frames/s: motion (AIST++) and music (hop 512 at 30,720 Hz).
BAS_FPS = 60.0
BAS_HOP = 512
BAS_SR = int(BAS_FPS) * BAS_HOP  # 30,720 Hz
BAS_SIGMA_FRAMES = 3.0  # sigma^2 = 9 frames^2 at 60 fps, both sources
BAS_SIGMA_S = BAS_SIGMA_FRAMES / BAS_FPS  # 0.05 s
BAILANDO_SMOOTH_FRAMES = 5.0  # Gaussian smoothing of the joint speed (60 fps frames)
AIST_ORDER_FRAMES = 10  # argrelextrema order of the kinematic beats (60 fps frames)
LIBROSA_START_BPM = 120.0  # beat_track's default start_bpm


@dataclass(frozen=True)
class MetricInfo:
    name: str
    source: str
    kinds: tuple[str, ...]  # the --kind values it scores: music (generated music), motion (generated motion)


METRICS = {
    "loris": MetricInfo("loris", "LORIS beats_scores.py (the paper's)", ("music", "motion")),
    "tolerance": MetricInfo("tolerance", "one-to-one matching within +-tol (this toolkit)", ("music", "motion")),
    "bas-bailando": MetricInfo("bas-bailando", "Bailando utils/metrics_new.py", ("motion",)),
    "bas-aist": MetricInfo("bas-aist", "AIST++ / FACT tools/calculate_beat_scores.py", ("motion",)),
    "d2m": MetricInfo("d2m", "D2M-GAN / CDCD", ("music", "motion")),
}
METRIC_NAMES = tuple(METRICS)
MATCHING = ("loris", "tolerance")  # the metrics whose BCS / BHS / F1 are shares of matches
BAS_METRICS = ("bas-bailando", "bas-aist")


def parse_metrics(text: str | None, tolerance: float | None = None) -> list[str]:
    """Metric names from a comma-separated list ("loris,bas-aist") or "all" (every metric);
    None gives the default: "tolerance" when a tolerance is set, else "loris". Unknown names
    are a ValueError naming the choices."""
    if text is None:
        return ["tolerance" if tolerance is not None else "loris"]
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"--metric: no metric named; choose from {', '.join(METRIC_NAMES)} or all")
    out: list[str] = []
    for n in names:
        if n == "all":
            out += list(METRIC_NAMES)
        elif n in METRICS:
            out.append(n)
        else:
            raise ValueError(f"--metric: unknown beat metric {n!r}; choose from {', '.join(METRIC_NAMES)} or all")
    return list(dict.fromkeys(out))


def for_kind(metrics: list[str], kind: str) -> list[str]:
    """The metrics that score a kind of generated sample (BAS: generated motion only)."""
    return [m for m in metrics if kind in METRICS[m].kinds]


def primary_metric(metrics: list[str]) -> str:
    """The metric whose BCS / BHS / F1 fill the paper-style columns: the first of loris and
    tolerance asked for, loris when neither is."""
    return next((m for m in metrics if m in MATCHING), "loris")


def primary_tolerance(metrics: list[str], tolerance: float | None = None) -> float | None:
    """The primary metric's window: the tolerance (default 0.1 s) when it is "tolerance",
    None (1 s bins) when it is loris."""
    if primary_metric(metrics) != "tolerance":
        return None
    return DEFAULT_TOLERANCE_S if tolerance is None else tolerance


def metric_label(metric: str, tolerance: float | None = None) -> str:
    """A metric as tables name it: loris -> "loris (bins-1s)", tolerance -> "tolerance (±0.1 s)"."""
    tol = DEFAULT_TOLERANCE_S if tolerance is None else tolerance
    if metric == "loris":
        return f"loris ({B.method_name(None)})"
    if metric == "tolerance":
        return f"tolerance (±{tol:g} s)"
    if metric == "d2m":
        return f"d2m ({B.method_name(tolerance)})"
    return metric


# ---- D2M --------------------------------------------------------------------------------


def d2m_scores(generated, reference, duration: float, tolerance: float | None = None) -> B.PairScore:
    """D2M-GAN's BCS = B_c / B_t and BHS = B_a / B_t of one pair, as fractions (BCS can
    exceed 1). Counted in LORIS's 1 s bins, or in beats matched within +-tolerance s; 0 when
    the reference has no beat (B_t = 0), as LORIS's ``x / total if total else 0``."""
    s = B.pair_scores(generated, reference, duration, tolerance)
    n_r = s.n_reference
    return B.PairScore(
        s.n_generated / n_r if n_r else 0.0, s.n_matched / n_r if n_r else 0.0, s.n_generated, n_r, s.n_matched
    )


# ---- Beat Align Score -------------------------------------------------------------------


def _times(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    return np.sort(t[np.isfinite(t)])


def beat_align_score(music_beats, motion_beats, over: str, sigma_s: float = BAS_SIGMA_S) -> float:
    """Mean over the `over` beats ("music": Bailando, "motion": AIST++) of
    exp(-d^2 / (2 sigma_s^2)), d the distance (s) to the nearest beat of the other set.
    0 when either set is empty."""
    if over not in ("music", "motion"):
        raise ValueError(f"over must be 'music' or 'motion', got {over!r}")
    if sigma_s <= 0:
        raise ValueError(f"sigma must be positive, got {sigma_s}")
    music, motion = _times(music_beats), _times(motion_beats)
    anchors, targets = (music, motion) if over == "music" else (motion, music)
    if anchors.size == 0 or targets.size == 0:
        return 0.0
    d = np.abs(anchors[:, None] - targets[None, :]).min(axis=1)
    return float(np.mean(np.exp(-(d**2) / (2.0 * sigma_s**2))))


def bas_bailando(music_beats, motion_beats, sigma_s: float = BAS_SIGMA_S) -> float:
    """Bailando's Beat Align Score: averaged over the music beats (recall of music beats)."""
    return beat_align_score(music_beats, motion_beats, "music", sigma_s)


def bas_aist(music_beats, motion_beats, sigma_s: float = BAS_SIGMA_S) -> float:
    """The AIST++ / FACT Beat Align Score: averaged over the kinematic beats (precision)."""
    return beat_align_score(music_beats, motion_beats, "motion", sigma_s)


def kinematic_beats_bailando(pose: np.ndarray, fps: float) -> np.ndarray:
    """Bailando's kinematic beats (s) of a pose [T, J, D] at fps: strict local minima of the
    mean joint speed between frames (index i: frames i -> i + 1, at time i / fps) after a
    Gaussian smoothing of 5 frames at 60 fps (sigma 5 fps / 60 frames here)."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import argrelextrema

    speed = joint_speed(pose)
    if speed.size < 3:
        return np.zeros(0, dtype=np.float64)
    smooth = gaussian_filter1d(speed, sigma=BAILANDO_SMOOTH_FRAMES * fps / BAS_FPS)
    return argrelextrema(smooth, np.less)[0] / fps


def aist_order(fps: float) -> int:
    """AIST++'s minimum window, 10 frames at 60 fps, in frames at fps (at least 1)."""
    return max(1, int(round(AIST_ORDER_FRAMES * fps / BAS_FPS)))


def kinematic_beats_aist(pose: np.ndarray, fps: float) -> np.ndarray:
    """The AIST++ / FACT kinematic beats (s) of a pose [T, J, D] at fps: frames t whose joint
    speed (frames t - 1 -> t; 0 at t = 0) is strictly below every other within +-aist_order(fps)
    frames (argrelextrema, clipped at the ends), at time t / fps. The source sums the joints'
    speeds where Bailando averages them: the same minima."""
    from scipy.signal import argrelextrema

    speed = joint_speed(pose)
    if speed.size < 2:
        return np.zeros(0, dtype=np.float64)
    env = np.concatenate([[0.0], speed])
    return argrelextrema(env, np.less, order=aist_order(fps))[0] / fps


def _at_bas_rate(y: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    y = np.asarray(y, dtype=np.float32)
    return y if sr == BAS_SR else librosa.resample(y, orig_sr=sr, target_sr=BAS_SR)


def music_beats_bailando(y: np.ndarray, sr: int = BAS_SR) -> np.ndarray:
    """Bailando's music beats (s): beat_track (defaults) on the median-aggregated onset
    strength of the HPSS percussive part, at 30,720 Hz (y is resampled when sr differs)."""
    import librosa

    y = _at_bas_rate(y, sr)
    if y.size == 0:
        return np.zeros(0, dtype=np.float64)
    _, percussive = librosa.effects.hpss(y)
    env = librosa.onset.onset_strength(y=percussive, sr=BAS_SR, hop_length=BAS_HOP, aggregate=np.median)
    _, frames = librosa.beat.beat_track(onset_envelope=env, sr=BAS_SR, hop_length=BAS_HOP)
    return np.asarray(frames, dtype=np.float64) / BAS_FPS


_AIST_MUSIC = re.compile(r"(?:^|_)m(BR|PO|LO|MH|LH|WA|KR|JS|JB|HO)([0-9])(?:_|$)")


def aist_tempo(name: str) -> float | None:
    """The tempo (BPM) the AIST++ code reads from an AIST music id in a name (mBR0 -> 80,
    mHO2 -> 120, as in a sequence name gBR_sBM_c01_d04_mBR0_ch01), else None."""
    m = _AIST_MUSIC.search(name)
    if not m:
        return None
    k = int(m.group(2))
    return float(k * 5 + 110) if m.group(1) == "HO" else float(k * 10 + 80)


def music_beats_aist(y: np.ndarray, sr: int = BAS_SR, start_bpm: float | None = None) -> np.ndarray:
    """The AIST++ / FACT music beats (s): beat_track(start_bpm, tightness=100) on the onset
    strength of the signal at 30,720 Hz (y is resampled when sr differs). start_bpm: the
    AIST name's tempo (aist_tempo); None: beat_track's default, 120."""
    import librosa

    y = _at_bas_rate(y, sr)
    if y.size == 0:
        return np.zeros(0, dtype=np.float64)
    env = librosa.onset.onset_strength(y=y, sr=BAS_SR, hop_length=BAS_HOP)
    bpm = LIBROSA_START_BPM if start_bpm is None else float(start_bpm)
    _, frames = librosa.beat.beat_track(
        onset_envelope=env, sr=BAS_SR, hop_length=BAS_HOP, start_bpm=bpm, tightness=100
    )
    return np.asarray(frames, dtype=np.float64) / BAS_FPS


def bas_music_beats(metric: str, y: np.ndarray, sr: int = BAS_SR, name: str = "") -> np.ndarray:
    """The music beats a BAS metric scores against, by its source's extraction; name: the
    music's file stem (AIST++ reads its tempo from it)."""
    if metric == "bas-bailando":
        return music_beats_bailando(y, sr)
    if metric == "bas-aist":
        return music_beats_aist(y, sr, aist_tempo(name))
    raise ValueError(f"not a BAS metric: {metric!r}")


@dataclass(frozen=True)
class BASScore:
    """One pair's Beat Align Score (0..1) and the beats it compared (s)."""

    value: float
    music_beats: np.ndarray = field(repr=False)
    motion_beats: np.ndarray = field(repr=False)


def bas_pair(metric: str, music_beats, pose: np.ndarray, fps: float) -> BASScore:
    """A BAS metric of one generated motion against its music's beats (bas_music_beats):
    the source's kinematic beats, the music beats inside the motion (Bailando: the T - 1
    speed frames, t < (T - 1) / fps; AIST++: t < T / fps), the source's average."""
    T = np.asarray(pose).shape[0]
    music = _times(music_beats)
    if metric == "bas-bailando":
        motion = kinematic_beats_bailando(pose, fps)
        music = music[music < (T - 1) / fps - 1e-9]
        return BASScore(bas_bailando(music, motion), music, motion)
    if metric == "bas-aist":
        motion = kinematic_beats_aist(pose, fps)
        music = music[music < T / fps - 1e-9]
        return BASScore(bas_aist(music, motion), music, motion)
    raise ValueError(f"not a BAS metric: {metric!r}")


# ---- every metric of a pair, rows and summaries ------------------------------------------


def pair_metrics(
    metrics: list[str],
    gen_beats,
    ref_beats,
    duration: float,
    tolerance: float | None = None,
    pose: np.ndarray | None = None,
    fps: float | None = None,
    bas_music: dict | None = None,
) -> dict:
    """{metric: PairScore | BASScore} of one pair. gen_beats / ref_beats: the appendix B.4
    beats (onsets, kinematic beats) that loris, tolerance and d2m match; duration: the
    generated clip's (s); tolerance: the window of "tolerance" (default 0.1 s) and, when set,
    d2m's unit; pose / fps / bas_music ({metric: music beats}): what the BAS metrics need."""
    out: dict = {}
    for m in metrics:
        if m == "loris":
            out[m] = B.binned_scores(gen_beats, ref_beats, duration)
        elif m == "tolerance":
            out[m] = B.tolerance_scores(
                gen_beats, ref_beats, duration, DEFAULT_TOLERANCE_S if tolerance is None else tolerance
            )
        elif m == "d2m":
            out[m] = d2m_scores(gen_beats, ref_beats, duration, tolerance)
        elif m in BAS_METRICS:
            if pose is None or fps is None or not bas_music or m not in bas_music:
                raise ValueError(f"{m} scores a generated motion against music beats: give pose, fps and bas_music")
            out[m] = bas_pair(m, bas_music[m], pose, fps)
        else:
            raise ValueError(f"unknown beat metric {m!r}")
    return out


def _secs(t) -> list[float]:
    return [round(float(x), 4) for x in t]


def pair_row(metric: str, score) -> dict:
    """One pair's JSON-ready figures of a metric (percent for BCS / BHS / F1, 0..1 for BAS)."""
    if isinstance(score, BASScore):
        return {
            "BAS": score.value,
            "n_music_beats": int(score.music_beats.size),
            "n_motion_beats": int(score.motion_beats.size),
            "music_beats_s": _secs(score.music_beats),
            "motion_beats_s": _secs(score.motion_beats),
        }
    row = {"BCS": 100.0 * score.bcs, "BHS": 100.0 * score.bhs}
    if metric != "d2m":
        row["F1"] = 100.0 * score.f1
    return {**row, "n_generated": score.n_generated, "n_reference": score.n_reference, "n_matched": score.n_matched}


def summarise(metric: str, scores: list, tolerance: float | None = None) -> dict:
    """A metric's set-level figures from its per-pair scores: loris / tolerance as
    beats.aggregate (BCS CSD BHS HSD F1 in percent); d2m the same without F1 (its BCS is
    not a share of hits); BAS its mean and sample SD over pairs (0..1, SD NaN for one pair)."""
    info = {"metric": metric, "label": metric_label(metric, tolerance), "source": METRICS[metric].source}
    if metric in BAS_METRICS:
        v = np.array([s.value for s in scores], dtype=np.float64)
        if v.size == 0:
            raise ValueError("no pairs to aggregate")
        return {
            **info,
            "BAS": float(v.mean()),
            "BAS_SD": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
            "n": int(v.size),
            "sigma_s": BAS_SIGMA_S,
            "averaged_over": "music beats" if metric == "bas-bailando" else "kinematic beats",
        }
    agg = B.aggregate(scores)
    if metric == "d2m":
        agg.pop("F1")
        unit = "beats" if tolerance is not None else "bins"
    else:
        unit = "beats" if metric == "tolerance" else "bins"
    return {**info, **agg, "unit": unit}
