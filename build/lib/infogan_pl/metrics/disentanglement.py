"""Mutual information gap (Chen et al. 2018) as in google-research/disentanglement_lib."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import mutual_info_score


def discretize(values: np.ndarray, bins: int = 20) -> np.ndarray:
    """Equal-width histogram bins per column (N, D) -> integer bins (N, D), as disentanglement_lib does."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        edges = np.histogram(values[:, j], bins)[1]
        out[:, j] = np.digitize(values[:, j], edges[:-1])
    return out


def mutual_information_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(n_codes, n_factors) MI in nats between discrete code predictions (N, n_codes) and factors (N, n_factors)."""
    return np.array([[mutual_info_score(f, c) for f in factors.T] for c in codes.T])


def mig(mi: np.ndarray, factors: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over factors of (largest - second largest MI with any code) / H(factor); also the per-factor gaps."""
    entropy = np.array([mutual_info_score(f, f) for f in factors.T])
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    gaps = (top[0] - second) / np.maximum(entropy, 1e-12)
    return float(gaps.mean()), gaps
