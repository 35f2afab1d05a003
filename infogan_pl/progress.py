"""Progress that works wherever the output goes: a bar over the run's iterations in a terminal, one line every N
iterations otherwise (a log file, SLURM, nohup, CI), each with iteration / total, it/s, ETA and the main losses."""

from __future__ import annotations

import math
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import ProgressBar

SHOWN = ("loss/d", "loss/g", "mi/total")


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def planned_iterations(trainer: L.Trainer, pl_module: L.LightningModule) -> int:
    """The iterations (batches) a fit will reach: the first of trainer.max_steps (optimizer steps, converted by the
    module's own `planned_iterations` where it has one) and trainer.max_epochs' batches; 0 if neither bounds it.
    Before the fit loop has loaded its data (configure_optimizers) the epoch bound loads it to count its batches,
    through Lightning's public `estimated_stepping_batches`."""
    totals = []
    if trainer.max_steps is not None and trainer.max_steps > 0:
        planned = getattr(pl_module, "planned_iterations", None)
        totals.append(planned(trainer.max_steps) if planned else trainer.max_steps)
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        if not math.isfinite(trainer.num_training_batches):
            trainer.estimated_stepping_batches  # noqa: B018  (loads the training data, which counts its batches)
        if math.isfinite(batches := trainer.num_training_batches):
            totals.append(int(trainer.max_epochs * batches))
    return min(totals) if totals else 0


class IterationProgress(ProgressBar):
    """Counts training iterations (batches) against the iterations the run will make, not Lightning's optimizer
    steps (two per GAN iteration) or epochs (unbounded here).

    In a terminal: one bar, redrawn in place at most every `refresh_seconds` (reading the losses is a host
    synchronization: on a GPU it must not happen every step). Otherwise: a line every `every_n_iterations`
    iterations, e.g. `iteration 500/1500 (33%)  2.4 it/s  ETA 6:56  loss/d 1.21 ...`.
    """

    def __init__(self, every_n_iterations: int = 50, refresh_seconds: float = 0.5, stream=None) -> None:
        super().__init__()
        if every_n_iterations <= 0 or refresh_seconds < 0:
            raise ValueError("callbacks.progress.every_n_iterations must be > 0 and refresh_seconds >= 0.")
        self.every, self.refresh_seconds = every_n_iterations, refresh_seconds
        self._drawn_at = 0.0
        self.stream = stream
        self._enabled = True
        self._total = 0
        self._start_iteration = 0
        self._start_time = 0.0
        self._width = 0

    # ------------------------------------------------------------------ ProgressBar interface
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def out(self):
        return self.stream or sys.stdout

    @property
    def interactive(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def print(self, *args, **kwargs) -> None:
        self._clear()
        print(*args, **kwargs, file=self.out, flush=True)

    # ------------------------------------------------------------------ numbers
    def line(self, iteration: int, metrics: dict) -> str:
        elapsed = time.perf_counter() - self._start_time
        done = iteration - self._start_iteration
        rate = done / elapsed if elapsed > 0 and done > 0 else float("nan")
        eta = (self._total - iteration) / rate if rate == rate and rate > 0 else float("nan")
        share = f" ({100 * iteration / self._total:.0f}%)" if self._total else ""
        text = f"iteration {iteration}/{self._total or '?'}{share}  {rate:.2f} it/s  ETA {_clock(eta)}"
        for name in SHOWN:
            if name in metrics:
                text += f"  {name} {float(metrics[name]):.3f}"
        return text

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._total = planned_iterations(trainer, pl_module)
        self._start_iteration = getattr(pl_module, "iteration", trainer.global_step)
        self._start_time = time.perf_counter()
        if self._enabled and trainer.is_global_zero and not self.interactive:
            start, total = self._start_iteration, self._total
            where = f"iterations, {start} to {total}" if start else "iterations"
            print(f"training: {total - start} {where}", file=self.out, flush=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        iteration = getattr(pl_module, "iteration", batch_idx + 1)
        if self.interactive:
            now = time.perf_counter()
            if now - self._drawn_at >= self.refresh_seconds or iteration == self._total:
                self._drawn_at = now
                self._draw(self.line(iteration, trainer.progress_bar_metrics))
        elif iteration % self.every == 0 or iteration == self._total:
            print(self.line(iteration, trainer.progress_bar_metrics), file=self.out, flush=True)

    def on_validation_start(self, trainer, pl_module) -> None:
        if self._enabled and trainer.is_global_zero and not trainer.sanity_checking and self.interactive:
            self._draw(self.line(getattr(pl_module, "iteration", 0), trainer.progress_bar_metrics) + "  (evaluating)")

    def on_train_end(self, trainer, pl_module) -> None:
        if self._enabled and trainer.is_global_zero and self.interactive:
            self._draw(self.line(getattr(pl_module, "iteration", 0), trainer.progress_bar_metrics))
            print(file=self.out, flush=True)
            self._width = 0

    def _draw(self, text: str) -> None:
        bar = ""
        if self._total:
            filled = int(20 * min(1.0, self._progress()))
            bar = "[" + "#" * filled + "." * (20 - filled) + "] "
        text = bar + text
        self.out.write("\r" + text.ljust(self._width))
        self.out.flush()
        self._width = len(text)

    def _progress(self) -> float:
        pl_module = self.trainer.lightning_module
        return getattr(pl_module, "iteration", 0) / self._total if self._total else 0.0

    def _clear(self) -> None:
        if self._width and self.interactive:
            self.out.write("\r" + " " * self._width + "\r")
            self._width = 0
