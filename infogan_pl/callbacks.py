"""Callbacks that write what a researcher looks at: traversal grids, evaluation metrics and figures."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torchvision.io import ImageReadMode, read_image

from infogan_pl.figures import mi_curve, mi_heatmap, save_grids, save_mi_table, traversal_grids
from infogan_pl.loggers import log_mi_panel
from infogan_pl.metrics.evaluation import Budget, evaluate_model


def log_images(trainer: L.Trainer, images: dict[str, torch.Tensor], step: int) -> None:
    """Send images (3, H, W) in [0, 1] to every active logger that takes images (W&B, TensorBoard).

    One key per image: W&B shows a list under one key at a single size, so grids of different shapes must not share.
    """
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # WandbLogger
            for name, image in images.items():
                logger.log_image(key=name, images=[image], step=step)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoardLogger
            for name, image in images.items():
                logger.experiment.add_image(f"images/{name}", image, step)


class TraversalGrid(L.Callback):
    """Saves latent traversal grids at each validation: <dirpath>/iter<N>_cat<i>_cont<j>.png.

    Rows: values of categorical code i; columns: continuous code j swept over [-span, span]; z and the other codes
    fixed (seeded), as in the InfoGAN figures. Without a continuous code the columns are seeded draws of z.
    """

    def __init__(self, dirpath: str, steps: int = 9, span: float = 2.0, seed: int = 0) -> None:
        self.dirpath, self.steps, self.span, self.seed = Path(dirpath), steps, span, seed

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        was_training = pl_module.training
        pl_module.eval()
        grids = traversal_grids(pl_module, self.steps, self.span, self.seed)
        pl_module.train(was_training)
        save_grids(grids, self.dirpath, f"iter{pl_module.iteration:06d}")
        log_images(trainer, {f"traversal/{k}": v for k, v in grids.items()}, trainer.global_step)


class Evaluation(L.Callback):
    """At each validation: every metric of `infogan_pl.metrics.evaluation` that applies, on fixed subsets, logged
    under stable names; the code x factor MI heatmap and the MI-per-code curve saved under <dirpath>."""

    def __init__(
        self,
        dirpath: str,
        real: int = 10_000,
        generated_per_value: int = 100,
        fid: int = 2_000,
        mi: int = 4_096,
        seed: int = 1234,
    ) -> None:
        self.dirpath = Path(dirpath)
        self.budget = Budget(real=real, generated_per_value=generated_per_value, fid=fid, mi=mi, seed=seed)
        self.history: dict[str, list[tuple[int, float]]] = {}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        result = evaluate_model(pl_module, trainer.datamodule, self.budget)
        it = pl_module.iteration
        for name, value in result.metrics.items():
            pl_module.log(name, value, rank_zero_only=True, prog_bar=name == "metric/cat_acc")
            if name.startswith("mi/eval_") and name != "mi/eval_total":
                self.history.setdefault(name.removeprefix("mi/eval_"), []).append((it, value))
        figures = []
        if self.history:
            log_mi_panel(trainer, self.history)
            figures.append(mi_curve(self.history, pl_module.latent.entropies(), self.dirpath / "mi_curve.png"))
        if result.mi_matrix is not None:
            labels = (result.code_labels, result.factor_labels)
            figures.append(mi_heatmap(result.mi_matrix, *labels, self.dirpath / "mi_heatmap.png"))
            save_mi_table(result.mi_matrix, *labels, self.dirpath / "mi_table.csv")
        if figures:
            images = {f"figures/{p.stem}": read_image(str(p), ImageReadMode.RGB).float() / 255 for p in figures}
            log_images(trainer, images, trainer.global_step)

    def state_dict(self) -> dict:
        return {"history": {k: [list(p) for p in v] for k, v in self.history.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = {k: [tuple(p) for p in v] for k, v in state_dict.get("history", {}).items()}


class ConfigInCheckpoint(L.Callback):
    """Stores the resolved run configuration in every checkpoint, so `evaluate` can rebuild the model from it."""

    def __init__(self, config: dict) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["infogan_pl_config"] = self.config


class PreemptionCheckpoint(L.Callback):
    """On SIGTERM (what SLURM sends before preemption or the time limit) Lightning stops after the current batch;
    this saves checkpoints/last.ckpt first, so `ckpt_path=last` (or a requeue) continues exactly from there."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.checkpoint_callback is not None:
            path = Path(trainer.checkpoint_callback.dirpath) / "last.ckpt"
            trainer.save_checkpoint(path, weights_only=False)
            if trainer.is_global_zero:
                print(f"SIGTERM at iteration {pl_module.iteration}: saved {path}; resume with ckpt_path=last")
