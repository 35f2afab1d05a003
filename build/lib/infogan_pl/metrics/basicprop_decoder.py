"""Reads BasicProp factors straight off an image, so "does c_cat control position?" needs no classifier."""

from __future__ import annotations

import torch
from torch import Tensor

from infogan_pl.data.basicprop import VARIANTS, class_masks

# Pixels brighter than this (in [0, 1]) are foreground. The study's noise keeps foreground >= 150/255 = 0.59 and
# background < 60/255 = 0.235, so noisy real images binarize exactly.
THRESHOLD = 0.4


def _templates(variant: str) -> tuple[Tensor, Tensor]:
    """Foreground templates (C, 784) float and their factors (C, F) long: the classes the data draws."""
    masks, factors = class_masks(variant)
    return masks.reshape(len(masks), -1).float(), factors


def min_template_distance(variant: str) -> int:
    """Pixels in which the two closest class templates differ (rectangles: 20, one row of one bar; line: 112)."""
    t, _ = _templates(variant)
    d = t.sum(1, keepdim=True) + t.sum(1)[None] - 2 * t @ t.T
    d.fill_diagonal_(float("inf"))
    return int(d.min())


@torch.no_grad()
def decode_basicprop(images: Tensor, variant: str, tolerance: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """images (B, 1, 28, 28) in [-1, 1] -> factors (B, F) long, valid (B,) bool, mismatched pixels (B,) long.

    The binarized image is compared with the template of every class (line: 10 bar positions; rectangles: 100
    height pairs). The nearest template gives the factors; an image is valid when at most `tolerance` pixels
    disagree with it. The default tolerance is just under half the distance between the two closest templates
    (rectangles 9 px, line 55 px), so an image between two classes (a bar one row too tall) is never valid.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    if tolerance is None:
        tolerance = (min_template_distance(variant) - 1) // 2
    templates, factors = _templates(variant)
    templates, factors = templates.to(images.device), factors.to(images.device)
    b = ((images.float() + 1) / 2 > THRESHOLD).reshape(len(images), -1).float()
    # |b - t| summed = |b| + |t| - 2 b.t for binary vectors
    mismatch = (b.sum(1, keepdim=True) + templates.sum(1)[None] - 2 * b @ templates.T).round().long()
    best = mismatch.argmin(dim=1)
    error = mismatch.gather(1, best[:, None]).squeeze(1)
    return factors[best], error <= tolerance, error


class BasicPropDecoder:
    """The labeller of generated BasicProp images: factors read off by template matching, invalid when no template
    fits (`tolerance` pixels; None = just under half the distance between the closest templates)."""

    can_be_invalid = True  # a generated image may fit no BasicProp class

    def __init__(self, variant: str = "line", tolerance: int | None = None) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"labeller.variant must be one of {VARIANTS}, got {variant!r}.")
        if tolerance is not None and tolerance < 0:
            raise ValueError(f"labeller.tolerance must be >= 0 pixels (or null), got {tolerance}.")
        self.variant, self.tolerance = variant, tolerance

    def setup(self) -> str | None:
        """Nothing to load; returns no note."""
        return None

    def label(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Factors (B, F) and whether each image is a valid BasicProp image (B,)."""
        factors, valid, _ = decode_basicprop(images, self.variant, self.tolerance)
        return factors, valid

    def fid_features(self):
        return None
