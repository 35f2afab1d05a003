"""Callbacks that write what a researcher looks at: traversal grids."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torchvision.utils import make_grid, save_image


class TraversalGrid(L.Callback):
    """Saves a latent traversal grid per continuous code at each validation epoch.

    Rows: values of categorical code 0; columns: the continuous code swept over [-span, span]; z and the other
    codes fixed (seeded), as in the InfoGAN figures. Files: <dirpath>/iter<N>_cont<j>.png; without a continuous
    code, <dirpath>/iter<N>_samples.png whose columns are seeded draws of z.
    """

    def __init__(self, dirpath: str, steps: int = 9, span: float = 2.0, seed: int = 0) -> None:
        self.dirpath, self.steps, self.span, self.seed = Path(dirpath), steps, span, seed

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        latent = pl_module.latent
        self.dirpath.mkdir(parents=True, exist_ok=True)
        names = [f"cont{j}" for j in range(latent.continuous)] or ["samples"]
        for j, name in enumerate(names):
            cont_index = j if latent.continuous else None
            inputs = latent.traversal(cont_index=cont_index, steps=self.steps, span=self.span, seed=self.seed)
            images = pl_module.generate(inputs).float().cpu()
            grid = make_grid(images, nrow=self.steps, normalize=True, value_range=(-1, 1), pad_value=0.5)
            save_image(grid, self.dirpath / f"iter{pl_module.iteration:06d}_{name}.png")
