"""Configuration checks that run before anything else: a bad override fails in a second, in one sentence.

`validate(cfg)` raises ConfigError; the Hydra callback `ValidateConfig` runs it in `on_run_start`, before Hydra
creates the run directory, prints the one line and exits with status 2. The library's constructors raise the
same kind of messages, so the cheap ones (latent spec, noise) are simply built here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from infogan_pl.checkpointing import MUST_MATCH, check_compatible, load_checkpoint_file

NET_SIZES = {"infogan_pl.nets.Generator": (28,), "infogan_pl.nets.mnist.Generator": (28,)}
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what to change."""


def _build(node: DictConfig):
    """instantiate(node), with the library's own one-line refusal instead of Hydra's wrapped multi-line error."""
    try:
        return instantiate(node)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(str(cause).splitlines()[0]) from None


def _positive(value, key: str) -> None:
    if value is None or value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}.")


def _check_model(cfg: DictConfig) -> None:
    model = cfg.model
    for key in ("lr_d", "lr_g", "lr_q"):
        if key in model:
            _positive(model[key], f"model.{key}")
    if model.get("lambda_info", 0) < 0:
        raise ConfigError(f"model.lambda_info must be >= 0, got {model.lambda_info}.")
    betas = list(model.get("betas", [0.5, 0.999]))
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ConfigError(f"model.betas must be two numbers in [0, 1), got {betas}.")
    if model.get("nan_policy", "stop") not in ("stop", "rollback"):
        raise ConfigError(f"model.nan_policy must be stop or rollback, got {model.nan_policy!r}.")
    if model.get("d_steps_per_g", 1) < 1:
        raise ConfigError(f"model.d_steps_per_g must be >= 1, got {model.d_steps_per_g}.")
    if "loss" in cfg:
        _build(cfg.loss)  # unknown options and label smoothing outside [0, 0.5) are refused there
    latent = _build(cfg.latent)  # LatentSpec refuses empty specs, sizes < 2, bad priors
    if model._target_.endswith("InfoGAN") and not latent.has_codes:
        raise ConfigError("model InfoGAN needs latent codes: use model=gan for z only, or set latent.categorical.")
    _build(cfg.noise)  # InstanceNoise refuses negative std, unknown schedules and places


def _check_data(cfg: DictConfig) -> None:
    data = cfg.data
    _positive(data.get("batch_size"), "data.batch_size")
    get_class(data._target_)
    devices = cfg.trainer.get("devices", 1)
    world = devices if isinstance(devices, int) and devices > 0 else 1
    for key in ("train_size", "val_size"):
        size = data.get(key)
        if size is not None and size <= 0:
            raise ConfigError(f"data.{key} must be > 0, got {size}.")
    train_size = data.get("train_size")
    if train_size is not None and train_size // world < data.batch_size:
        raise ConfigError(
            f"data.batch_size={data.batch_size} is larger than the training set ({train_size} samples"
            f"{f' over {world} processes' if world > 1 else ''}): lower data.batch_size or raise data.train_size."
        )
    if data._target_.endswith("BasicPropDataModule"):
        if data.variant not in ("line", "rectangles"):
            raise ConfigError(f"data.variant must be 'line' or 'rectangles', got {data.variant!r}.")
        if data.noise not in ("none", "foreground", "background", "both"):
            raise ConfigError(f"data.noise must be none, foreground, background or both, got {data.noise!r}.")
    if data._target_.endswith("MNISTDataModule") and not data.get("download", False):
        raw = Path(data.data_dir) / "MNIST" / "raw"
        missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
        if missing:
            raise ConfigError(
                f"MNIST not found in {raw} (missing {missing[0]}): run `make data`, or data.download=true."
            )


def _image_shape(cfg: DictConfig) -> tuple[int, int]:
    data = cfg.data
    if data._target_.endswith("CelebADataModule"):
        return 3, int(data.image_size)
    return 1, 28


def _check_networks(cfg: DictConfig) -> None:
    channels, size = _image_shape(cfg)
    gen = cfg.model.generator
    allowed = NET_SIZES.get(gen._target_)
    if allowed is not None and size not in allowed:
        raise ConfigError(
            f"the {gen._target_} networks take {allowed[0]}x{allowed[0]} images but data gives {size}x{size}: "
            "use model=infogan_celeba for CelebA."
        )
    if "image_size" in gen and gen.image_size not in (32, 64):
        raise ConfigError(f"the conv networks take 32 or 64 px images, got {gen.image_size}.")
    if "image_size" in gen and gen.image_size != size:
        raise ConfigError(f"model.generator.image_size={gen.image_size} but the data gives {size}x{size} images.")
    if "leaky_slope" in cfg.model.discriminator and not 0 <= cfg.model.discriminator.leaky_slope < 1:
        raise ConfigError(
            f"model.discriminator.leaky_slope must be in [0, 1), got {cfg.model.discriminator.leaky_slope}."
        )
    del channels


def _check_trainer(cfg: DictConfig) -> None:
    trainer = cfg.trainer
    max_steps, max_epochs = trainer.get("max_steps", -1), trainer.get("max_epochs", -1)
    if max_steps == 0 or max_epochs == 0 or (max_steps is not None and max_steps < -1):
        raise ConfigError(f"nothing to train: trainer.max_steps={max_steps}, trainer.max_epochs={max_epochs}.")
    if (max_steps in (-1, None)) and (max_epochs in (-1, None)):
        raise ConfigError("training would never end: set trainer.max_steps or trainer.max_epochs.")
    strategy = trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy or "")
    if "ddp" in target.lower() and trainer.get("devices") in (1, "1"):
        raise ConfigError("DDP with one device: set trainer.devices >= 2, or use trainer=default / trainer=gpu.")
    interval = trainer.get("val_check_interval")
    if interval is not None and interval <= 0:
        raise ConfigError(f"trainer.val_check_interval must be > 0, got {interval}.")
    every = OmegaConf.select(cfg, "callbacks.model_checkpoint.every_n_train_steps")
    if every is not None and every <= 0:
        raise ConfigError(f"callbacks.model_checkpoint.every_n_train_steps must be > 0, got {every}.")


def _check_outputs(run_dir: str | None) -> None:
    if not run_dir:
        return
    path = Path(run_dir).absolute()
    while not path.exists():
        path = path.parent
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the run directory {run_dir} ({path} is not writable): set hydra.run.dir.")


def _check_checkpoint(cfg: DictConfig) -> None:
    path = cfg.get("ckpt_path")
    if path in (None, "last", "hpc"):
        return
    current = {}
    for key in MUST_MATCH:
        node = OmegaConf.select(cfg, key)
        current[key] = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    try:
        stored = load_checkpoint_file(path).get("infogan_pl_config")
        check_compatible(path, stored, current)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from None


def validate(cfg: DictConfig, run_dir: str | None = None) -> None:
    """Raise ConfigError with one actionable sentence if `cfg` cannot train."""
    if not isinstance(cfg.get("seed"), int):
        raise ConfigError(f"seed must be an integer, got {cfg.get('seed')!r}.")
    _check_model(cfg)
    _check_data(cfg)
    _check_networks(cfg)
    _check_trainer(cfg)
    _check_outputs(run_dir)
    _check_checkpoint(cfg)


class ValidateConfig(Callback):
    """Hydra callback: validate the composed config before Hydra creates the run directory."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._validate(config, OmegaConf.select(config, "hydra.run.dir"))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._validate(config, OmegaConf.select(config, "hydra.sweep.dir"))

    @staticmethod
    def _validate(config: DictConfig, run_dir: str | None) -> None:
        try:
            validate(config, run_dir)
        except Exception as err:  # any failure here is a configuration the user must change
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
