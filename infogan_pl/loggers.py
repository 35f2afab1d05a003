"""The run's loggers: a CSV file that a resumed run continues, and Weights & Biases set up so that it never prompts,
never hangs a run, continues the W&B run of a resumed one, and falls back to the other loggers."""

from __future__ import annotations

import csv
import io
import logging
import netrc
import os
import secrets
from pathlib import Path
from typing import Any

from lightning.pytorch import loggers as pl_loggers
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from infogan_pl.atomic import atomic_write

log = logging.getLogger(__name__)

# Metric families drawn against `iteration` (completed training iterations, logged with every row) on the dashboard.
STEP_METRICS = ("loss/*", "mi/*", "d/*", "noise/*", "metric/*", "val/*")


class MetricsWriter(ExperimentWriter):
    """Lightning's writer of metrics.csv, except that:
    - a resumed run keeps the rows of the run it continues, up to the checkpoint's iteration (rows a killed run wrote
      after its checkpoint go), where Lightning deletes the file;
    - rows have no `step` column: Lightning's counted batches on training rows and optimizer steps (two per
      iteration) on evaluation rows; every row has `iteration`, completed training iterations;
    - a rewrite (a resume, a wider header) replaces the file whole (infogan_pl.atomic), never truncates it."""

    def __init__(self, log_dir: str, resume_iteration: int | None = None) -> None:
        self.resume_iteration = resume_iteration
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.resume_iteration is None or not path.is_file():
            return super()._check_log_dir_exists()  # a fresh run in a used directory starts a fresh file
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = [k for k in reader.fieldnames or [] if k != "step"]
            rows = [r for r in reader if float(r.get("iteration") or "inf") <= self.resume_iteration]
        self._write(header, rows)
        self.metrics_keys = header  # later rows append; new keys rewrite the file with a wider header

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics_dict, step)
        self.metrics[-1].pop("step", None)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with open(self.metrics_file_path, newline="") as f:
            rows = list(csv.DictReader(f))
        self._write(fieldnames, rows)

    def _write(self, header: list[str], rows: list[dict]) -> None:
        text = io.StringIO()
        out = csv.DictWriter(text, fieldnames=header, extrasaction="ignore")
        out.writeheader()
        out.writerows(rows)
        atomic_write(self.metrics_file_path, text.getvalue())


class CSVLogger(pl_loggers.CSVLogger):
    """Lightning's CSV logger (`<run dir>/csv/metrics.csv`) with the `MetricsWriter` above: `continue_from(iteration)`,
    called before anything is logged, makes a resumed run keep the rows of the run it continues. Rows are written
    out before every checkpoint lands (`checkpointing.LogsBeforeCheckpoint`), so a killed run's file holds every row up
    to the one it resumes from."""

    _resume_iteration: int | None = None

    @property
    @rank_zero_experiment
    def experiment(self) -> MetricsWriter:
        if self._experiment is None:
            Path(self.root_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = MetricsWriter(self.log_dir, self._resume_iteration)
        return self._experiment

    def continue_from(self, iteration: int) -> None:
        self._resume_iteration = iteration
        self.experiment  # noqa: B018 - creating the writer rewrites the file now


class TensorBoardLogger(pl_loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger (`<run dir>/tensorboard/`) with every scalar against `iteration`, completed
    training iterations, as in metrics.csv and on W&B (Lightning's own step counts optimizer steps on evaluation
    rows: two per iteration). Traversal grids and figures go under `images/`."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if "iteration" in metrics:
            step = int(metrics["iteration"])
        super().log_metrics({k: v for k, v in metrics.items() if k not in ("iteration", "epoch")}, step)


def wandb_api_key_configured() -> bool:
    """True when W&B can log in without asking: WANDB_API_KEY is set or ~/.netrc has api.wandb.ai."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(requested: str | None = None) -> str:
    """`online` when an API key is configured, else `offline`; WANDB_MODE or an explicit mode wins."""
    mode = requested or os.environ.get("WANDB_MODE")
    if mode in ("online", "offline", "disabled"):
        return mode
    return "online" if wandb_api_key_configured() else "offline"


def wandb_logger(
    project: str = "infogan_pl",
    save_dir: str = ".",
    mode: str | None = None,
    init_timeout: float = 30.0,
    **kwargs: Any,
):
    """A started Lightning WandbLogger, or None (with one warning) when W&B cannot start: the run goes on with the
    other loggers. None, without importing wandb, in the disabled mode. kwargs go to wandb.init (entity, tags, group,
    job_type, name, ...)."""
    mode = wandb_mode(mode)
    if mode == "disabled":
        log.info("W&B disabled (WANDB_MODE or logger.wandb.mode): no W&B run")
        return None
    try:
        import wandb
        from lightning.pytorch.loggers import WandbLogger

        Path(save_dir).mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_SILENT", "true")
        settings = wandb.Settings(init_timeout=init_timeout, console="off", x_disable_stats=True)
        # One W&B run per run directory: a resumed run (ckpt_path=last) continues the W&B run it started.
        id_file = Path(save_dir) / "wandb" / "run_id"
        if "id" not in kwargs:
            kwargs["id"] = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)
        # Started here (not by the logger at step 1), so a failure shows now and the run goes on without W&B.
        run = wandb.init(project=project, dir=save_dir, mode=mode, settings=settings, resume="allow", **kwargs)
        atomic_write(id_file, run.id)
        logger = WandbLogger(experiment=run, project=project, save_dir=save_dir)
        run.define_metric("iteration")
        run.define_metric("trainer/global_step")
        for pattern in STEP_METRICS:
            run.define_metric(pattern, step_metric="iteration")
        log.info("W&B run %s (%s mode) in %s", run.id, mode, save_dir)
        return logger
    except Exception as err:  # W&B raises many types (CommError, UsageError, timeouts): never fatal here
        log.warning("W&B could not start (%s: %s); continuing with the other loggers.", type(err).__name__, err)
        return None


def log_mi_panel(trainer, history: dict[str, list[tuple[int, float]]]) -> None:
    """One W&B panel with L_I of every code over training (a line series), for the W&B loggers among trainer's."""
    from lightning.pytorch.loggers import WandbLogger

    loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
    if not loggers or not history:
        return
    import wandb

    names = sorted(history)
    xs = [[x for x, _ in history[n]] for n in names]
    ys = [[y for _, y in history[n]] for n in names]
    chart = wandb.plot.line_series(xs=xs, ys=ys, keys=names, title="L_I per code (nats)", xname="iteration")
    for lg in loggers:
        iteration = max(x for series in xs for x in series)
        lg.experiment.log({"mi/per_code": chart, "iteration": iteration, "trainer/global_step": trainer.global_step})


def finish_wandb(trainer) -> None:
    """Close the W&B run of this job (Hydra multirun starts the next job in the same process)."""
    from lightning.pytorch.loggers import WandbLogger

    for lg in trainer.loggers:
        if isinstance(lg, WandbLogger):
            lg.experiment.finish()
