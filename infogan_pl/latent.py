"""The generator's input: incompressible noise z and the structured latent codes c of InfoGAN."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

SWEEP_DRAWS = 6  # rows of a traversal without a categorical code: seeded draws of z and the other codes


class Codes(NamedTuple):
    """Code targets of a batch: categorical values (B, n_cat) long; continuous values (B, n_cont) in [-1, 1]."""

    categorical: Tensor
    continuous: Tensor


@dataclass(frozen=True)
class LatentSpec:
    """z (normal or uniform, may be empty) + categorical codes Cat(K) + continuous codes U(-1, 1).

    The generator input is the concatenation [z, one-hot(cat_0), ..., one-hot(cat_n), cont_0, ..., cont_m].
    """

    z_dim: int = 62
    z_prior: str = "uniform"
    categorical: list[int] = field(default_factory=lambda: [10])
    continuous: int = 2
    z_scale: float = 1.0  # z is drawn from the prior times this (ClusterGAN: 0.1 x N(0, 1), so c must carry the class)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categorical", [int(k) for k in self.categorical])
        if self.z_dim < 0 or self.continuous < 0:
            raise ValueError(f"latent.z_dim ({self.z_dim}) and latent.continuous ({self.continuous}) must be >= 0.")
        if not self.z_scale > 0:
            raise ValueError(f"latent.z_scale must be > 0, got {self.z_scale}.")
        if self.z_prior not in ("normal", "uniform"):
            raise ValueError(f"latent.z_prior must be 'normal' or 'uniform', got {self.z_prior!r}.")
        if any(k < 2 for k in self.categorical):
            raise ValueError(f"latent.categorical sizes must each be >= 2, got {self.categorical}.")
        if self.z_dim == 0 and not self.categorical and self.continuous == 0:
            raise ValueError(
                "The latent spec is empty (no z and no codes): set latent.z_dim > 0 or add a code "
                "(latent.categorical=[10] or latent.continuous=2)."
            )

    @property
    def input_dim(self) -> int:
        """Width of the generator input."""
        return self.z_dim + sum(self.categorical) + self.continuous

    @property
    def has_codes(self) -> bool:
        return bool(self.categorical) or self.continuous > 0

    @property
    def code_names(self) -> list[str]:
        """Stable code names used in logs: cat0, cat1, ..., cont0, cont1, ..."""
        return [f"cat{i}" for i in range(len(self.categorical))] + [f"cont{j}" for j in range(self.continuous)]

    def entropies(self) -> dict[str, float]:
        """H(c) in nats per code: ln K for Cat(K), ln 2 for U(-1, 1) (differential entropy)."""
        h = {f"cat{i}": math.log(k) for i, k in enumerate(self.categorical)}
        h.update({f"cont{j}": math.log(2.0) for j in range(self.continuous)})
        return h

    def sample_z(
        self, batch: int, device: torch.device | str | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """z: (B, z_dim) from the configured prior, times z_scale."""
        if self.z_prior == "normal":
            z = torch.randn(batch, self.z_dim, device=device, generator=generator)
        else:
            z = torch.rand(batch, self.z_dim, device=device, generator=generator) * 2 - 1
        return z * self.z_scale if self.z_scale != 1.0 else z

    def sample(
        self, batch: int, device: torch.device | str | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Codes]:
        """Generator input (B, input_dim) and the code targets it encodes (drawn from `generator` if given)."""
        cat = (
            torch.stack(
                [torch.randint(k, (batch,), device=device, generator=generator) for k in self.categorical], dim=1
            )
            if (self.categorical)
            else torch.zeros(batch, 0, dtype=torch.long, device=device)
        )
        cont = torch.rand(batch, self.continuous, device=device, generator=generator) * 2 - 1
        codes = Codes(cat, cont)
        return self.assemble(self.sample_z(batch, device, generator), codes), codes

    def assemble(self, z: Tensor, codes: Codes) -> Tensor:
        """Concatenate z (B, z_dim) and codes into the generator input (B, input_dim)."""
        parts = [z] + [F.one_hot(codes.categorical[:, i], k).to(z.dtype) for i, k in enumerate(self.categorical)]
        parts.append(codes.continuous.to(z.dtype))
        return torch.cat(parts, dim=1)

    def traversal(
        self, cat_index: int = 0, cont_index: int | None = 0, steps: int = 9, span: float = 2.0, seed: int = 0
    ) -> Tensor:
        """Fixed grid inputs (rows * steps, input_dim), row-major, as in the papers' figures.

        Rows: the values of categorical code `cat_index`; without one, `SWEEP_DRAWS` seeded draws of z and the other
        continuous codes, one per row (with z_dim = 0 the other codes are all that varies between rows).
        Columns: continuous code `cont_index` swept over [-span, span] with z and the other codes fixed by `seed`
        (the other continuous codes at 0 under a categorical code); with `cont_index=None` (or no continuous code)
        each column instead draws its own z and other codes, shared down the column. Without any code to sweep (a
        vanilla GAN) every cell is its own draw: `SWEEP_DRAWS` rows of samples.
        """
        gen = torch.Generator().manual_seed(seed)
        sweep = cont_index is not None and self.continuous > 0
        rows = self.categorical[cat_index] if self.categorical else SWEEP_DRAWS
        # draws of z and the codes: one per row unless rows are a categorical code's values, one per column unless
        # the columns sweep a continuous code
        draws = (1 if self.categorical else rows) * (1 if sweep else steps)
        z = self.sample_z(draws, generator=gen)
        cat = (
            torch.stack([torch.randint(k, (draws,), generator=gen) for k in self.categorical], 1)
            if (self.categorical)
            else torch.zeros(draws, 0, dtype=torch.long)
        )
        cont = torch.rand(draws, self.continuous, generator=gen) * 2 - 1
        if sweep and self.categorical:
            cont[:] = 0.0
        # broadcast the draws to the full grid: cell (r, c) takes column draw c, row draw r, the single draw, or (no
        # code at all) its own
        cell = torch.arange(rows * steps)
        draw_of_cell = (cell // steps) % draws if sweep else cell % draws
        z, cat, cont = z[draw_of_cell], cat[draw_of_cell].clone(), cont[draw_of_cell].clone()
        if self.categorical:
            cat[:, cat_index] = torch.arange(rows).repeat_interleave(steps)
        if sweep:
            cont[:, cont_index] = torch.linspace(-span, span, steps).repeat(rows)
        return self.assemble(z, Codes(cat, cont))

    def value_traversal(
        self, cat_index: int, value: int, rows: int = 8, steps: int = 9, span: float = 2.0, seed: int = 0
    ) -> Tensor:
        """Inputs (rows * steps, input_dim) for one value of categorical code `cat_index`: each row its own seeded z
        and other codes, columns sweep continuous code 0 over [-span, span] (or draw z again without one)."""
        gen = torch.Generator().manual_seed(seed)
        n = rows * steps
        z = self.sample_z(n, generator=gen)
        cat = torch.stack([torch.randint(k, (n,), generator=gen) for k in self.categorical], 1)
        cont = torch.rand(n, self.continuous, generator=gen) * 2 - 1
        row = torch.arange(n) // steps
        if self.continuous:  # the same z and codes along a row, continuous code 0 swept across it
            z, cat, cont = z[row * steps], cat[row * steps].clone(), cont[row * steps].clone()
            cont[:, 0] = torch.linspace(-span, span, steps).repeat(rows)
        cat[:, cat_index] = value
        return self.assemble(z, Codes(cat, cont))
