"""The GAN LightningModule: alternating D and G steps under manual optimization."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import ConstantLR, LinearLR, SequentialLR

from infogan_pl.checkpointing import rng_state, set_rng_state
from infogan_pl.ema import WeightEMA
from infogan_pl.latent import Codes, LatentSpec
from infogan_pl.losses import AdversarialLoss, NonSaturating, R1Penalty, gradient_penalty
from infogan_pl.models.guard import NaNGuard
from infogan_pl.nets import Discriminator, Generator
from infogan_pl.noise import InstanceNoise
from infogan_pl.progress import planned_iterations

log = logging.getLogger(__name__)

PROGRESS_BAR = ("loss/d", "loss/g", "mi/total")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def stream_seed(seed: int, rank: int, iteration: int) -> int:
    """The seed of one iteration's latent, noise and penalty draws: its own per (seed, rank, iteration), so ranks
    draw different fakes, and a resumed run draws exactly what the uninterrupted one would have."""
    return ((seed * 1_000_003 + rank) * 1_000_000_007 + iteration) % (2**63 - 1)


class GAN(L.LightningModule):
    """Vanilla GAN (Goodfellow et al.) with the InfoGAN MNIST networks; the adversarial `loss` is configurable.

    Per batch (an iteration): a D step (D trunk + D head, `loss` on real vs detached fake, plus the gradient penalty
    for WGAN-GP); every `d_steps_per_g`-th batch also a G step (G only). Both players see the data through `noise`
    (instance noise, fresh every step). Lightning's `trainer.max_steps` counts optimizer steps: with
    d_steps_per_g = 1 an iteration is 2 of them.
    Stabilizers, each off at its neutral value: `r1_gamma` (R1 on real images, every `r1_every` iterations),
    `g_ema_decay` (an average of G's weights from `g_ema_start`, what the evaluation draws with), `lr_end_factor`
    (every learning rate, D's, Q's and G's, decays linearly to this fraction by the run's end, from iteration
    `lr_decay_start`, constant before it: pix2pix's n_epochs / n_epochs_decay); spectral norm and
    resize-convolution are options of the networks (model.discriminator.spectral_norm, model.generator.upsample).
    """

    def __init__(
        self,
        latent: LatentSpec,
        noise: InstanceNoise | None = None,
        loss: AdversarialLoss | None = None,
        generator: Callable[..., nn.Module] = Generator,
        discriminator: Callable[..., nn.Module] = Discriminator,
        lr_d: float = 2e-4,
        lr_g: float = 1e-3,
        betas: tuple[float, float] | list[float] = (0.5, 0.999),
        optimizer_d: Callable | None = None,
        optimizer_g: Callable | None = None,
        scheduler: Callable | None = None,
        lr_end_factor: float = 1.0,
        lr_decay_start: int = 0,
        d_steps_per_g: int = 1,
        channels: int = 1,
        image_size: int = 28,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str = "default",
        nan: NaNGuard | None = None,
        r1_gamma: float = 0.0,
        r1_every: int = 1,
        g_ema_decay: float = 0.0,
        g_ema_start: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if lr_d <= 0:
            raise ValueError(f"model.lr_d must be > 0, got {lr_d}.")
        if lr_g <= 0:
            raise ValueError(f"model.lr_g must be > 0, got {lr_g}.")
        betas = [float(b) for b in betas]
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"model.betas must be two numbers in [0, 1), got {betas}.")
        if d_steps_per_g < 1:
            raise ValueError(f"model.d_steps_per_g must be >= 1, got {d_steps_per_g}.")
        if not 0 <= lr_end_factor <= 1:
            raise ValueError(f"model.lr_end_factor must be in [0, 1] (1: constant rates), got {lr_end_factor}.")
        if lr_decay_start < 0:
            raise ValueError(f"model.lr_decay_start must be >= 0 (iterations at constant rates), got {lr_decay_start}.")
        for key, factory in (("optimizer_d", optimizer_d), ("optimizer_g", optimizer_g), ("scheduler", scheduler)):
            if factory is not None and not callable(factory):
                partial_form = "{_target_: <class>, _partial_: true, ...}"
                raise ValueError(f"model.{key} must be null or a partial ({partial_form}), got {factory!r}.")
        if scheduler is not None and lr_end_factor != 1:
            raise ValueError(
                f"model.scheduler and model.lr_end_factor={lr_end_factor} (the recipe's decay) both schedule the "
                "learning rates: set one (recipe.lr_end_factor=1 turns the decay off)."
            )
        if compile_mode not in COMPILE_MODES:
            raise ValueError(f"model.compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}.")
        self.automatic_optimization = False
        self.latent = latent
        self.noise = noise if noise is not None else InstanceNoise()
        self.loss = loss if loss is not None else NonSaturating()
        self.generator = generator(input_dim=latent.input_dim, channels=channels, image_size=image_size)
        self.discriminator = discriminator(channels=channels, image_size=image_size)
        self.lr_d, self.lr_g, self.betas = float(lr_d), float(lr_g), tuple(betas)
        self.optimizer_d, self.optimizer_g, self.scheduler = optimizer_d, optimizer_g, scheduler
        self.lr_end_factor, self.lr_decay_start = float(lr_end_factor), int(lr_decay_start)
        self.d_steps_per_g = int(d_steps_per_g)
        self.channels_last, self.compile_mode = channels_last, compile_mode if compile else None
        self.guard = nan if nan is not None else NaNGuard()
        self.r1 = R1Penalty(r1_gamma, r1_every)
        self.g_ema = WeightEMA(self.generator, g_ema_decay, g_ema_start) if g_ema_decay else None
        self.seed = int(seed)
        self._iteration = 0  # batches trained on; saved in checkpoints
        self.step_metrics: dict[str, float] = {}  # the last written iteration's training metrics
        self._generator: torch.Generator | None = None
        self._saving_checked = False
        self._last_loss_g: Tensor | None = None

    # ------------------------------------------------------------------ optimizers
    def discriminator_param_groups(self) -> list[dict]:
        return [{"params": list(self.discriminator.parameters()), "lr": self.lr_d}]

    def _optimizer(self, factory: Callable | None, params, lr: float):
        """Adam(lr, betas) fused on the device (one kernel per step, and it can skip a step on the device, which the
        NaN guard relies on), unless the config names another optimizer."""
        if factory is not None:
            return factory(params, lr=lr)
        params = list(params)
        try:
            return torch.optim.Adam(params, lr=lr, betas=self.betas, fused=True)
        except RuntimeError:  # a device without a fused Adam
            return torch.optim.Adam(params, lr=lr, betas=self.betas)

    def configure_optimizers(self):
        """[D (+ Q) optimizer, G optimizer], Adam(betas) unless model.optimizer_d / optimizer_g say otherwise."""
        opt_d = self._optimizer(self.optimizer_d, self.discriminator_param_groups(), self.lr_d)
        opt_g = self._optimizer(self.optimizer_g, self.generator.parameters(), self.lr_g)
        scheduler = self.scheduler
        if scheduler is None and self.lr_end_factor != 1:
            scheduler = self._linear_decay(planned_iterations(self.trainer, self))
        if scheduler is None:
            return opt_d, opt_g
        return [opt_d, opt_g], [scheduler(opt_d), scheduler(opt_g)]

    def _linear_decay(self, iterations: int) -> Callable:
        """The recipe's schedule, stepped once an iteration: constant rates for `lr_decay_start` iterations, then a
        linear decay to `lr_end_factor` of each rate at the run's last iteration. A run that ends before the decay
        would start (a short smoke test of a preset) trains at constant rates and says so in one line."""
        start, end = self.lr_decay_start, self.lr_end_factor
        if start == 0:  # LinearLR alone, the schedule basicprop_pp_translation's runs were measured with
            return partial(LinearLR, start_factor=1.0, end_factor=end, total_iters=iterations)
        if start >= iterations:
            log.warning(
                "model.lr_decay_start=%d is past this run's %d iterations: the learning rates stay constant.",
                start, iterations,
            )  # fmt: skip

        def constant_then_linear(optimizer):
            constant = ConstantLR(optimizer, factor=1.0, total_iters=start)
            linear = LinearLR(optimizer, start_factor=1.0, end_factor=end, total_iters=max(iterations - start, 1))
            return SequentialLR(optimizer, [constant, linear], milestones=[start])

        return constant_then_linear

    def configure_model(self) -> None:
        """Fast paths chosen in the config: channels-last memory format and torch.compile of G and D."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_mode:
            if self._trainer is not None and self.trainer.strategy.root_device.type == "cuda":
                # Inductor turns the transposed convolutions channels-last on CUDA, where convolution_backward then
                # returns strides its meta kernel does not predict (pytorch/pytorch#171622): keep the layout as given.
                import torch._inductor.config as inductor_config

                inductor_config.layout_optimization = False
            self.generator.compile(mode=self.compile_mode)
            self.discriminator.compile(mode=self.compile_mode)

    # ------------------------------------------------------------------ training
    @property
    def iteration(self) -> int:
        """Training iterations (batches) completed."""
        return self._iteration

    @property
    def nan_iteration(self) -> int | None:
        return self.guard.stopped_at

    @property
    def nan_message(self) -> str | None:
        return self.guard.message

    def planned_iterations(self, max_steps: int) -> int:
        """Iterations after which Lightning has made `max_steps` optimizer steps (d_steps_per_g D steps per G)."""
        k = self.d_steps_per_g
        full, rest = divmod(max_steps, k + 1)
        return full * k + min(rest, k)

    def random_stream(self, iteration: int) -> torch.Generator:
        """The generator this iteration's latent, noise and penalty draws come from (see `stream_seed`)."""
        if self._generator is None or self._generator.device != self.device:
            self._generator = torch.Generator(device=self.device)
        rank = self.trainer.global_rank if self._trainer is not None else 0
        return self._generator.manual_seed(stream_seed(self.seed, rank, iteration))

    def sample(self, batch: int, generator: torch.Generator | None = None) -> tuple[Tensor, Codes]:
        return self.latent.sample(batch, device=self.device, generator=generator)

    def generate(self, latent_input: Tensor) -> Tensor:
        """Images (B, C, H, W) in [-1, 1] for generator inputs (B, input_dim), drawn by the average of G's weights
        when there is one (what every evaluation, figure and `evaluate` sees), else by G."""
        generator = self.g_ema if self.g_ema is not None else self.generator
        return generator(latent_input.to(self.device))

    def traversals(
        self, steps: int = 9, span: float = 2.0, seed: int = 0, per_value: bool = False
    ) -> dict[str, Tensor]:
        """Generator inputs of the traversal grids: per (categorical code i, continuous code j), rows are the values
        of code i, columns sweep code j over [-span, span] with z fixed; without a continuous code the columns are
        seeded draws of z. Names like `cat0_cont1`, `cat0_samples` or `samples`. per_value: also one grid per value
        k of each categorical code (`cat0_value07`: rows of their own z, columns sweep continuous code 0)."""
        latent = self.latent
        cats = range(len(latent.categorical)) if latent.categorical else [None]
        conts = range(latent.continuous) if latent.continuous else [None]
        out = {}
        for i in cats:
            for j in conts:
                name = "_".join(
                    p for p in (f"cat{i}" if i is not None else "", f"cont{j}" if j is not None else "samples") if p
                )
                out[name] = latent.traversal(cat_index=i or 0, cont_index=j, steps=steps, span=span, seed=seed)
        if per_value:
            for i, k in enumerate(latent.categorical):
                for value in range(k):
                    out[f"cat{i}_value{value:02d}"] = latent.value_traversal(
                        i, value, steps=steps, span=span, seed=seed
                    )
        return out

    def on_train_start(self) -> None:
        self.guard.setup(self)

    def on_train_end(self) -> None:
        if self._iteration:  # the last, possibly partial, window of a deferred NaN check
            self.guard.end_iteration(self, self._iteration - 1, force=True)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, _ = batch
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        opt_d, opt_g = self.optimizers()
        it = self._iteration
        rng = self.random_stream(it)
        g_input, codes = self.sample(real.shape[0], rng)
        fake = self.generator(g_input)

        with self.toggled_optimizer(opt_d):
            real_seen = self.noise(real, it, rng).requires_grad_(self.r1.due(it))
            real_logits, real_features = self.discriminator(real_seen)
            fake_logits, fake_features = self.discriminator(self.noise(fake.detach(), it, rng))
            loss_d = self.loss.d_loss(real_logits, fake_logits) + self.r1(real_logits, real_seen, it)
            if self.loss.penalty_weight:
                penalty = gradient_penalty(self.discriminator, real_seen, self.noise(fake.detach(), it, rng), rng)
                loss_d = loss_d + self.loss.penalty_weight * penalty
            loss_q, mi = self.q_loss(fake_features, codes)
            loss_real, real_metrics = self.real_data_loss(real, real_features, rng)
            loss_moved, moved_metrics = self.moved_fake_loss(fake.detach(), codes, it, rng)
            loss_q = loss_q + loss_real + loss_moved
            real_metrics.update(moved_metrics)
            if not self._optimizer_step(opt_d, {"loss/d": loss_d, "loss/q": loss_q}):
                return self._end_iteration(it)

        if (it + 1) % self.d_steps_per_g == 0:
            with self.toggled_optimizer(opt_g):
                g_logits, g_features = self.discriminator(self.noise(fake, it, rng))
                loss_g = self.loss.g_loss(g_logits) + self.generator_info_loss(g_features, codes)
                loss_g = loss_g + self.moved_fake_loss(fake, codes, it, rng, g_step=True)[0]
                if not self._optimizer_step(opt_g, {"loss/g": loss_g}):
                    return self._end_iteration(it)
            if self.g_ema is not None:
                self.g_ema.update(self.generator, it)
            self._last_loss_g = loss_g.detach()  # logged at the next written batch, as with d_steps_per_g > 1
        for sched in self.lr_schedulers() or []:
            sched.step()
        self._end_iteration(it)
        if not self._step_metrics_written(it):
            return

        metrics = {"iteration": float(it + 1), "loss/d": loss_d.detach(), "noise/std": self.noise.std_at(it)}
        if self.lr_schedulers():  # a schedule: the rates it has reached (D's and Q's optimizer, G's)
            metrics["lr/d"], metrics["lr/g"] = (opt.param_groups[0]["lr"] for opt in (opt_d, opt_g))
        if self._last_loss_g is not None:
            metrics["loss/g"] = self._last_loss_g
        real_score, fake_score = real_logits.detach().mean(), fake_logits.detach().mean()
        if self.loss.bounded:
            d_real, d_fake = torch.sigmoid(real_logits.detach()).mean(), torch.sigmoid(fake_logits.detach()).mean()
            metrics.update({"d/real": d_real, "d/fake": d_fake, "d/fake_over_real": d_fake / d_real})
        else:  # critic scores are not probabilities
            metrics.update({"d/real": real_score, "d/fake": fake_score, "d/gap": real_score - fake_score})
        if self.guard.policy == "rollback":
            metrics["nan/rollbacks"] = float(self.guard.rollbacks)
        if mi:
            metrics["loss/q"] = loss_q.detach()
            metrics.update({f"mi/{name}": value.detach() for name, value in mi.items()})
        metrics.update({name: value.detach() for name, value in real_metrics.items()})
        metrics.update(self.info_metrics())
        self._write_step_metrics(it, metrics)

    def _write_step_metrics(self, it: int, metrics: dict) -> None:
        """Every metric to the loggers in one go: the tensors cross to the host in a single copy (one synchronization
        per written iteration, not one per value), then `Logger.log_metrics` at step `it`. Lightning's `self.log`
        (about a millisecond of Python each) carries only the progress bar's few values."""
        tensors = {k: v for k, v in metrics.items() if torch.is_tensor(v)}
        values = torch.stack([v.float().reshape(()) for v in tensors.values()]).tolist() if tensors else []
        self.step_metrics = {
            **{k: float(v) for k, v in metrics.items() if k not in tensors},
            **dict(zip(tensors, values, strict=True)),
        }
        for logger in self.loggers:
            logger.log_metrics(self.step_metrics, step=it)
        for name in PROGRESS_BAR:
            if name in self.step_metrics:
                self.log(name, self.step_metrics[name], on_step=True, on_epoch=False, prog_bar=True, logger=False)

    def _end_iteration(self, it: int) -> None:
        self._iteration = it + 1
        self.guard.end_iteration(self, it)

    def _step_metrics_written(self, it: int) -> bool:
        """Whether the loggers write this batch's step metrics (every `trainer.log_every_n_steps` batches).

        Lightning drops on_step values logged between writes, yet each `self.log` call costs about a millisecond of
        Python on every batch; so the step metrics are computed and logged only on the batches that are written.
        """
        trainer = self._trainer
        if trainer is None or trainer.fast_dev_run:
            return True
        return (it + 1) % max(1, trainer.log_every_n_steps) == 0

    def q_loss(self, fake_features: Tensor, codes: Codes) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss added to the D step for the Q head, and L_I per code. A plain GAN has none."""
        return fake_features.new_zeros(()), {}

    def real_data_loss(
        self, real: Tensor, real_features: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of Q on real images added to the D step (InfoGAN's real-data MI terms), and its metrics. None here."""
        return real_features.new_zeros(()), {}

    def moved_fake_loss(
        self, fake: Tensor, codes: Codes, it: int, generator: torch.Generator, g_step: bool = False
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Information term on transformed generated images, added to the D step (fake detached) and the G step
        (`g_step`), and its metrics. A plain GAN has none."""
        return fake.new_zeros(()), {}

    def generator_info_loss(self, fake_features: Tensor, codes: Codes) -> Tensor:
        """Information term added to the G loss. A plain GAN has none."""
        return fake_features.new_zeros(())

    def info_metrics(self) -> dict[str, Tensor]:
        """Extra step metrics of the information term, for the logged batches. A plain GAN has none."""
        return {}

    def _optimizer_step(self, opt, losses: dict[str, Tensor]) -> bool:
        """One guarded update of `opt` on the sum of `losses`; False when the NaN guard refused it."""
        total = sum(losses.values())
        if not self.guard.allow(self, opt, losses, total):
            return False
        opt.zero_grad(set_to_none=True)
        self.manual_backward(self.guard.loss_for_backward(self, total))
        opt.step()
        self.guard.after_step(opt)
        return True

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Adds what a bit-for-bit resume needs beyond Lightning's state: every random generator, the iteration
        and the NaN guard's state. A deferred guard reads its window first, so no non-finite loss goes unreported
        into a checkpoint."""
        if self._iteration and not self._saving_checked:
            self._saving_checked = True  # a stop writes last_finite.ckpt, which comes back here
            try:
                self.guard.end_iteration(self, self._iteration - 1, force=True)
            finally:
                self._saving_checked = False
        checkpoint["iteration"] = self._iteration
        checkpoint["nan_iteration"] = self.guard.stopped_at
        checkpoint["nan_guard"] = self.guard.state_dict()
        checkpoint["rng_states"] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._iteration = checkpoint.get("iteration", 0)
        self.guard.load_state_dict(checkpoint.get("nan_guard", {}))
        if "rng_states" in checkpoint:
            set_rng_state(checkpoint["rng_states"])

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Nothing per batch: a validation is the Evaluation callback's (every metric, `val/d_real` included, on
        fixed subsets of the held-out data); the loop runs one batch (`trainer.limit_val_batches`)."""
