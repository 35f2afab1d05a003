"""An exponential moving average of a network's weights (G's, for evaluation): StudioGAN's `g_ema`."""

from __future__ import annotations

import copy

import torch
from torch import nn


def warmed_decay(decay: float, updates: int) -> float:
    """β for the `updates`-th average step (0-based): min(β, (1 + n) / (10 + n)), TensorFlow's
    ExponentialMovingAverage with num_updates (timm's EMA warm-up). Early on the average spans the few steps there
    have been instead of keeping the weights it started from: with a constant 0.999, 13.5% of the shadow would still
    be the starting weights after 2,000 iterations."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightEMA(nn.Module):
    """Owns a shadow copy of a module: shadow ← β·shadow + (1 − β)·live after each update from iteration `start` on
    (β warmed up, `warmed_decay`), shadow = live before it; buffers (batch-norm statistics) are copied as they are.

    The shadow is a submodule of the LightningModule, so it is saved in every checkpoint and a resumed run continues
    it exactly; it has no gradient and is in no optimizer. It smooths what is evaluated (traversals, metrics,
    `evaluate`), not what is trained. β = decay (StudioGAN `g_ema_decay`, GAN_stability 0.999).
    """

    def __init__(self, module: nn.Module, decay: float = 0.999, start: int = 0) -> None:
        super().__init__()
        if not 0 < decay < 1:
            raise ValueError(f"model.g_ema_decay must be in (0, 1) (0 turns the average off), got {decay}.")
        if start < 0:
            raise ValueError(f"model.g_ema_start must be >= 0, got {start}.")
        self.decay, self.start = float(decay), int(start)
        self.shadow = copy.deepcopy(module).requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, iteration: int) -> None:
        """Fold the live weights of `module` in after its update at `iteration`."""
        shadow, live = list(self.shadow.parameters()), [p.detach() for p in module.parameters()]
        if iteration >= self.start:
            beta = warmed_decay(self.decay, iteration - self.start)
            torch._foreach_lerp_(shadow, live, 1.0 - beta)  # s += (1 - β)(p - s), one kernel per dtype
        else:
            torch._foreach_copy_(shadow, live)
        for s, b in zip(self.shadow.buffers(), module.buffers(), strict=True):
            s.copy_(b)

    def forward(self, *args, **kwargs):
        return self.shadow(*args, **kwargs)
