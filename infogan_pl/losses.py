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


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Binary cross-entropy of D: real -> real_target (1, or 1 - s with one-sided label smoothing), fake -> 0, on
    logits (B,) (float targets, no sigmoid first)."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.full_like(real_logits, real_target)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating G loss: -log D(G(z)), i.e. BCE of fake logits (B,) against 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class AdversarialLoss:
    """The game D and G play, on D's raw outputs (B,). `bounded`: the outputs are logits of a probability."""

    bounded = True
    penalty_weight = 0.0  # weight of the gradient penalty on interpolates (WGAN-GP)

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError(f"loss.label_smoothing must be in [0, 0.5), got {label_smoothing}.")
        self.label_smoothing = float(label_smoothing)

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return discriminator_loss(real, fake, 1.0 - self.label_smoothing)

    def g_loss(self, fake: Tensor) -> Tensor:
        raise NotImplementedError


class Minimax(AdversarialLoss):
    """The original V(D, G): G minimizes log(1 - D(G(z))) (saturates when D wins)."""

    def g_loss(self, fake: Tensor) -> Tensor:
        return -F.softplus(fake).mean()  # log(1 - sigmoid(l)) = -softplus(l)


class NonSaturating(AdversarialLoss):
    """Goodfellow et al.'s practical variant: G maximizes log D(G(z))."""

    def g_loss(self, fake: Tensor) -> Tensor:
        return generator_loss(fake)


class Hinge(AdversarialLoss):
    """Hinge loss (Lim & Ye; Miyato et al.): D: relu(1 - D(x)) + relu(1 + D(G(z))); G: -D(G(z))."""

    bounded = False

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake: Tensor) -> Tensor:
        return -fake.mean()


class WassersteinGP(AdversarialLoss):
    """WGAN-GP (Gulrajani et al. 2017): critic E[D(G(z))] - E[D(x)] + λ_gp E[(||∇D(x̂)|| - 1)^2]; G: -E[D(G(z))]."""

    bounded = False

    def __init__(self, penalty_weight: float = 10.0) -> None:
        super().__init__()
        if penalty_weight < 0:
            raise ValueError(f"loss.penalty_weight must be >= 0, got {penalty_weight}.")
        self.penalty_weight = float(penalty_weight)

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return fake.mean() - real.mean()

    def g_loss(self, fake: Tensor) -> Tensor:
        return -fake.mean()


