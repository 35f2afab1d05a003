"""The GAN LightningModule: alternating D and G steps under manual optimization."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch import Tensor, nn

from infogan_pl.checkpointing import rng_state, set_rng_state
from infogan_pl.latent import Codes, LatentSpec
from infogan_pl.losses import discriminator_loss, generator_loss
from infogan_pl.nets import Discriminator, Generator
from infogan_pl.noise import InstanceNoise

log = logging.getLogger(__name__)
PROGRESS_BAR = ("loss/d", "loss/g", "mi/total")


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; training stopped before the update that would have spread it."""


class GAN(L.LightningModule):
    """Vanilla GAN (Goodfellow et al.) with the InfoGAN MNIST networks and a non-saturating G loss.

    Per batch: a D step (D trunk + D head, BCE on real vs detached fake), then a G step (G only). Both players see
    the data through `noise` (instance noise, fresh every step). Lightning counts every optimizer step, so one
    iteration is `steps_per_iteration` (2) of `trainer.global_step`.
    """

    steps_per_iteration = 2

    def __init__(
        self,
        latent: LatentSpec,
        noise: InstanceNoise | None = None,
        generator: Callable[..., nn.Module] = Generator,
        discriminator: Callable[..., nn.Module] = Discriminator,
        lr_d: float = 2e-4,
        lr_g: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        channels: int = 1,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str = "default",
        nan_check_every: int = 50,
    ) -> None:
        super().__init__()
        if lr_d <= 0 or lr_g <= 0:
            raise ValueError(f"learning rates must be > 0, got model.lr_d={lr_d}, model.lr_g={lr_g}.")
        self.automatic_optimization = False
        self.latent = latent
        self.noise = noise if noise is not None else InstanceNoise()
        self.generator = generator(input_dim=latent.input_dim, channels=channels)
        self.discriminator = discriminator(channels=channels)
        self.lr_d, self.lr_g, self.betas = float(lr_d), float(lr_g), tuple(float(b) for b in betas)
        self.nan_iteration: int | None = None
        self.nan_message: str | None = None
        self.channels_last, self.compile_mode = channels_last, compile_mode if compile else None
        self.nan_check_every = int(nan_check_every)
        self._nonfinite: Tensor | None = None  # on an accelerator: flags gathered on device, read every N iterations

    # ------------------------------------------------------------------ optimizers
    def discriminator_param_groups(self) -> list[dict]:
        return [{"params": list(self.discriminator.parameters()), "lr": self.lr_d}]

    def configure_optimizers(self):
        opt_d = torch.optim.Adam(self.discriminator_param_groups(), betas=self.betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr_g, betas=self.betas)
        return opt_d, opt_g

    def configure_model(self) -> None:
        """Fast paths chosen in the config: channels-last memory format and torch.compile of G and D."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_mode:
            self.generator.compile(mode=self.compile_mode)
            self.discriminator.compile(mode=self.compile_mode)

    # ------------------------------------------------------------------ training
    @property
    def iteration(self) -> int:
        """Completed training iterations (batches), whatever the number of optimizer steps in each."""
        return self.global_step // self.steps_per_iteration

    def sample(self, batch: int) -> tuple[Tensor, Codes]:
        return self.latent.sample(batch, device=self.device)

    def generate(self, latent_input: Tensor) -> Tensor:
        """Images (B, C, H, W) in [-1, 1] for generator inputs (B, input_dim)."""
        return self.generator(latent_input.to(self.device))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, _ = batch
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        opt_d, opt_g = self.optimizers()
        it = self.iteration
        g_input, codes = self.sample(real.shape[0])
        fake = self.generator(g_input)

        with self.toggled_optimizer(opt_d):
            real_logits, _ = self.discriminator(self.noise(real, it))
            fake_logits, fake_features = self.discriminator(self.noise(fake.detach(), it))
            loss_d = discriminator_loss(real_logits, fake_logits)
            loss_q, mi = self.q_loss(fake_features, codes)
            if not self._finite_or_stop("loss/d", loss_d) or not self._finite_or_stop("loss/q", loss_q):
                return
            self._optimizer_step(opt_d, loss_d + loss_q)

        with self.toggled_optimizer(opt_g):
            g_logits, g_features = self.discriminator(self.noise(fake, it))
            loss_g = generator_loss(g_logits) + self.generator_info_loss(g_features, codes)
            if not self._finite_or_stop("loss/g", loss_g):
                return
            self._optimizer_step(opt_g, loss_g)

        d_real, d_fake = (
            torch.sigmoid(real_logits.detach()).mean(),
            torch.sigmoid(fake_logits.detach()).mean(),
        )
        metrics = {
            "loss/d": loss_d.detach(),
            "loss/g": loss_g.detach(),
            "d/real": d_real,
            "d/fake": d_fake,
            "d/fake_over_real": d_fake / d_real,
            "noise/std": self.noise.std_at(it),
        }
        if mi:
            metrics["loss/q"] = loss_q.detach()
            metrics.update({f"mi/{name}": value.detach() for name, value in mi.items()})
        for name, value in metrics.items():
            self.log(name, value, on_step=True, on_epoch=False, prog_bar=name in PROGRESS_BAR)

    def q_loss(self, fake_features: Tensor, codes: Codes) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss added to the D step for the Q head, and L_I per code. A plain GAN has none."""
        return fake_features.new_zeros(()), {}

    def generator_info_loss(self, fake_features: Tensor, codes: Codes) -> Tensor:
        """Information term added to the G loss. A plain GAN has none."""
        return fake_features.new_zeros(())

    def _optimizer_step(self, opt, loss: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()

    def _finite_or_stop(self, name: str, loss: Tensor) -> bool:
        """True if `loss` is finite; otherwise save the (still finite) state, stop the trainer and say where.

        On the CPU every loss is checked before its update (a check costs nothing there). On an accelerator a
        check is a host synchronization, so flags are gathered on the device and read every `nan_check_every`
        iterations; training then stops at that read, naming the first iteration that went non-finite."""
        if loss.device.type != "cpu":
            bad = ~torch.isfinite(loss.detach())
            self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
            if (self.iteration + 1) % self.nan_check_every or not bool(self._nonfinite):
                return True
        elif bool(torch.isfinite(loss)):
            return True
        self.nan_iteration = self.iteration
        path = Path(self.trainer.default_root_dir) / "checkpoints" / "last_finite.ckpt"
        ckpt_cb = self.trainer.checkpoint_callback
        if ckpt_cb is not None and getattr(ckpt_cb, "dirpath", None):
            path = Path(ckpt_cb.dirpath) / "last_finite.ckpt"
        self.trainer.save_checkpoint(path)
        self.nan_message = (
            f"Non-finite {name} ({float(loss.detach())}) at iteration {self.nan_iteration}: training stopped, "
            f"last finite state saved to {path}"
        )
        log.error(self.nan_message)
        self.trainer.should_stop = True
        return False

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Adds what a bit-for-bit resume needs beyond Lightning's state: every random generator."""
        checkpoint["nan_iteration"] = self.nan_iteration
        checkpoint["rng_states"] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.nan_iteration = checkpoint.get("nan_iteration")
        if "rng_states" in checkpoint:
            set_rng_state(checkpoint["rng_states"])

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """val/d_real: D's mean probability on held-out real images (against d/real on training images it shows
        whether D memorizes). Code metrics come from the Evaluation callback."""
        images, _ = batch
        logits, _ = self.discriminator(images)
        self.log("val/d_real", torch.sigmoid(logits).mean(), on_epoch=True, sync_dist=True)
