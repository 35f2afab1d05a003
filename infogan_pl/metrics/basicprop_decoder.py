"""Reads BasicProp factors straight off an image, so "does c_cat control position?" needs no classifier."""

from __future__ import annotations

import torch
from torch import Tensor

from infogan_pl.data.basicprop import line_masks, rectangle_masks

# Pixels brighter than this (in [0, 1]) are foreground. The study's noise keeps foreground >= 150/255 = 0.59 and
# background < 60/255 = 0.235, so noisy real images binarize exactly.
THRESHOLD = 0.4


def _templates(variant: str) -> tuple[Tensor, Tensor]:
    """Foreground templates (C, 784) float and their factors (C, F) long."""
    if variant == "line":
        return line_masks().reshape(10, -1).float(), torch.arange(10)[:, None]
    left, right = rectangle_masks()
    masks = (left[:, None] | right[None, :]).reshape(100, -1).float()
    k = torch.arange(100)
    return masks, torch.stack([k // 10, k % 10], dim=1)


@torch.no_grad()
def decode_basicprop(images: Tensor, variant: str, tolerance: float = 0.03) -> tuple[Tensor, Tensor, Tensor]:
    """images (B, 1, 28, 28) in [-1, 1] -> factors (B, F) long, valid (B,) bool, error (B,) float.

    The binarized image is compared with the template of every class (line: 10 bar positions; rectangles: 100
    height pairs). The nearest template gives the factors; `error` is the share of its 784 pixels that disagree,
    and an image is a valid BasicProp image when error <= tolerance (default 3%: 23 pixels).
    """
    if variant not in ("line", "rectangles"):
        raise ValueError(f"variant must be 'line' or 'rectangles', got {variant!r}.")
    templates, factors = _templates(variant)
    templates, factors = templates.to(images.device), factors.to(images.device)
    b = ((images.float() + 1) / 2 > THRESHOLD).reshape(len(images), -1).float()
    # |b - t| summed = |b| + |t| - 2 b.t for binary vectors
    mismatch = b.sum(1, keepdim=True) + templates.sum(1)[None] - 2 * b @ templates.T
    best = mismatch.argmin(dim=1)
    error = mismatch.gather(1, best[:, None]).squeeze(1) / b.shape[1]
    return factors[best], error <= tolerance, error
