"""Beat-alignment metrics: BCS, CSD, BHS, HSD and F1 (paper section 5, appendix B.4-B.5).

The paper's tables use the LORIS benchmark's scorer (Yu et al., 2023; OpenGVLab/LORIS,
``beats_scores.py``); the default here computes the same numbers from the same files.
That scorer loads every file with ``librosa.load`` at its default 22,050 Hz, detects onsets
there with appendix B.4's ``onset_detect`` settings (hop 512: 23.2 ms frames), gives each
clip one 1-second bin per started second of its length, marks a bin as "has a beat" however
many onsets fall into it (an onset at t goes to bin floor(t)), and counts a bin as matched
when both the generated and the reference clip have a beat in it:

    BCS = matched bins / generated-beat bins     (beat coverage: precision-like)
    BHS = matched bins / reference-beat bins     (beat hit: recall-like)

Over a set of pairs, BCS and BHS are the means of the per-pair scores, CSD and HSD their
sample standard deviations (ddof=1) and F1 = 2 BCS BHS / (BCS + BHS) of the two means.
Everything is reported in percent.

Edge cases, as LORIS's scorer has them:
- The bins are the generated clip's: ceil(duration) of them. The reference's bins are cut to
  that number, so a reference beat after the generated clip's last sample but inside its
  last, partial bin still counts (it lies in a bin both clips have).
- A pair without generated beats has BCS 0 and a pair without reference beats has BHS 0
  (``hit / total if total else 0``); a pair with neither scores 0 / 0.
- With a single pair the sample standard deviations are undefined: CSD and HSD are NaN
  (null in JSON), as numpy's std(ddof=1) gives in the LORIS script.
Where LORIS's script stops with an exception we score instead (docs/metrics.md): a reference
with fewer bins than the generated clip (its AssertionError) has no beats in the bins it
lacks; a beat at or past the end of the last bin (its IndexError) is dropped; F1 of two zero
means (its ZeroDivisionError) is 0.

momu_models.evaluate.files.MusicScorer names the two ways to get music onsets from files:
``loris`` (the default: librosa.load's 22,050 Hz and resampler) and ``16k`` (the toolkit's
16 kHz time base, as the extracted data's onsets). The binning is the same for both.

The tolerance variant replaces bins with one-to-one matching: a generated beat is a hit when
an unused reference beat lies within +-tol seconds of it; BCS = hits / generated beats,
BHS = hits / reference beats, with the same zero conventions; beats outside the generated
clip, 0 <= t < duration, are dropped.

Music beats are the onsets of appendix B.4 (momu_data.features.onsets); motion beats are the
kinematic beats of eq. 2 (momu_data.features.kinematic_beats), picked with windows of the
same length in seconds as the music detector's. For music-to-motion the reference is the
musical beats of the ground-truth music (appendix B.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from momu_data import features
from momu_data.timebase import SR

DEFAULT_BIN_S = 1.0  # LORIS bins beats per second

# Floating-point slack for bin edges and tolerance windows: 0.6 / 0.2 is 2.9999999999999996,
# which must land in bin 3; a beat exactly tol away must count as a hit.
_EPS = 1e-9


@dataclass(frozen=True)
class PairScore:
    """Beat alignment of one generated clip against its reference, as fractions in [0, 1].

    n_generated / n_reference / n_matched count bins for the binned metric and beats for
    the tolerance variant.
    """

    bcs: float
    bhs: float
    n_generated: int
    n_reference: int
    n_matched: int

    @property
    def f1(self) -> float:
        return f1_score(self.bcs, self.bhs)


def f1_score(bcs: float, bhs: float) -> float:
    """Harmonic mean of BCS and BHS; 0 when both are 0 (as the LORIS scorer does)."""
    if bcs + bhs <= 0:
        return 0.0
    return 2.0 * bcs * bhs / (bcs + bhs)


def _crop(times, duration: float) -> np.ndarray:
    """Beat times inside the generated clip, 0 <= t < duration, sorted."""
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    t = t[np.isfinite(t)]
    return np.sort(t[(t >= 0.0) & (t < duration)])


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def n_bins(duration: float, bin_s: float = DEFAULT_BIN_S) -> int:
    """Bins of a clip: one per started bin_s (LORIS: ceil(samples / sr) seconds), at least one."""
    return max(int(math.ceil(duration / bin_s - _EPS)), 1)


def beat_bins(times, duration: float, bin_s: float = DEFAULT_BIN_S) -> np.ndarray:
    """Boolean occupancy [ceil(duration / bin_s)]: bin k is True when a beat lies in it.

    Every bin counts whole, the last, partial one too: a beat at or after `duration` but
    before the end of the last bin lies in it (LORIS cuts the reference's bins to the
    generated clip's number, not to its length). Beats outside all bins are dropped."""
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if bin_s <= 0:
        raise ValueError(f"bin_s must be positive, got {bin_s}")
    n = n_bins(duration, bin_s)
    occ = np.zeros(n, dtype=bool)
    t = _crop(times, n * bin_s)
    if t.size:
        idx = np.minimum(np.floor(t / bin_s + _EPS).astype(np.int64), occ.size - 1)
        occ[idx] = True
    return occ


def binned_scores(generated, reference, duration: float, bin_s: float = DEFAULT_BIN_S) -> PairScore:
    """LORIS BCS / BHS of one pair: beats binned per bin_s seconds over the bins of the
    generated clip (duration: its length); the reference's bins are cut (or, when it is
    shorter, padded with empty bins) to their number."""
    g = beat_bins(generated, duration, bin_s)
    r = beat_bins(reference, duration, bin_s)
    n_g, n_r, n_m = int(g.sum()), int(r.sum()), int((g & r).sum())
    return PairScore(_ratio(n_m, n_g), _ratio(n_m, n_r), n_g, n_r, n_m)


def match_within(generated, reference, tol: float) -> int:
    """Size of a maximum one-to-one matching of sorted beats with |g - r| <= tol.

    All windows have the same width, so the greedy sweep (each generated beat, in time order,
    takes the earliest reference beat still unused and within reach) is optimal: a reference
    beat skipped as too early for this generated beat is too early for every later one.
    """
    g = np.sort(np.asarray(generated, dtype=np.float64).reshape(-1))
    r = np.sort(np.asarray(reference, dtype=np.float64).reshape(-1))
    j = hits = 0
    for t in g:
        while j < r.size and r[j] < t - tol - _EPS:
            j += 1
        if j < r.size and r[j] <= t + tol + _EPS:
            hits += 1
            j += 1
    return hits


def tolerance_scores(generated, reference, duration: float, tol: float) -> PairScore:
    """BCS / BHS of one pair with one-to-one matching inside +-tol seconds."""
    if tol < 0:
        raise ValueError(f"tolerance must be >= 0, got {tol}")
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    g, r = _crop(generated, duration), _crop(reference, duration)
    n_m = match_within(g, r, tol)
    return PairScore(_ratio(n_m, g.size), _ratio(n_m, r.size), int(g.size), int(r.size), n_m)


def pair_scores(
    generated, reference, duration: float, tolerance: float | None = None, bin_s: float = DEFAULT_BIN_S
) -> PairScore:
    """Binned scores by default (the paper's numbers), the tolerance variant when given."""
    if tolerance is None:
        return binned_scores(generated, reference, duration, bin_s)
    return tolerance_scores(generated, reference, duration, tolerance)


def method_name(tolerance: float | None = None, bin_s: float = DEFAULT_BIN_S) -> str:
    """Short label of the matching rule, stored with every result."""
    if tolerance is None:
        return f"bins-{bin_s:g}s"
    return f"tolerance-{tolerance:g}s"


def aggregate(scores: list[PairScore]) -> dict:
    """Set-level BCS, CSD, BHS, HSD, F1 (percent) and n from per-pair scores.

    F1 is computed from the mean BCS and BHS, not averaged per pair, as in LORIS.
    """
    n = len(scores)
    if n == 0:
        raise ValueError("no pairs to aggregate")
    bcs = np.array([s.bcs for s in scores], dtype=np.float64) * 100.0
    bhs = np.array([s.bhs for s in scores], dtype=np.float64) * 100.0
    m_c, m_h = float(bcs.mean()), float(bhs.mean())
    return {
        "BCS": m_c,
        "CSD": float(bcs.std(ddof=1)) if n > 1 else float("nan"),
        "BHS": m_h,
        "HSD": float(bhs.std(ddof=1)) if n > 1 else float("nan"),
        "F1": f1_score(m_c, m_h),
        "n": n,
    }


# ---- beats of signals -------------------------------------------------------------------


def music_beats(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Onset times (s) with the appendix B.4 detector, run at the audio's rate sr (LORIS:
    22,050 Hz audio from files.load_scorer_music)."""
    return features.onsets(y, sr)


def motion_beats(pose: np.ndarray, fps: float, onset_sr: int = SR) -> np.ndarray:
    """Kinematic beat times (s) of a [T, 14, 2] motion sampled at fps (eq. 2), picked with
    windows as long in seconds as those of music onsets detected at onset_sr (the rate of
    the music they are scored against)."""
    return features.kinematic_beats(pose, fps, onset_sr=onset_sr)
