"""A trained run from Python (a notebook): generate with chosen codes, draw labelled traversals, encode images.

from infogan_pl import load_run
run = load_run("outputs/basicprop_line/<time>")      # a run directory or a .ckpt
images = run.generate(cat=3, cont=[0.5, 0.0], n=8)   # (8, 1, 28, 28) in [-1, 1]
figure = run.traverse(cat=0, cont=0)                 # the labelled traversal, a matplotlib Figure
codes = run.encode(images)                           # Q's categorical values and continuous means
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from infogan_pl.checkpointing import LAST
from infogan_pl.data.sampling import take
from infogan_pl.evaluate import load_checkpoint
from infogan_pl.figures.traversals import traversal_plot
from infogan_pl.latent import Codes
from infogan_pl.metrics.evaluation import encoder_modules, estimate_batch_norm


@dataclass
class Encoded:
    """What Q reads off images: `cat` (N, n_cat) the most likely value of each categorical code, `cat_probs` a list
    of (N, K_i) probabilities, `cont` (N, n_cont) the means of the continuous codes (a VAE: of its code)."""

    cat: Tensor
    cat_probs: list[Tensor]
    cont: Tensor


@dataclass
class TrainedRun:
    """A checkpoint's model in eval mode (G's weight average when the run kept one), with its configuration."""

    model: torch.nn.Module
    config: DictConfig
    iteration: int
    path: Path

    @property
    def latent(self):
        return self.model.latent

    @torch.no_grad()
    def generate(
        self,
        n: int = 16,
        cat: int | list[int] | Tensor | None = None,
        cont: float | list[float] | Tensor | None = None,
        z: Tensor | None = None,
        seed: int = 0,
    ) -> Tensor:
        """n images (n, C, H, W) in [-1, 1]. cat: one value per categorical code (an int for the first, a list for
        all), or (n,) / (n, n_cat) values; cont: one value per continuous code, or (n, n_cont); z: (n, z_dim). What
        is not given is drawn from the prior with `seed`. A VAE takes z only (its code)."""
        latent = self.latent
        g_input, codes = latent.sample(n, generator=torch.Generator().manual_seed(seed))
        z_part = g_input[:, : latent.z_dim] if z is None else torch.as_tensor(z, dtype=torch.float32).reshape(n, -1)
        categorical, continuous = codes.categorical.clone(), codes.continuous.clone()
        if cat is not None:
            values = _per_image(cat, n, torch.long)
            _check_values("cat", values.shape[1], len(latent.categorical), "categorical")
            for i, k in enumerate(latent.categorical[: values.shape[1]]):
                if not bool(((values[:, i] >= 0) & (values[:, i] < k)).all()):
                    got = sorted(set(values[:, i].tolist()))
                    raise ValueError(f"cat: code {i} is Cat({k}), its values are 0..{k - 1}; got {got}.")
            categorical[:, : values.shape[1]] = values
        if cont is not None:
            values = _per_image(cont, n, torch.float32)
            _check_values("cont", values.shape[1], latent.continuous, "continuous")
            continuous[:, : values.shape[1]] = values
        if not latent.has_codes:
            return self.model.generate(z_part).cpu()
        return self.model.generate(latent.assemble(z_part, Codes(categorical, continuous))).cpu()

    def traverse(self, cat: int = 0, cont: int | None = 0, steps: int = 9, span: float = 2.0, seed: int = 0):
        """The labelled traversal (a matplotlib Figure): rows are categorical code `cat`'s values, columns sweep
        continuous code `cont` over [-span, span] (cont=None, or a run without continuous codes: columns are draws
        of z, the figure named `samples`)."""
        n_cat, n_cont = len(self.latent.categorical), self.latent.continuous
        if not 0 <= cat < max(n_cat, 1):
            below = max(n_cat, 1)
            raise ValueError(f"cat={cat}: this run has {n_cat} categorical code(s); give an index below {below}.")
        if cont is not None and n_cont and not 0 <= cont < n_cont:
            raise ValueError(f"cont={cont}: this run has {n_cont} continuous code(s); give an index below {n_cont}.")
        inputs = self.latent.traversal(cat_index=cat, cont_index=cont, steps=steps, span=span, seed=seed)
        with torch.no_grad():
            images = self.model.generate(inputs).float().cpu()
        swept = f"cont{cont}" if cont is not None and self.latent.continuous else "samples"
        name = f"cat{cat}_{swept}" if self.latent.categorical else swept
        title = f"{self.config.name}, seed {self.config.seed}, iteration {self.iteration}"
        return traversal_plot(images, name, steps, span, title)

    @torch.no_grad()
    def encode(self, images: Tensor) -> Encoded:
        """Q's reading of images (N, C, H, W) in [-1, 1] (the VAE: its encoder's)."""
        q = self.model.encode(images.to(self.model.device))
        probs = [logits.softmax(dim=1).cpu() for logits in q.logits]
        cat = torch.stack([p.argmax(1) for p in probs], 1) if probs else torch.zeros(len(images), 0, dtype=torch.long)
        return Encoded(cat, probs, q.mean.float().cpu())


def _check_values(arg: str, given: int, codes: int, kind: str) -> None:
    if given > codes:
        raise ValueError(f"{arg}: {given} values for this run's {codes} {kind} code(s); give at most {codes}.")


def _per_image(given, n: int, dtype) -> Tensor:
    """(n, k) code values: a tensor with n rows gives each image its own; a number or a list (one value per code)
    is the same for every image."""
    values = torch.as_tensor(given, dtype=dtype)
    if isinstance(given, Tensor) and values.dim() >= 1 and values.shape[0] == n:
        return values.reshape(n, -1)
    return values.reshape(1, -1).expand(n, -1)


def load_run(path: str | Path, device: str = "cpu", bn_images: int = 4096) -> TrainedRun:
    """A trained run from its directory (its checkpoints/last.ckpt) or a checkpoint file. The encoder's batch-norm
    statistics are re-estimated on `bn_images` real training images, as the evaluation measures Q (0: as trained)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / LAST if (path / "checkpoints").is_dir() else path / LAST
    cfg, datamodule, model, iteration = load_checkpoint(path, device=device)
    if bn_images:
        images, _ = take(datamodule.train_set, bn_images)
        forward = model.encode if hasattr(model, "encode") else model.discriminator
        estimate_batch_norm(encoder_modules(model), images.to(model.device), forward)
    model.eval()
    return TrainedRun(model, cfg, iteration, path)
