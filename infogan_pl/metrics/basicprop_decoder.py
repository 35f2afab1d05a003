"""Reads BasicProp factors straight off an image, so "does c_cat control position?" needs no classifier.

Every variant is a finite grid of classes drawn by `data.basicprop.classes`; the decoder matches an image against
those same drawings. The shape is compared as a binary mask (mismatched pixels); a coloured variant's colour and
brightness are then read from the brightest value of each channel over the shape's pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from infogan_pl.data.basicprop import VARIANTS, classes

# Pixels brighter than this (in [0, 1]) are foreground. The study's noise keeps grey foreground >= 150/255 = 0.59
# and background < 60/255 = 0.235, so noisy real images binarize exactly; a coloured shape is at least
# 0.5 * 150/240 = 0.31 in its brightest channel, hence the lower threshold there.
THRESHOLD = {1: 0.4, 3: 0.25}


def _templates(variant: str) -> tuple[Tensor, Tensor, Tensor]:
    """Binary shape templates (C, 784), the shape's colour (C, channels) in [0, 1], factors (C, F)."""
    images, factors, _, _ = classes(variant)
    masks = (images > 0).any(dim=1).reshape(len(images), -1).float()
    colours = (images / 255).flatten(2).amax(dim=2)
    return masks, colours, factors


def min_template_distance(variant: str) -> int:
    """Pixels in which the two closest distinct shape templates differ (rectangles: 20, one row of one bar;
    line: 112). A variant of one shape (colour: a disc) counts a fifth of its pixels, so a tenth may disagree."""
    t, _, _ = _templates(variant)
    t = torch.unique(t, dim=0)
    if len(t) == 1:
        return int(t.sum()) // 5
    d = t.sum(1, keepdim=True) + t.sum(1)[None] - 2 * t @ t.T
    d.fill_diagonal_(float("inf"))
    return int(d.min())


@torch.no_grad()
def decode_basicprop(images: Tensor, variant: str, tolerance: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """images (B, channels, 28, 28) in [-1, 1] -> factors (B, F), valid (B,) bool, mismatched pixels (B,) long.

    The binarized image is compared with the shape of every class (line: 10 bar positions; rectangles: 100 height
    pairs; ...); an image is valid when at most `tolerance` pixels disagree with the nearest shape. The default
    tolerance is just under half the distance between the two closest shapes (rectangles 9 px, line 55 px), so an
    image between two classes (a bar one row too tall) is never valid. Among the classes of that shape, the one whose
    colour is nearest the brightest value of each channel over the shape gives the factors (grey: all share it).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    if tolerance is None:
        tolerance = (min_template_distance(variant) - 1) // 2
    masks, colours, factors = (t.to(images.device) for t in _templates(variant))
    x = (images.float() + 1) / 2  # (B, channels, 28, 28) in [0, 1]
    b = (x.amax(dim=1) > THRESHOLD[images.shape[1]]).reshape(len(images), -1).float()
    # |b - t| summed = |b| + |t| - 2 b.t for binary vectors
    mismatch = (b.sum(1, keepdim=True) + masks.sum(1)[None] - 2 * b @ masks.T).round().long()  # (B, C)
    error = mismatch.min(dim=1).values
    # the brightest value of each channel over the shape: foreground noise dims pixels by [150, 240) / 240, so the
    # brightest of a few hundred is within 1% of the clean colour, where a mean would sit 19% below it
    shape_colour = (x.flatten(2) * b[:, None]).amax(dim=2)  # (B, channels)
    colour_gap = torch.cdist(shape_colour, colours)  # (B, C)
    best = torch.where(mismatch == error[:, None], colour_gap, torch.inf).argmin(dim=1)
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
        """Factors (B, F) and whether each is a valid BasicProp image (B,)."""
        factors, valid, _ = decode_basicprop(images, self.variant, self.tolerance)
        return factors, valid

    def fid_features(self):
        return None
