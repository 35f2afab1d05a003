"""Metrics that say whether a code means something."""

from infogan_pl.metrics.accuracy import hungarian_accuracy

__all__ = ["hungarian_accuracy"]
