"""Adversarial losses and the variational lower bound L_I on the mutual information I(c; G(z, c))."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from infogan_pl.latent import Codes
from infogan_pl.nets import QOutput

# log σ is clamped to this range when σ is learned, so a collapsing σ cannot drive the log-likelihood to ±inf.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Binary cross-entropy of D: real -> 1, fake -> 0, on logits (B,) (float targets, no sigmoid first)."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating G loss: -log D(G(z)), i.e. BCE of fake logits (B,) against 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def mutual_information_lower_bound(q: QOutput, codes: Codes) -> dict[str, Tensor]:
    """L_I = E[log Q(c | x)] + H(c) <= I(c; x), in nats, per code (`cat0`, `cont0`, ...) and `total`.

    Categorical Cat(K): ln K - CE(c, Q logits) (cross-entropy straight from logits: no softmax before it).
    Continuous U(-1, 1): ln 2 + E[log N(c; μ, σ)], σ learned (log σ clamped) or fixed at 1.
    Each value is a scalar tensor that keeps its graph to Q and, through x, to G.
    """
    terms: dict[str, Tensor] = {}
    for i, logits in enumerate(q.logits):
        k = logits.shape[1]
        terms[f"cat{i}"] = math.log(k) - F.cross_entropy(logits, codes.categorical[:, i])
    if q.mean.shape[1]:
        log_std = q.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX) if q.log_std is not None else torch.zeros_like(q.mean)
        c = codes.continuous.to(q.mean.dtype)
        log_lik = -0.5 * math.log(2 * math.pi) - log_std - 0.5 * ((c - q.mean) / log_std.exp()) ** 2
        for j, value in enumerate(log_lik.mean(dim=0).unbind()):
            terms[f"cont{j}"] = math.log(2.0) + value
    if not terms:
        raise ValueError("mutual_information_lower_bound needs at least one code.")
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms
