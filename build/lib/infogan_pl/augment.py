"""Label-preserving transforms of real images, for the consistency term (IIC): small random affine maps."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


class RandomAffine:
    """x (B, C, H, W) in [-1, 1] -> each image rotated by up to ±`rotation` degrees, scaled by 1 ± `scale` and
    shifted by up to ±`shift` pixels, independently per image, drawn from `generator` (fresh every step and
    reproducible from the seed); the background (-1) fills what moves in. Rendered on the images' device."""

    def __init__(self, rotation: float = 10.0, scale: float = 0.1, shift: float = 2.0) -> None:
        if rotation < 0 or not 0 <= scale < 1 or shift < 0:
            raise ValueError(
                f"model.augment needs rotation >= 0, scale in [0, 1) and shift >= 0, got {rotation}, {scale}, {shift}."
            )
        self.rotation, self.scale, self.shift = float(rotation), float(scale), float(shift)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, _, h, w = x.shape
        u = torch.rand(b, 4, device=x.device, generator=generator, dtype=torch.float32) * 2 - 1
        angle = u[:, 0] * self.rotation * math.pi / 180
        zoom = 1 + u[:, 1] * self.scale
        tx, ty = u[:, 2] * self.shift * 2 / w, u[:, 3] * self.shift * 2 / h  # pixels -> [-1, 1] coordinates
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1
