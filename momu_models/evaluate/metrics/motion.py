"""Motion quality metrics on a motion classifier's outputs (paper table 6, appendix B.5):
FID, Mean KLD and Diversity. See docs/metrics.md for the definitions and their reasons.

Features and logits come from `momu_models.models.motion_encoder.encode_motions` (the encoder of a
`momu-train classifier` run); everything here is plain arrays.

- FID: Fréchet distance between Gaussians fitted to the generated and the reference features
  (unpaired sets), as frechet.py computes it.
- Mean KLD: the mean, over generated clips, of KL(p_ref || p_gen) between the class
  distribution the classifier predicts for the clip's paired ground truth and the one it
  predicts for the generated clip (softmax of the logits, natural log). This is the paired
  classifier KL of audio generation (AudioGen, Make-An-Audio, AudioLDM: "KL" with PANNs), with
  the motion classifier in place of the audio tagger. 0 when the two predictions agree.
- Diversity: inter- and intra-diversity of diversity.py on the features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from momu_models.evaluate.metrics.diversity import DEFAULT_PAIRS, group_by_condition, inter_diversity, intra_diversity
from momu_models.evaluate.metrics.frechet import frechet_from_features


def log_softmax(logits) -> np.ndarray:
    """Row-wise log-softmax of logits [N, K], stable for any magnitude."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def kl_divergence(p, q) -> np.ndarray:
    """KL(p || q) in nats of each row of two probability arrays [..., K] (rows summing to 1).

    0 * log(0 / q) counts 0; p > 0 where q = 0 gives inf (the divergence is unbounded).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"distributions differ in shape: {list(p.shape)} vs {list(q.shape)}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("probabilities must be non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(axis=-1)


def pairwise_kld(ref_logits, gen_logits) -> np.ndarray:
    """KL(softmax(ref) || softmax(gen)) per row [N], from logits (no eps needed: log-softmax
    is finite, so the divergence is too)."""
    r = np.asarray(ref_logits, dtype=np.float64)
    g = np.asarray(gen_logits, dtype=np.float64)
    if r.ndim != 2 or r.shape != g.shape:
        raise ValueError(f"logits must be two [N, K] arrays of one shape, got {list(r.shape)} and {list(g.shape)}")
    if r.shape[0] == 0:
        raise ValueError("Mean KLD needs at least one pair")
    lr, lg = log_softmax(r), log_softmax(g)
    return np.maximum((np.exp(lr) * (lr - lg)).sum(axis=-1), 0.0)  # clip -1e-17 rounding


def mean_kld(ref_logits, gen_logits) -> float:
    """Mean KLD: the mean over pairs of KL(p_ref || p_gen) (see the module docstring)."""
    return float(pairwise_kld(ref_logits, gen_logits).mean())


def motion_fid(generated, reference) -> dict:
    """FID of two feature sets [N, D], [M, D] (unpaired) with the sizes that qualify it."""
    g, r = np.asarray(generated), np.asarray(reference)
    value = frechet_from_features(g, r)
    dim = int(g.shape[1]) if g.ndim == 2 else 1
    return {
        "FID": value,
        "dim": dim,
        "n_generated": int(len(g)),
        "n_reference": int(len(r)),
        # at most D vectors: a singular covariance, the value mostly regularisation
        "rank_deficient": bool(min(len(g), len(r)) <= dim),
    }


def diversity_scores(
    features, conditions: Sequence | None = None, n_pairs: int = DEFAULT_PAIRS, seed: int | None = 0
) -> dict:
    """Inter-diversity ("Diversity" of the tables) and intra-diversity of features [N, D].

    conditions: [N] ids of the input each sample was generated from (None: all different).
    Intra is None when no condition has two samples; inter is None with a single condition.
    """
    x = np.asarray(features, dtype=np.float64)
    conds = list(range(len(x))) if conditions is None else list(conditions)
    groups = group_by_condition(x, conds)
    inter = intra = None
    if len(groups) >= 2:
        inter = inter_diversity(x, conds, n_pairs=n_pairs, seed=seed)
    if any(len(v) >= 2 for v in groups.values()):
        intra = intra_diversity(groups)
    n_cross = (len(x) ** 2 - sum(len(v) ** 2 for v in groups.values())) // 2
    return {
        "Diversity": inter,
        "inter": inter,
        "intra": intra,
        "n": int(len(x)),
        "n_conditions": len(groups),
        "n_pairs": int(min(n_pairs, n_cross)),
    }
