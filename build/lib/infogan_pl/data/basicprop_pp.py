"""BasicProp++ (the study's Appendix A, never built there): richer shapes with exact categorical and continuous
factors, each variant a finite grid of classes like line and rectangles, so data and decoder share one drawing.

- translation: an 8 x 8 square at (x, y), x and y each one of 21 positions (continuous factors x, y in [0, 1]);
- diameter_ratio: two discs whose diameters d1 = 3 + k and d2 = 11 - k (k = 0..8) add up to 14 px; factor
  ratio = d1 / (d1 + d2) (continuous, 3/14 .. 11/14);
- colour: a disc of radius 8 in one of 6 colours (categorical) at one of 16 brightness levels in [0.5, 1]
  (continuous), 3 channels;
- alternating_shapes: a bar, rectangle, disc or cross (categorical) of one of 8 sizes, 8 .. 22 px (continuous).
Continuous factors are stored as their exact value on that grid, scaled to [0, 1] (ratio and brightness as is).
"""

from __future__ import annotations

import torch
from torch import Tensor

PP_VARIANTS = ("translation", "diameter_ratio", "colour", "alternating_shapes")
PALETTE = torch.tensor(
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
)  # red, green, blue, cyan, magenta, yellow
SHAPES = ("bar", "rectangle", "disc", "cross")
_ROW, _COL = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")


def _disc(row: int, col: int, diameter: int) -> Tensor:
    """(28, 28) bool: a disc exactly `diameter` pixels across, centred on pixel (row, col) (odd diameters) or on
    the corner above-left of it (even): pixel centres within diameter / 2 of the centre."""
    shift = 0.0 if diameter % 2 else 0.5
    return (_ROW - row + shift) ** 2 + (_COL - col + shift) ** 2 <= (diameter / 2) ** 2


def _box(top: int, left: int, height: int, width: int) -> Tensor:
    mask = torch.zeros(28, 28, dtype=torch.bool)
    mask[top : top + height, left : left + width] = True
    return mask


def _translation() -> tuple[list[Tensor], list[list[float]]]:
    masks, factors = [], []
    for y in range(21):
        for x in range(21):
            masks.append(_box(y, x, 8, 8))
            factors.append([x / 20, y / 20])
    return masks, factors


def _diameter_ratio() -> tuple[list[Tensor], list[list[float]]]:
    masks, factors = [], []
    for k in range(9):
        d1, d2 = 3 + k, 11 - k
        masks.append(_disc(14, 7, d1) | _disc(14, 21, d2))
        factors.append([d1 / (d1 + d2)])
    return masks, factors


def _shape(kind: str, size: int) -> Tensor:
    top, left = 14 - size // 2, 14 - size // 2
    if kind == "bar":
        return _box(top, 12, size, 4)
    if kind == "rectangle":
        return _box(14 - size // 4, left, size // 2, size)
    if kind == "disc":
        return _disc(14, 14, size)
    return _box(top, 13, size, 3) | _box(13, left, 3, size)  # cross


def _alternating_shapes() -> tuple[list[Tensor], list[list[float]]]:
    masks, factors = [], []
    for k, kind in enumerate(SHAPES):
        for s in range(8):
            masks.append(_shape(kind, 8 + 2 * s))
            factors.append([float(k), s / 7])
    return masks, factors


def pp_classes(variant: str) -> tuple[Tensor, Tensor, list[str], list[str]]:
    """Every class of a BasicProp++ variant: images (C, channels, 28, 28) float in [0, 255], factors (C, F) float,
    factor names and kinds ("categorical" / "continuous")."""
    if variant == "colour":
        disc = _disc(14, 14, 16).float()
        images, factors = [], []
        for c, colour in enumerate(PALETTE):
            for b in range(16):
                brightness = 0.5 + 0.5 * b / 15
                images.append(colour[:, None, None] * disc * 255 * brightness)
                factors.append([float(c), brightness])
        return torch.stack(images), torch.tensor(factors), ["colour", "brightness"], ["categorical", "continuous"]
    draw, names, kinds = {
        "translation": (_translation, ["x", "y"], ["continuous", "continuous"]),
        "diameter_ratio": (_diameter_ratio, ["ratio"], ["continuous"]),
        "alternating_shapes": (_alternating_shapes, ["shape", "size"], ["categorical", "continuous"]),
    }[variant]
    masks, factors = draw()
    return torch.stack(masks)[:, None].float() * 255, torch.tensor(factors), names, kinds
