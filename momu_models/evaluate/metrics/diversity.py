"""Diversity scores of generated samples (appendix B.4; B.5 uses the same definition).

Both are average Euclidean distances between feature vectors (one vector per clip, e.g.
the mean VGGish embedding of a music clip, or a motion encoder's feature of a dance):

- inter-diversity: mean distance over ``n_pairs`` (200 in the paper) random pairs of samples
  generated from *different* conditions (50 clips from 50 motions in the paper). Pairs are
  distinct unordered pairs drawn uniformly without replacement; when fewer cross-condition
  pairs exist than requested, all of them are used.
- intra-diversity: for each condition, mean distance over all pairs among its samples
  (5 per motion in the paper); then the plain mean over conditions. Conditions with fewer
  than two samples have no pair and are skipped.

The music-to-motion "Diversity" of table 6 is, per appendix B.5, the same definition as
B.4's on motion features; a single "Diversity" number is the inter-diversity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.spatial.distance import pdist

DEFAULT_PAIRS = 200
# Cross-condition pairs up to this many are listed explicitly and sampled exactly; above it
# (tens of thousands of samples) rejection sampling of random index pairs is cheaper.
_ENUMERATE_MAX = 4_000_000


def _as_features(features) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    return x


def _cross_pairs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All unordered pairs (i, j) with different condition codes."""
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    groups = np.split(order, bounds)
    ii, jj = [], []
    start = 0
    for g in groups:
        start += g.size
        later = order[start:]
        if later.size:
            ii.append(np.repeat(g, later.size))
            jj.append(np.tile(later, g.size))
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ii), np.concatenate(jj)


def sample_cross_pairs(conditions: Sequence, n_pairs: int = DEFAULT_PAIRS, seed: int | None = 0) -> np.ndarray:
    """Distinct unordered index pairs [k, 2] across different conditions, k = min(n_pairs, all)."""
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    _, codes = np.unique(np.asarray(list(conditions), dtype=object).astype(str), return_inverse=True)
    n = codes.size
    counts = np.bincount(codes).astype(np.int64)
    total = (n * n - int((counts**2).sum())) // 2
    if total == 0:
        raise ValueError("inter-diversity needs samples from at least two different conditions")
    rng = np.random.default_rng(seed)
    if total <= _ENUMERATE_MAX:
        i, j = _cross_pairs(codes)
        pick = rng.choice(i.size, size=min(n_pairs, i.size), replace=False)
        return np.stack([i[pick], j[pick]], axis=1)
    chosen: dict[tuple[int, int], None] = {}  # insertion-ordered set: reproducible output
    while len(chosen) < n_pairs:
        a = rng.integers(0, n, size=4 * n_pairs)
        b = rng.integers(0, n, size=4 * n_pairs)
        for x, y in zip(a.tolist(), b.tolist()):
            if codes[x] != codes[y]:
                chosen.setdefault((min(x, y), max(x, y)))
                if len(chosen) == n_pairs:
                    break
    return np.array(list(chosen), dtype=np.int64)


def inter_diversity(
    features, conditions: Sequence | None = None, n_pairs: int = DEFAULT_PAIRS, seed: int | None = 0
) -> float:
    """Mean Euclidean distance over random pairs of samples from different conditions.

    features: [N, D] (one row per generated clip); conditions: [N] labels of the input each
    clip was generated from (None: every sample is its own condition).
    """
    x = _as_features(features)
    if conditions is None:
        conditions = np.arange(x.shape[0])
    if len(conditions) != x.shape[0]:
        raise ValueError(f"{x.shape[0]} features but {len(conditions)} conditions")
    pairs = sample_cross_pairs(conditions, n_pairs, seed)
    d = np.linalg.norm(x[pairs[:, 0]] - x[pairs[:, 1]], axis=1)
    return float(d.mean())


def intra_diversity(features_per_condition: Mapping | Iterable) -> float:
    """Mean over conditions of the mean pairwise distance among one condition's samples.

    features_per_condition: {condition: [k, D]} or a sequence of [k, D] arrays.
    """
    groups = features_per_condition.values() if isinstance(features_per_condition, Mapping) else features_per_condition
    means = []
    for g in groups:
        x = _as_features(g)
        if x.shape[0] >= 2:
            means.append(float(pdist(x, metric="euclidean").mean()))
    if not means:
        raise ValueError("intra-diversity needs a condition with at least two samples")
    return float(np.mean(means))


def group_by_condition(features, conditions: Sequence) -> dict:
    """{condition: [k, D]} from features [N, D] and their condition labels [N]."""
    x = _as_features(features)
    if len(conditions) != x.shape[0]:
        raise ValueError(f"{x.shape[0]} features but {len(conditions)} conditions")
    idx: dict = {}
    for k, c in enumerate(conditions):
        idx.setdefault(c, []).append(k)
    return {c: x[i] for c, i in idx.items()}
