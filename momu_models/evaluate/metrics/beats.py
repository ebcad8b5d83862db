"""Beat-alignment metrics: BCS, CSD, BHS, HSD and F1 (paper section 5, appendix B.4-B.5).

The paper follows the LORIS benchmark (Yu et al., 2023), whose scorer puts every beat into a
1-second bin of the clip, marks a bin as "has a beat" once however many beats fall into it,
and counts a bin as matched when both the generated and the reference clip have a beat in it:

    BCS = matched bins / generated-beat bins     (beat coverage: precision-like)
    BHS = matched bins / reference-beat bins     (beat hit: recall-like)

Over a set of pairs, BCS and BHS are the means of the per-pair scores, CSD and HSD their
sample standard deviations (ddof=1, as LORIS computes them) and F1 = 2 BCS BHS / (BCS + BHS)
of the two means. Everything is reported in percent.

Edge cases (chosen to match the LORIS scorer, so numbers stay comparable with the paper):
- A pair without generated beats has BCS 0 and a pair without reference beats has BHS 0
  (LORIS: ``hit / total if total else 0``). A pair with neither scores 0 / 0, not 100 / 100:
  a silent clip is not evidence of rhythm.
- Bins span the generated clip, 0 <= t < duration; beats outside it, generated or
  reference, are dropped. LORIS keeps reference beats up to the end of the last partial
  bin (ceil(duration)); we drop those too, because no generated beat can exist there and
  counting them would lower BHS for something the generator could never match.
- With a single pair the sample standard deviations are undefined: CSD and HSD are NaN
  (null in JSON), as numpy's std(ddof=1) gives in the LORIS script.

The tolerance variant replaces bins with one-to-one matching: a generated beat is a hit when
an unused reference beat lies within +-tol seconds of it; BCS = hits / generated beats,
BHS = hits / reference beats, with the same edge cases.

Music beats are the onsets of appendix B.4 (momu_data.features.onsets); motion beats are the
kinematic beats of eq. 2 (momu_data.features.kinematic_beats). For music-to-motion the
reference is the musical beats of the ground-truth music (appendix B.5).
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


def beat_bins(times, duration: float, bin_s: float = DEFAULT_BIN_S) -> np.ndarray:
    """Boolean occupancy [ceil(duration / bin_s)]: bin k is True when a beat lies in it."""
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if bin_s <= 0:
        raise ValueError(f"bin_s must be positive, got {bin_s}")
    n_bins = int(math.ceil(duration / bin_s - _EPS))
    occ = np.zeros(max(n_bins, 1), dtype=bool)
    t = _crop(times, duration)
    if t.size:
        idx = np.minimum(np.floor(t / bin_s + _EPS).astype(np.int64), occ.size - 1)
        occ[idx] = True
    return occ


def binned_scores(generated, reference, duration: float, bin_s: float = DEFAULT_BIN_S) -> PairScore:
    """LORIS BCS / BHS of one pair: beats binned per bin_s seconds over the generated clip."""
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
    """Onset times (s) with the appendix B.4 detector."""
    return features.onsets(y, sr)


def motion_beats(pose: np.ndarray, fps: float) -> np.ndarray:
    """Kinematic beat times (s) of a [T, 14, 2] motion sampled at fps (eq. 2)."""
    return features.kinematic_beats(pose, fps)
