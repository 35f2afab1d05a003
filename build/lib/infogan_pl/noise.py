"""Instance noise (Sønderby et al. 2016): Gaussian noise on everything D sees, annealed over training."""

from __future__ import annotations

import math

import torch
from torch import Tensor

SCHEDULES = ("constant", "linear", "exponential")
WHERE = ("all", "foreground", "background")


class InstanceNoise:
    """x -> x + σ(step)·ε on real and generated images alike, ε fresh every call.

    schedule: `constant` σ = std; `linear` σ decays from std to 0 over `decay_steps`; `exponential`
    σ = std · 0.5^(step / half_life). `where` restricts the noise to foreground pixels (above the middle of the
    [-1, 1] range, i.e. x > 0), background pixels (x <= 0), or `all`. std = 0 is the identity (no noise).
    """

    def __init__(
        self,
        std: float = 0.0,
        schedule: str = "constant",
        decay_steps: int = 10_000,
        half_life: float = 2_000.0,
        where: str = "all",
    ) -> None:
        if std < 0:
            raise ValueError(f"noise.std must be >= 0, got {std}.")
        if schedule not in SCHEDULES:
            raise ValueError(f"noise.schedule must be one of {SCHEDULES}, got {schedule!r}.")
        if where not in WHERE:
            raise ValueError(f"noise.where must be one of {WHERE}, got {where!r}.")
        if decay_steps <= 0 or half_life <= 0:
            raise ValueError("noise.decay_steps and noise.half_life must be > 0.")
        self.std, self.schedule, self.where = float(std), schedule, where
        self.decay_steps, self.half_life = int(decay_steps), float(half_life)

    def std_at(self, step: int) -> float:
        """σ at a global training step."""
        if self.schedule == "linear":
            return self.std * max(0.0, 1.0 - step / self.decay_steps)
        if self.schedule == "exponential":
            return self.std * math.pow(0.5, step / self.half_life)
        return self.std

    def __call__(self, x: Tensor, step: int, generator: torch.Generator | None = None) -> Tensor:
        """x: (B, C, H, W) in [-1, 1] -> noisy copy (the input itself when σ is 0); ε drawn from `generator`."""
        std = self.std_at(step)
        if std == 0.0:
            return x
        eps = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator) * std
        if self.where == "foreground":
            eps = eps * (x > 0)
        elif self.where == "background":
            eps = eps * (x <= 0)
        return x + eps
