"""Fréchet distance between Gaussians fitted to two feature sets (FID, FAD).

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))

computed as in the reference FID code (pytorch-fid, and frechet-audio-distance, which the
paper used for FAD): sqrt(S1 S2) by scipy.linalg.sqrtm; when that is not finite (singular
product, e.g. fewer samples than dimensions) eps is added to both diagonals and the root is
taken again; a complex result whose diagonal is real up to 1e-3 keeps its real part, and a
larger imaginary part is an error rather than a silently wrong number.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

DEFAULT_EPS = 1e-6


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and sample covariance [D, D] (ddof=1) of features [N, D] (or [N] for D=1)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {list(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    mu = x.mean(axis=0)
    sigma = np.atleast_2d(np.cov(x, rowvar=False))
    return mu, sigma


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # scipy >= 1.16 warns through sqrtm on ill-conditioned input; the finiteness check
    # below is what decides, so the warning would only be noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = DEFAULT_EPS) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"means differ in shape: {mu1.shape} vs {mu2.shape}")
    if s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"covariances {s1.shape}, {s2.shape} do not fit means of size {mu1.size}")
    diff = mu1 - mu2
    covmean = _sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = float(np.max(np.abs(covmean.imag)))
            raise ValueError(f"sqrt(S1 S2) has an imaginary component of {m:.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def frechet_from_features(a, b, eps: float = DEFAULT_EPS) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N, D] and b [M, D]."""
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    return frechet_distance(mu1, s1, mu2, s2, eps)