def gradient_penalty(critic, real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """E[(||∇_x̂ D(x̂)||_2 - 1)^2] on random interpolates x̂ of real and (detached) fake images (B, C, H, W).

    create_graph=True, so the penalty itself is differentiated when the critic is updated."""
    shape = (real.shape[0], *([1] * (real.dim() - 1)))
    eps = torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(mixed)
    scores = out[0] if isinstance(out, tuple) else out
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class R1Penalty:
    """The zero-centred gradient penalty on real images (Mescheder et al. 2018), γ/2 · E‖∇_x D(x)‖², D's logit only.

    Convention: γ/2 as in StyleGAN2-ADA's `r1_gamma` (GAN_stability's `reg_param` 10 is γ = 20 here). On point-mass
    data like BasicProp the unregularized game does not converge; R1 makes D flat around every real image, so it
    cannot win on a few exact pixel values. Lazy (StyleGAN2): applied every `every` iterations with weight γ·every.
    It reuses the D step's own forward pass on the real batch (no second forward: batch-norm statistics and
    spectral-norm power iterations advance once), and squares the gradient in float32 under mixed precision.
    γ = 0: off, the paper's behaviour.
    """

    def __init__(self, gamma: float = 0.0, every: int = 1) -> None:
        if gamma < 0:
            raise ValueError(f"model.r1_gamma must be >= 0, got {gamma}.")
        if every < 1:
            raise ValueError(f"model.r1_every must be >= 1, got {every}.")
        self.gamma, self.every = float(gamma), int(every)

    def due(self, iteration: int) -> bool:
        """Whether the penalty is applied at this iteration (the real batch must then require grad)."""
        return self.gamma > 0 and iteration % self.every == 0

    def __call__(self, real_logits: Tensor, real: Tensor, iteration: int) -> Tensor:
        """γ·every/2 · mean_i ‖∂D(x_i)/∂x_i‖² for real images (B, C, H, W) that D's logits (B,) were computed from;
        0 when not due. create_graph=True: the penalty is differentiated with respect to D's weights."""
        if not self.due(iteration):
            return real_logits.new_zeros(()).float()
        (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
        return 0.5 * self.gamma * self.every * grad.float().flatten(1).pow(2).sum(dim=1).mean()


def warmup_factor(iteration: int, warmup: int) -> float:
    """The share of an information weight λ applied at an iteration: a linear ramp (iteration + 1) / warmup over
    the first `warmup` iterations, then 1 (warmup 0: always 1). At initialization the VAE's bound is thousands of
    nats negative, so a full λ from the first step can collapse the posterior before reconstruction has begun."""
    return 1.0 if warmup <= 0 else min(1.0, (iteration + 1) / warmup)


NORMAL_ENTROPY = 0.5 * math.log(2 * math.pi * math.e)  # H of N(0, 1), nats: the VAE's code prior
UNIFORM_ENTROPY = math.log(2.0)  # H of U(-1, 1), nats: InfoGAN's continuous codes


def gaussian_log_likelihood(target: Tensor, mean: Tensor, log_std: Tensor | None) -> Tensor:
    """log N(target; mean, σ) per element (B, n); log σ clamped when learned, σ = 1 when `log_std` is None."""
    log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX) if log_std is not None else torch.zeros_like(mean)
    return -0.5 * math.log(2 * math.pi) - log_std - 0.5 * ((target.to(mean.dtype) - mean) / log_std.exp()) ** 2


def mutual_information_lower_bound(
    q: QOutput, codes: Codes, continuous_entropy: float = UNIFORM_ENTROPY
) -> dict[str, Tensor]:
    """L_I = E[log Q(c | x)] + H(c) <= I(c; x), in nats, per code (`cat0`, `cont0`, ...) and `total`.

    Categorical Cat(K): ln K - CE(c, Q logits) (cross-entropy straight from logits: no softmax before it).
    Continuous: H(c) + E[log N(c; μ, σ)], σ learned (log σ clamped) or fixed at 1; H(c) = ln 2 for InfoGAN's
    U(-1, 1) codes, ½ ln 2πe for a VAE's N(0, 1) code.
    Each value is a scalar tensor that keeps its graph to Q and, through x, to G.
    """
    terms: dict[str, Tensor] = {}
    for i, logits in enumerate(q.logits):
        k = logits.shape[1]
        terms[f"cat{i}"] = math.log(k) - F.cross_entropy(logits, codes.categorical[:, i])
    if q.mean.shape[1]:
        log_lik = gaussian_log_likelihood(codes.continuous, q.mean, q.log_std)
        for j, value in enumerate(log_lik.mean(dim=0).unbind()):
            terms[f"cont{j}"] = continuous_entropy + value
    if not terms:
        raise ValueError("mutual_information_lower_bound needs at least one code.")
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms


def continuous_code_fit(q: QOutput, codes: Codes) -> dict[str, Tensor]:
    """Per continuous code: `cont<j>_mse`, the MSE of Q's mean, and `cont<j>_opt` = ln 2 - ½ ln(2πe·MSE), the bound
    with the σ that fits that MSE best. With σ fixed at 1 the L_I term is at most ln 2 - ½ ln 2π = -0.226 nats
    however well Q recovers c; `_opt` shows how much information Q's mean actually carries."""
    out: dict[str, Tensor] = {}
    if not q.mean.shape[1]:
        return out
    mse = ((codes.continuous.to(q.mean.dtype) - q.mean) ** 2).mean(dim=0)
    for j, value in enumerate(mse.unbind()):
        out[f"cont{j}_mse"] = value
        out[f"cont{j}_opt"] = math.log(2.0) - 0.5 * torch.log(2 * math.pi * math.e * value.clamp_min(1e-12))
    return out


FIXED_SIGMA_CEILING = math.log(2.0) - 0.5 * math.log(2 * math.pi)  # the σ = 1 term's maximum, per U(-1, 1) code


def _entropy(p: Tensor) -> Tensor:
    return -(p * torch.log(p.clamp_min(1e-12))).sum(-1)


def real_mutual_information(logits: Tensor) -> tuple[Tensor, Tensor]:
    """I_Q(c; x) = H(E_x Q(c|x)) - E_x H(Q(c|x)) over a batch of real images (IMSAT's objective), from Q's logits
    (B, K): returns (marginal entropy, mean conditional entropy), nats. The first keeps every value in use, the
    second makes each assignment confident; their difference is at most ln K."""
    p = logits.float().softmax(dim=1)
    return _entropy(p.mean(dim=0)), _entropy(p).mean()


def paired_marginal_entropy(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """H of the marginal of `paired_mutual_information`'s symmetrized joint (the same for both sides), nats: IIC's
    objective with its weight λ on the marginals is I + (λ - 1)·2·H, which for λ > 1 favours balanced clusters."""
    marginal = (logits_a.float().softmax(dim=1).mean(dim=0) + logits_b.float().softmax(dim=1).mean(dim=0)) / 2
    return _entropy(marginal)


def paired_mutual_information(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """I(c; c') between Q's assignments of images and of transformed copies (IIC, Ji et al. 2019), nats, from
    logits (B, K) each: the joint (K, K) is the batch mean of outer products, symmetrized. At most ln K, reached
    when the two assignments agree and use every value equally."""
    pa, pb = logits_a.float().softmax(dim=1), logits_b.float().softmax(dim=1)
    joint = pa.t() @ pb / len(pa)
    joint = ((joint + joint.t()) / 2).clamp_min(1e-12)
    marginal_a, marginal_b = joint.sum(dim=1, keepdim=True), joint.sum(dim=0, keepdim=True)
    return (joint * (joint.log() - marginal_a.log() - marginal_b.log())).sum()
