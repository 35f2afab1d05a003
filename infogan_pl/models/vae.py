"""A VAE with mutual information on part of its code (Ducau & Trénous, "Mutual Information in Variational
Autoencoders", the seeds' poster): loss = KL(q(z|x) || p(z)) - E_q[log p(x|z)] - λ·L_I(z_S; x')."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infogan_pl.latent import Codes, LatentSpec
from infogan_pl.losses import NORMAL_ENTROPY, mutual_information_lower_bound, warmup_factor
from infogan_pl.nets import Discriminator, Generator, QOutput

LIKELIHOODS = ("bernoulli", "gaussian")


class VAE(L.LightningModule):
    """Encoder q(z|x) = N(μ(x), σ(x)) and decoder p(x|z), z ~ N(0, I) of `latent.z_dim` dimensions.

    The MI term is InfoGAN's bound with the encoder playing Q: L_I(z_S; x') = E_{z~p(z), x'~p(x|z)}[log q(z_S|x')]
    + H(z_S) on the dimensions `mi_dims` (default: the first half), x' the decoder's mean image for a prior sample.
    Its gradient reaches the encoder (through q) and the decoder (through x'), as the poster's loss says; the other
    dimensions' bound is measured (no gradient) so the two halves can be compared (the poster's Fig. 3).
    One optimizer and Lightning's automatic optimization: every term is minimized by the same parameters in the
    same step; there is no second player, unlike the GAN.
    Networks: the InfoGAN MNIST trunk as encoder (+ a linear layer to μ, log σ), the InfoGAN generator as decoder.
    The encoder reads two kinds of images, real ones (ELBO) and decoded prior samples (the MI term), so its trunk
    uses layer norm in the presets: batch-norm running statistics would mix the two, and in eval mode the encoder
    would then read decoded samples with statistics of neither (measured: the bound fell from +6.4 nats in training
    to -107 in eval mode).
    likelihood: `bernoulli` (pixels in [0, 1] as probabilities; decoder logits) or `gaussian` (mean tanh(logits),
    fixed σ = `likelihood_std`, on pixels in [-1, 1]).
    """

    def __init__(
        self,
        latent: LatentSpec,
        generator: Callable[..., nn.Module] = Generator,
        discriminator: Callable[..., nn.Module] = Discriminator,
        lambda_info: float = 0.0,
        lambda_warmup: int = 0,
        mi_dims: list[int] | None = None,
        likelihood: str = "bernoulli",
        likelihood_std: float = 0.1,
        lr: float = 1e-3,
        betas: tuple[float, float] | list[float] = (0.9, 0.999),
        channels: int = 1,
        image_size: int = 28,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if latent.categorical or latent.continuous or latent.z_dim < 1 or latent.z_prior != "normal":
            raise ValueError("the VAE's code is latent.z_dim >= 1 dimensions with z_prior normal and no other codes.")
        if lambda_info < 0 or lr <= 0 or likelihood_std <= 0:
            raise ValueError(f"model.lambda_info >= 0, model.lr > 0 and likelihood_std > 0, got {lambda_info}, {lr}.")
        if lambda_warmup < 0:
            raise ValueError(f"model.lambda_warmup must be >= 0 iterations, got {lambda_warmup}.")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"model.likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        d = latent.z_dim
        mi_dims = list(range(d // 2 or 1)) if mi_dims is None else [int(i) for i in mi_dims]
        if not mi_dims or len(set(mi_dims)) != len(mi_dims) or not all(0 <= i < d for i in mi_dims):
            raise ValueError(f"model.mi_dims must be distinct indices in [0, {d}), got {mi_dims}.")
        self.latent, self.lambda_info, self.likelihood, self.likelihood_std = (
            latent,
            lambda_info,
            likelihood,
            likelihood_std,
        )
        self.lr, self.betas, self.seed = float(lr), tuple(float(b) for b in betas), int(seed)
        self.lambda_warmup = int(lambda_warmup)
        self.mi_dims = mi_dims
        self.free_dims = [i for i in range(d) if i not in mi_dims]
        self.encoder = discriminator(channels=channels, image_size=image_size)
        self.to_code = nn.Linear(self.encoder.feature_dim, 2 * d)
        self.generator = generator(input_dim=d, channels=channels, image_size=image_size, tanh=False)
        self._iteration = 0

    # ------------------------------------------------------------------ the model
    @property
    def iteration(self) -> int:
        return self._iteration

    def encode(self, images: Tensor) -> QOutput:
        """q(z|x): mean (B, d) and log σ (B, d) as a QOutput (no categorical code)."""
        mean, log_std = self.to_code(self.encoder.features(images.to(self.device))).chunk(2, dim=1)
        return QOutput([], mean, log_std)

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.generator(z.to(self.device))

    def generate(self, latent_input: Tensor) -> Tensor:
        """The decoder's mean image in [-1, 1] for codes (B, d)."""
        logits = self.decode_logits(latent_input)
        return torch.tanh(logits / 2) if self.likelihood == "bernoulli" else torch.tanh(logits)  # 2σ(l) - 1 = tanh(l/2)

    def sample(self, batch: int, generator: torch.Generator | None = None) -> tuple[Tensor, Codes]:
        return self.latent.sample(batch, device=self.device, generator=generator)

    def traversals(
        self, steps: int = 9, span: float = 2.0, seed: int = 0, per_value: bool = False
    ) -> dict[str, Tensor]:
        """Per regularized dimension j: rows are seeded codes, columns sweep z_j over [-span, span]."""
        gen = torch.Generator().manual_seed(seed)
        base = torch.randn(8, self.latent.z_dim, generator=gen)
        grids = {}
        for j in self.mi_dims:
            z = base.repeat_interleave(steps, dim=0)
            z[:, j] = torch.linspace(-span, span, steps).repeat(len(base))
            grids[f"z{j}"] = z
        return grids

    # ------------------------------------------------------------------ losses
    def reconstruction(self, logits: Tensor, images: Tensor) -> Tensor:
        """-log p(x|z), summed over pixels, mean over the batch."""
        if self.likelihood == "bernoulli":
            target = (images + 1) / 2
            return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(images)
        return 0.5 * ((images - torch.tanh(logits)) / self.likelihood_std).pow(2).sum() / len(images)

    @staticmethod
    def kl_per_dim(q: QOutput) -> Tensor:
        """KL(N(μ, σ) || N(0, 1)) per dimension (d,), mean over the batch; their sum is the KL term."""
        return (0.5 * (q.mean.pow(2) + (2 * q.log_std).exp() - 1) - q.log_std).mean(dim=0)

    def information(self, z: Tensor, with_grad_on: list[int]) -> dict[str, Tensor]:
        """L_I of the dimension groups for prior codes z (B, d): `regularized` (mi_dims) and `unregularized`, and per
        dimension `z<j>`; only the groups in `with_grad_on` keep their graph."""
        q = self.encode(self.generate(z))
        out: dict[str, Tensor] = {}
        for group, dims in (("regularized", self.mi_dims), ("unregularized", self.free_dims)):
            if not dims:
                continue
            sub = QOutput([], q.mean[:, dims], q.log_std[:, dims])
            terms = mutual_information_lower_bound(sub, Codes(z[:, :0].long(), z[:, dims]), NORMAL_ENTROPY)
            keep = group in with_grad_on
            out[group] = terms["total"] if keep else terms["total"].detach()
            out.update({f"z{d}": terms[f"cont{k}"].detach() for k, d in enumerate(dims)})
        return out

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, _ = batch
        written = self._written()
        q = self.encode(images)
        gen = self._stream()
        eps = torch.randn(q.mean.shape, device=self.device, generator=gen)
        logits = self.decode_logits(q.mean + q.log_std.exp() * eps)
        recon, kl = self.reconstruction(logits, images), self.kl_per_dim(q)
        loss = recon + kl.sum()
        info = {}
        if self.lambda_info:
            z, _ = self.sample(len(images), gen)
            info = self.information(z, ["regularized"])
            weight = self.lambda_info * warmup_factor(self._iteration, self.lambda_warmup)
            loss = loss - weight * info["regularized"]
        elif written:  # measured only: in eval mode, so no batch-norm statistic moves (λ = 0 is the plain VAE)
            z, _ = self.sample(len(images), gen)
            self.eval()
            with torch.no_grad():
                info = self.information(z, [])
            self.train()
        self._iteration += 1
        if written:
            metrics = {
                "iteration": float(self._iteration),
                "loss/total": loss,
                "loss/recon": recon,
                "loss/kl": kl.sum(),
            }
            metrics.update({f"kl/z{j}": v for j, v in enumerate(kl.unbind())})
            metrics.update({f"mi/{k}": v for k, v in info.items()})
            for name, value in metrics.items():
                self.log(
                    name,
                    value.detach() if torch.is_tensor(value) else value,
                    prog_bar=name in ("loss/total", "loss/kl"),
                )
        return loss

    def _written(self) -> bool:
        """Whether Lightning writes this iteration's step metrics (see GAN._step_metrics_written)."""
        trainer = self._trainer
        return trainer is None or (self._iteration + 1) % max(1, trainer.log_every_n_steps) == 0

    def _stream(self) -> torch.Generator:
        from infogan_pl.models.gan import stream_seed

        gen = torch.Generator(device=self.device)
        rank = self.trainer.global_rank if self._trainer is not None else 0
        return gen.manual_seed(stream_seed(self.seed, rank, self._iteration))

    def eval_information(self, latent_input: Tensor, codes: Codes) -> dict[str, Tensor]:
        """For the evaluation: L_I of the regularized and unregularized dimensions on fixed prior codes."""
        return self.information(latent_input, [])

    def validation_step(self, batch, batch_idx) -> None:
        """Nothing per batch: the Evaluation callback measures the model."""

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, betas=self.betas)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["iteration"] = self._iteration

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._iteration = checkpoint.get("iteration", 0)
