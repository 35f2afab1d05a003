"""One training run: check → seed → build → fit → evaluate → summary.json, the metrics table and the run dir.

`python -m infogan_pl` (infogan_pl/__main__.py) composes the configuration and calls `run`; tests call `train`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from infogan_pl.atomic import atomic_write
from infogan_pl.build import build, build_callbacks, build_loggers, build_trainer
from infogan_pl.callbacks import Evaluation, refresh_curves
from infogan_pl.checkpointing import effective_overrides, resume_path, resumed_iteration, stored_invocations
from infogan_pl.loggers import CSVLogger, finish_wandb
from infogan_pl.report import metrics_table
from infogan_pl.validation import validate

log = logging.getLogger(__name__)
# Lightning warns on every periodic checkpoint under manual optimization that it holds the state after the
# optimizer step: exactly what a resumable GAN checkpoint must hold.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
# Lightning 2.6 calls a torch pytree API that torch 2.10+ deprecates, once per fit and validate: nothing to act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _recipe() -> str | None:
    """The recipe group's choice (`recipe=...`, the preset's or the command line's): the values are in config.yaml,
    the name only in Hydra's choices."""
    return HydraConfig.get().runtime.choices.get("recipe") if HydraConfig.initialized() else None


@dataclass
class Outcome:
    value: float  # cfg.optimized_metric at the end (NaN if training stopped at a non-finite loss)
    nan_iteration: int | None


def train(cfg: DictConfig) -> float:
    """Train one configuration; returns `cfg.optimized_metric` at the end (NaN if training diverged)."""
    return run(cfg).value


def run(cfg: DictConfig) -> Outcome:
    """Train one configuration, write summary.json, print the metrics table and the run directory."""
    validate(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    out = Path(cfg.paths.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    datamodule, model = build(cfg)
    resume = resume_path(cfg)
    invocations = [*(stored_invocations(resume) if resume is not None else []), _overrides()]
    trainer = build_trainer(cfg, callbacks=build_callbacks(cfg, invocations), loggers=build_loggers(cfg))
    if trainer.is_global_zero:  # under DDP every rank runs this function; one writes the run's files
        atomic_write(out / "config.yaml", OmegaConf.to_yaml(config))
    for lg in trainer.loggers:
        if resume is not None and isinstance(lg, CSVLogger):
            lg.continue_from(resumed_iteration(resume))
        lg.log_hyperparams(config)
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume)  # LastCheckpoint writes checkpoints/last.ckpt
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}  # validate() replaces callback_metrics
    evaluation = next((c for c in trainer.callbacks if isinstance(c, Evaluation)), None)
    guard = getattr(model, "guard", None)  # the GANs' NaN guard; the VAE has none
    nan_message = guard.message if guard is not None else None
    if not nan_message and evaluation is not None and evaluation.last_iteration != model.iteration:
        trainer.validate(model, datamodule=datamodule, verbose=False)  # the run ended between evaluations
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    value = math.nan if nan_message else metrics.get(cfg.optimized_metric, math.nan)
    finish_wandb(trainer)
    if trainer.is_global_zero:
        bad = guard.bad_loss if guard is not None else None
        summary = {
            "experiment": cfg.name,
            "run_dir": str(out),
            "seed": cfg.seed,
            "recipe": _recipe(),
            "optimized_metric": cfg.optimized_metric,
            "overrides": effective_overrides(invocations),  # what it trained with, over every invocation
            "invocations": invocations,  # each command line's overrides, in order (a resume adds one)
            "machine": machine(),
            "iterations": model.iteration,
            "nan_iteration": guard.stopped_at if guard is not None else None,
            "nan_loss": {"name": bad[0], "value": str(bad[1])} if bad else None,
            "metrics": {k: v if math.isfinite(v) else None for k, v in metrics.items()},  # strict JSON: null
        }
        atomic_write(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True, allow_nan=False))
        if nan_message or evaluation is None:  # else the closing evaluation drew them, every row included
            refresh_curves(trainer)  # a NaN stop: its rows and the line at its iteration
        if nan_message:
            print(f"error: {nan_message}", file=sys.stderr)
        else:
            print(metrics_table(metrics))
            recipe = f" (recipe={summary['recipe']})" if summary["recipe"] else ""
            print(f"Finished {cfg.name}{recipe}: {model.iteration} iterations, {cfg.optimized_metric} = {value:.4f}")
        print(f"Outputs in {out}")
    return Outcome(value, guard.stopped_at if guard is not None else None)


def machine() -> dict:
    """Where a run ran: a GAN's trajectory depends on the float summation order, which changes with the CPU (or GPU)
    and the number of torch threads, so the same seed is another run elsewhere."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), cpu)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "gpu": gpu, "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
