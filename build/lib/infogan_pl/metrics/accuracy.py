"""How well a categorical code matches a labelled factor: matched accuracy, NMI, purity."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import normalized_mutual_info_score


def contingency(pred: np.ndarray, target: np.ndarray, n_pred: int, n_target: int) -> np.ndarray:
    """(n_pred, n_target) counts of (code value, label) pairs."""
    counts = np.zeros((n_pred, n_target), dtype=np.int64)
    np.add.at(counts, (np.asarray(pred, dtype=np.int64), np.asarray(target, dtype=np.int64)), 1)
    return counts


def _sizes(pred: np.ndarray, target: np.ndarray, n_pred: int | None, n_target: int | None) -> tuple[int, int]:
    if len(pred) == 0:
        raise ValueError("code metrics need at least one prediction.")
    return n_pred or int(pred.max()) + 1, n_target or int(target.max()) + 1


def hungarian_accuracy(pred, target, n_pred: int | None = None, n_target: int | None = None) -> float:
    """Accuracy under the one-to-one code-value -> label matching that maximizes it (linear_sum_assignment).

    Cluster order is arbitrary, so code value k is never compared to label k directly.
    """
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    counts = contingency(pred, target, *_sizes(pred, target, n_pred, n_target))
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(pred))


def purity(pred, target, n_pred: int | None = None, n_target: int | None = None) -> float:
    """Share of samples whose label is the most common label of their code value (many-to-one matching)."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    counts = contingency(pred, target, *_sizes(pred, target, n_pred, n_target))
    return float(counts.max(axis=1).sum() / len(pred))


def nmi(pred, target) -> float:
    """Normalized mutual information (arithmetic normalization) between code values and labels."""
    return float(normalized_mutual_info_score(np.asarray(target).ravel(), np.asarray(pred).ravel()))
