"""Callbacks that write what a researcher looks at: traversal grids, evaluation metrics and figures."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torchvision.io import ImageReadMode, read_image

from infogan_pl.data.sampling import take
from infogan_pl.figures import (
    code_table,
    draw_curves,
    mi_heatmap,
    raw_grid,
    save_mi_table,
    save_traversals,
    traversal_images,
)
from infogan_pl.loggers import CSVLogger, log_mi_panel
from infogan_pl.metrics.evaluation import BN_MODES, Budget, evaluate_model, untrained_baseline


def log_images(trainer: L.Trainer, images: dict[str, torch.Tensor], iteration: int) -> None:
    """Send images (3, H, W) in [0, 1] to every active logger that takes images (W&B, TensorBoard), at `iteration`
    (W&B: at its trainer/global_step, against which it draws images).

    One key per image: W&B shows a list under one key at a single size, so grids of different shapes must not share.
    """
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # WandbLogger
            for name, image in images.items():
                logger.log_image(key=name, images=[image], step=trainer.global_step)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoardLogger
            for name, image in images.items():
                logger.experiment.add_image(f"images/{name}", image, iteration)


class TraversalGrid(L.Callback):
    """Saves labelled latent traversals at each validation: <dirpath>/iter<N>_cat<i>_cont<j>.png.

    Rows: values of categorical code i; columns: continuous code j swept over [-span, span]; z and the other codes
    fixed (seeded), as in the InfoGAN figures; titled `title` (the run), the iteration and the codes. Without a
    continuous code the columns are seeded draws of z. per_value: also one grid per value of each categorical code
    (`iter<N>_cat0_value07.png`). The loggers that take images (W&B, TensorBoard) get the unlabelled grids.
    """

    def __init__(
        self,
        dirpath: str,
        steps: int = 9,
        span: float = 2.0,
        seed: int = 0,
        per_value: bool = False,
        title: str = "",
    ) -> None:
        self.dirpath, self.steps, self.span, self.seed, self.per_value = Path(dirpath), steps, span, seed, per_value
        self.title = title

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        was_training = pl_module.training
        pl_module.eval()
        images = traversal_images(pl_module, self.steps, self.span, self.seed, self.per_value)
        pl_module.train(was_training)
        it = pl_module.iteration
        title = f"{self.title}, iteration {it}".lstrip(", ")
        save_traversals(images, self.dirpath, f"iter{it:06d}", self.steps, self.span, title)
        grids = {f"traversal/{k}": raw_grid(v, self.steps) for k, v in images.items()}
        log_images(trainer, grids, it)


class Evaluation(L.Callback):
    """At each validation: every metric of `infogan_pl.metrics.evaluation` that applies, on fixed subsets, logged
    under stable names; the code x factor MI heatmap and the MI-per-code curve saved under <dirpath>.

    labeller: what labels generated images (conf/labeller/); loaded at the start of the run, never trained in a
    validation. One that cannot load (no cached LeNet) turns its metrics off with one line saying how to enable them.
    bn: `recalibrate` (default) measures Q with D / Q batch-norm statistics re-estimated on real images; `running`
    with the statistics accumulated in training (mostly from generated images).
    """

    def __init__(
        self,
        dirpath: str,
        labeller=None,
        bn: str = "recalibrate",
        real: int = 10_000,
        generated_per_value: int = 100,
        fid: int = 2_000,
        mi: int = 4_096,
        seed: int = 1234,
    ) -> None:
        if bn not in BN_MODES:
            raise ValueError(f"callbacks.evaluation.bn must be one of {BN_MODES}, got {bn!r}.")
        self.dirpath = Path(dirpath)
        self.labeller, self.bn = labeller, bn
        self.budget = Budget(real=real, generated_per_value=generated_per_value, fid=fid, mi=mi, seed=seed)
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.last_iteration: int | None = None  # the iteration of the last evaluation
        self._chance: float | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.labeller is not None:
            note = self.labeller.setup()
            if note:
                if trainer.is_global_zero:
                    print(f"note: {note}", flush=True)
                self.labeller = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning validates once more when a run is stopped; a run stopped at a non-finite loss is not measured
        if trainer.sanity_checking or getattr(pl_module, "nan_message", None):
            return
        it = self.last_iteration = pl_module.iteration  # on every rank: the entry point decides on it under DDP
        if not trainer.is_global_zero:
            return
        result = evaluate_model(pl_module, trainer.datamodule, self.budget, self.labeller, self.bn)
        if "metric/cat_acc" in result.metrics and not trainer.datamodule.factors_are_attributes:
            if self._chance is None:
                images, factors = take(trainer.datamodule.val_set, self.budget.real)
                dm = trainer.datamodule
                self._chance = untrained_baseline(pl_module, images, factors, dm.factor_names, dm.factor_kinds)
            result.metrics["metric/cat_acc_untrained"] = self._chance
        pl_module.log("iteration", float(it), rank_zero_only=True)
        for name, value in result.metrics.items():
            pl_module.log(name, value, rank_zero_only=True, prog_bar=name == "metric/cat_acc")
            if name.startswith("mi/eval_") and name != "mi/eval_total" and name.count("_") == 1:
                self.history.setdefault(name.removeprefix("mi/eval_"), []).append((it, value))
        figures = []
        if self.history:
            log_mi_panel(trainer, self.history)
        if result.mi_matrix is not None:
            labels = (result.code_labels, result.factor_labels)
            figures.append(mi_heatmap(result.mi_matrix, *labels, self.dirpath / "mi_heatmap.png"))
            save_mi_table(result.mi_matrix, *labels, self.dirpath / "mi_table.csv")
        for name, counts in result.tables.items():
            figures.append(code_table(counts, name, self.dirpath / f"{name}_table.png"))
        if figures:
            images = {f"figures/{p.stem}": read_image(str(p), ImageReadMode.RGB).float() / 255 for p in figures}
            log_images(trainer, images, it)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Redraw figures/curves.png from metrics.csv, this evaluation's row included (Lightning writes the
        evaluation's values to the loggers before this hook)."""
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        refresh_curves(trainer)

    def state_dict(self) -> dict:
        return {"history": {k: [list(p) for p in v] for k, v in self.history.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = {k: [tuple(p) for p in v] for k, v in state_dict.get("history", {}).items()}


def refresh_curves(trainer: L.Trainer) -> None:
    """Write out the CSV logger's rows and redraw the run's training curves from its metrics.csv."""
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger):
            logger.save()
            draw_curves(Path(logger.log_dir).parent)
