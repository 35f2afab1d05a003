"""InfoGAN (Chen et al. 2016): the GAN plus a Q head that maximizes the lower bound L_I on I(c; G(z, c)), and
optionally the study's "thought experiment": mutual information between the code and *real* images."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from infogan_pl.augment import RandomAffine
from infogan_pl.latent import Codes
from infogan_pl.losses import (
    continuous_code_fit,
    mutual_information_lower_bound,
    paired_marginal_entropy,
    paired_mutual_information,
    real_mutual_information,
    warmup_factor,
)
from infogan_pl.models.gan import GAN
from infogan_pl.nets import QHead, QOutput

INFO_OBJECTIVES = ("mutual_information", "encoder_loss")


class InfoGAN(GAN):
    """GAN + Q head on the discriminator trunk; the information term λ·(−L_I) is added to both players' losses.

    What each step updates (as in openai/InfoGAN, whose D optimizer also holds Q):
    - D/Q step (one optimizer; param groups D trunk + D head at lr_d, Q head at lr_q): BCE on real vs detached
      fake + λ·(−L_I) of Q on the detached fake. With `mi_trains_trunk` (default) the information gradient also
      reaches the shared trunk; without it Q reads detached trunk features, so only the Q head learns from it.
    - G step (G only): non-saturating loss + λ·(−L_I); the gradient flows through D's trunk and Q's head into G,
      but neither is updated.
    `info_objective=encoder_loss` (the study's Appendix C, "minimize the encoder loss rather than maximize the mutual
    information"): for a fixed prior L_I = H(c) - CE, so minimizing Q's cross-entropy *is* maximizing L_I; what
    can differ is who is trained by it. Here only the decoder side (Q and D's trunk) is: G gets no information
    gradient, so c shapes G's images only if the adversarial game alone makes it. Against the baseline it answers
    whether InfoGAN's built-in autoencoder needs G to be pushed, or merely Q to read.
    λ = 0 with codes ("GAN + latent codes"): Q becomes a probe. It trains (weight 1) on detached features, so L_I is
    measured without feeding back into D, the trunk or G (the baseline of InfoGAN's Fig. 1).

    The study's row 6, I(c; x) on real x, is infeasible as stated (c is not defined for a real image) but defined
    with Q as the encoder. Two forms, added to the D/Q step with their own weights; they train the trunk (unless
    `mi_trains_trunk` is off) and the Q head, not G, and leave the generated-data L_I as it is:
    - `real_mi`: I_Q(c; x) = H(E_x Q(c|x)) - E_x H(Q(c|x)) on the real batch (IMSAT), per categorical code;
    - `consistency`: I(Q(c|x); Q(c|t(x))) between each real image and a copy transformed by `augment` (IIC), per
      categorical code. Only where t preserves the factor: small affine maps keep a digit's class and a BasicProp++
      shape's kind (alternating_shapes), but a BasicProp position or height is what they change.
      `consistency_entropy` is IIC's λ on the marginals (1: the MI; > 1 adds (λ - 1)·2·H of the assignments'
      marginal, against merged clusters).
    `moved_fake` (Elastic-InfoGAN's transformation consistency, Ojha et al. 2019, in its L_I form): the categorical
    part of L_I also on t(G(z, c)), with weight moved_fake·λ, in the D/Q step and in the G step. Q must read c
    through the transforms and G must draw c in what they keep (a digit's class) rather than what they change
    (slant, size, position), which the continuous codes are left to carry. With `moved_fake_trains_g` off the term
    trains Q and the trunk only (Q learns to read c through t from G's images; G is not pushed to draw for it).
    """

    def __init__(
        self,
        *args,
        lambda_info: float = 1.0,
        lambda_warmup: int = 0,
        lr_q: float = 2e-4,
        mi_trains_trunk: bool = True,
        learn_sigma: bool = False,
        real_mi: float = 0.0,
        consistency: float = 0.0,
        overcluster: int = 0,
        consistency_entropy: float = 1.0,
        moved_fake: float = 0.0,
        moved_fake_trains_g: bool = True,
        augment: RandomAffine | None = None,
        info_objective: str = "mutual_information",
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if info_objective not in INFO_OBJECTIVES:
            raise ValueError(f"model.info_objective must be one of {INFO_OBJECTIVES}, got {info_objective!r}.")
        self.info_objective = info_objective
        if real_mi < 0 or consistency < 0:
            raise ValueError(f"model.real_mi and model.consistency must be >= 0, got {real_mi}, {consistency}.")
        if (real_mi or consistency) and not self.latent.categorical:
            raise ValueError("model.real_mi and model.consistency need a categorical code (latent.categorical).")
        if consistency_entropy < 1:
            raise ValueError(f"model.consistency_entropy must be >= 1 (1: the plain MI), got {consistency_entropy}.")
        self.consistency_entropy = float(consistency_entropy)
        if moved_fake < 0:
            raise ValueError(f"model.moved_fake must be >= 0 (0 turns it off), got {moved_fake}.")
        if moved_fake and not self.latent.categorical:
            raise ValueError("model.moved_fake needs a categorical code (latent.categorical).")
        if overcluster < 0 or (overcluster and not consistency):
            raise ValueError(f"model.overcluster needs model.consistency > 0 and must be >= 0, got {overcluster}.")
        if lambda_info < 0:
            raise ValueError(f"model.lambda_info must be >= 0, got {lambda_info}.")
        if lr_q <= 0:
            raise ValueError(f"model.lr_q must be > 0, got {lr_q}.")
        if lambda_warmup < 0:
            raise ValueError(f"model.lambda_warmup must be >= 0 iterations, got {lambda_warmup}.")
        if not self.latent.has_codes:
            raise ValueError("InfoGAN needs latent codes: set latent.categorical or latent.continuous.")
        self.lambda_info, self.lambda_warmup, self.lr_q = float(lambda_info), int(lambda_warmup), float(lr_q)
        self.real_mi, self.consistency, self.moved_fake = float(real_mi), float(consistency), float(moved_fake)
        self.moved_fake_trains_g = bool(moved_fake_trains_g)
        # IIC's over-clustering head: K values on the same trunk, trained by the same consistency term; it shapes the
        # trunk's features for finer clusters, never the code (a Linear head, in D's optimizer with Q's lr)
        self.overcluster_head = nn.Linear(self.discriminator.feature_dim, overcluster) if overcluster else None
        self.augment = augment if augment is not None else RandomAffine()
        self._last_q = None
        self.mi_trains_trunk, self.learn_sigma = mi_trains_trunk, learn_sigma
        self.q_head = QHead(
            self.latent.categorical,
            self.latent.continuous,
            learn_sigma=learn_sigma,
            feature_dim=self.discriminator.feature_dim,
        )

    @property
    def is_probe(self) -> bool:
        """λ = 0: Q measures L_I without influencing D or G."""
        return self.lambda_info == 0.0

    @property
    def info_weight(self) -> float:
        """λ at this iteration: ramped up linearly over the first `lambda_warmup` iterations, then λ."""
        return self.lambda_info * warmup_factor(self._iteration, self.lambda_warmup)

    def discriminator_param_groups(self) -> list[dict]:
        heads = [self.q_head, *([self.overcluster_head] if self.overcluster_head is not None else [])]
        return super().discriminator_param_groups() + [
            {"params": [p for h in heads for p in h.parameters()], "lr": self.lr_q}
        ]

    def q_loss(self, fake_features: Tensor, codes: Codes) -> tuple[Tensor, dict[str, Tensor]]:
        trunk_learns = self.mi_trains_trunk and not self.is_probe
        q = self.q_head(fake_features if trunk_learns else fake_features.detach())
        self._last_q = (q, codes)
        mi = mutual_information_lower_bound(q, codes)
        weight = 1.0 if self.is_probe else self.info_weight
        return -weight * mi["total"], mi

    def real_data_loss(
        self, real: Tensor, real_features: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """-(real_mi · I_Q(c; x) + consistency · I(c(x); c(t(x)))) on the real batch, and the terms (nats)."""
        if not (self.real_mi or self.consistency):
            return real_features.new_zeros(()), {}
        trunk_learns = self.mi_trains_trunk
        logits = self.q_head(real_features if trunk_learns else real_features.detach()).logits
        loss, metrics = real_features.new_zeros(()), {}
        if self.real_mi:
            parts = [real_mutual_information(lg) for lg in logits]  # per categorical code
            marginal, conditional = (torch.stack([p[i] for p in parts]).sum() for i in (0, 1))
            metrics.update({"mi/real_marginal": marginal, "mi/real_conditional": conditional})
            metrics["mi/real"] = marginal - conditional
            loss = loss - self.real_mi * metrics["mi/real"]
        if self.consistency:
            features = self.discriminator.features(self.augment(real, generator))
            moved = self.q_head(features if trunk_learns else features.detach()).logits
            metrics["mi/consistency"] = torch.stack(
                [paired_mutual_information(a, b) for a, b in zip(logits, moved, strict=True)]
            ).sum()
            loss = loss - self.consistency * metrics["mi/consistency"]
            if self.consistency_entropy != 1:  # IIC's λ on the marginals: I + (λ - 1)·2·H(marginal)
                balance = torch.stack([paired_marginal_entropy(a, b) for a, b in zip(logits, moved, strict=True)])
                metrics["mi/consistency_marginal"] = balance.sum()
                loss = loss - self.consistency * (self.consistency_entropy - 1) * 2 * metrics["mi/consistency_marginal"]
            if self.overcluster_head is not None:
                here, there = (
                    self.overcluster_head(f if trunk_learns else f.detach()) for f in (real_features, features)
                )
                metrics["mi/overcluster"] = paired_mutual_information(here, there)
                loss = loss - self.consistency * metrics["mi/overcluster"]
        return loss, metrics

    def moved_fake_loss(
        self, fake: Tensor, codes: Codes, it: int, generator: torch.Generator, g_step: bool = False
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """-moved_fake·λ·Σ L_I(cat) of Q on t(fake) (instance noise as on every D input), and that L_I (nats)."""
        if not self.moved_fake or self.is_probe or (g_step and not self.moved_fake_trains_g):
            return fake.new_zeros(()), {}
        features = self.discriminator.features(self.noise(self.augment(fake, generator), it, generator))
        terms = mutual_information_lower_bound(
            self.q_head(features if self.mi_trains_trunk else features.detach()), codes
        )
        cat = torch.stack([terms[f"cat{i}"] for i in range(len(self.latent.categorical))]).sum()
        return -self.moved_fake * self.info_weight * cat, {"mi/moved_fake": cat}

    def encode(self, images: Tensor) -> QOutput:
        """Q(c | x) of images (B, C, H, W): the encoder the evaluation measures."""
        return self.q_head(self.discriminator.features(images.to(self.device)))

    def eval_information(self, latent_input: Tensor, codes: Codes) -> dict[str, Tensor]:
        """For the evaluation: L_I per code on fixed generator inputs, with each continuous code's MSE and σ-optimal
        bound."""
        q = self.encode(self.generate(latent_input))
        return {**mutual_information_lower_bound(q, codes), **continuous_code_fit(q, codes)}

    def info_metrics(self) -> dict[str, Tensor]:
        """For the logged batches: per continuous code the MSE of Q's mean and the σ-optimal bound (`mi/cont<j>_mse`,
        `mi/cont<j>_opt`), beside the σ = 1 bound `mi/cont<j>` that the loss uses."""
        if self._last_q is None:
            return {}
        q, codes = self._last_q
        return {f"mi/{k}": v.detach() for k, v in continuous_code_fit(q, codes).items()}

    def generator_info_loss(self, fake_features: Tensor, codes: Codes) -> Tensor:
        """λ·(−L_I) for G: the information gradient through D's trunk and Q into G. None for the probe, and none
        under `info_objective=encoder_loss`, where G plays the adversarial game alone and only Q (with the trunk)
        learns to decode c from whatever G makes of it."""
        if self.is_probe or self.info_objective == "encoder_loss":
            return fake_features.new_zeros(())
        return -self.info_weight * mutual_information_lower_bound(self.q_head(fake_features), codes)["total"]
