"""`python -m infogan_pl`: compose the config, build data, model, callbacks, loggers and trainer, fit, report."""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, OmegaConf

from infogan_pl.callbacks import ConfigInCheckpoint, PreemptionCheckpoint
from infogan_pl.loggers import finish_wandb
from infogan_pl.validation import validate

log = logging.getLogger(__name__)
# The configs live at the repository root (conf/), beside the package, as in lightning-hydra-template.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
# Lightning 2.6 warns on every periodic checkpoint under manual optimization that it holds the state after the
# optimizer step: exactly what a resumable GAN checkpoint must hold.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate the DataModule, the LightningModule and a Trainer with its callbacks and loggers."""
    latent = instantiate(cfg.latent)
    noise = instantiate(cfg.noise)
    datamodule = instantiate(cfg.data)
    # partial first: Hydra would turn a dataclass passed as a kwarg (the LatentSpec) back into a config
    loss = instantiate(cfg.loss)
    model = instantiate(cfg.model, _partial_=True)(latent=latent, noise=noise, loss=loss, channels=datamodule.channels)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    callbacks += [ConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True)), PreemptionCheckpoint()]
    if not cfg.trainer.get("enable_progress_bar", True):  # trainer.enable_progress_bar=false wins over the callback
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [lg for lg in (instantiate(c) for c in (cfg.get("logger") or {}).values() if c) if lg is not None]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def train(cfg: DictConfig) -> float:
    """Train one configuration; returns `cfg.optimized_metric` at the end (NaN if training diverged)."""
    validate(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    out = Path(cfg.paths.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    datamodule, model, trainer = build(cfg)
    if trainer.is_global_zero:  # under DDP every rank runs this function; one writes the run's files
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(config))
    ckpt_path = cfg.get("ckpt_path")
    for lg in trainer.loggers:
        lg.log_hyperparams(config)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    if trainer.checkpoint_callback is not None:  # ModelCheckpoint keeps last.ckpt at the last periodic save only
        trainer.save_checkpoint(Path(trainer.checkpoint_callback.dirpath) / "last.ckpt", weights_only=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}  # validate() replaces callback_metrics
    if not model.nan_message:
        trainer.validate(model, datamodule=datamodule, verbose=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    value = math.nan if model.nan_message else metrics.get(cfg.optimized_metric, math.nan)
    finish_wandb(trainer)
    if trainer.is_global_zero:
        summary = {"experiment": cfg.name, "iterations": model.iteration, "nan_iteration": model.nan_iteration}
        (out / "summary.json").write_text(json.dumps({**summary, "metrics": metrics}, indent=2, sort_keys=True))
        if model.nan_message:
            print(model.nan_message)
        print(f"Finished {cfg.name}: {model.iteration} iterations, {cfg.optimized_metric} = {value:.4f}")
        print(f"Outputs in {out}")
    return value


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        return train(cfg)
    try:  # in a sweep, one failed job is reported and the others go on
        return train(cfg)
    except Exception as err:
        log.error("Job %s failed: %s: %s", HydraConfig.get().job.num, type(err).__name__, err)
        out = Path(cfg.paths.output_dir)
        (out / "error.txt").write_text(f"{type(err).__name__}: {err}\n")
        return math.nan
