"""Accuracy of a categorical code against a labelled factor after matching code values to labels."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def contingency(pred: np.ndarray, target: np.ndarray, n_pred: int, n_target: int) -> np.ndarray:
    """(n_pred, n_target) counts of (code value, label) pairs."""
    counts = np.zeros((n_pred, n_target), dtype=np.int64)
    np.add.at(counts, (np.asarray(pred, dtype=np.int64), np.asarray(target, dtype=np.int64)), 1)
    return counts


def hungarian_accuracy(pred, target, n_pred: int | None = None, n_target: int | None = None) -> float:
    """Accuracy under the one-to-one code-value -> label matching that maximizes it (linear_sum_assignment).

    Cluster order is arbitrary, so code value k is never compared to label k directly.
    """
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if len(pred) == 0:
        raise ValueError("hungarian_accuracy needs at least one prediction.")
    n_pred = n_pred or int(pred.max()) + 1
    n_target = n_target or int(target.max()) + 1
    counts = contingency(pred, target, n_pred, n_target)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(pred))
