"""One builder: (datamodule, model), the labeller, callbacks, loggers and the Trainer from a composed config.

Training, evaluation, the pre-flight check and the benchmarks all build through here, so a rule lives in the
constructor that owns it and every caller sees the same one-line error (`ConfigError`), naming the config key.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import logging
import types
import typing
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import get_method, instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, ListConfig, OmegaConf

from infogan_pl.checkpointing import AtomicCheckpointIO, ConfigInCheckpoint, LastCheckpoint, LogsBeforeCheckpoint


class ConfigError(ValueError):
    """A configuration that cannot run; the message is one sentence that says what to change."""


# ---------------------------------------------------------------------------------------------------- types
def _type_name(hint) -> str:
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def _accepts(hint, value) -> bool:
    """Whether a config value fits a constructor's type hint (int, float, bool, str, Literal, unions, Optional)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(h, value) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        return isinstance(value, list | tuple | ListConfig)
    return True  # classes, callables, nested configs: their own constructors judge them


def _parameters(target) -> dict[str, inspect.Parameter] | None:
    """Keyword parameters a target accepts, following **kwargs up a class's bases; None when it takes anything."""
    params: dict[str, inspect.Parameter] = {}
    classes = inspect.getmro(target) if inspect.isclass(target) else [target]
    for owner in classes:
        init = owner.__init__ if inspect.isclass(owner) else owner
        if init is object.__init__:
            break
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            return None
        for name, p in signature.parameters.items():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in ("self", "cls"):
                params.setdefault(name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            return params
        if not inspect.isclass(target) or not owner.__module__.startswith("infogan_pl."):
            return None  # **kwargs of a library class may go anywhere (DDPStrategy's go to DDP)
    return None


def _hints(target) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for owner in reversed(inspect.getmro(target) if inspect.isclass(target) else [target]):
        fn = owner.__init__ if inspect.isclass(owner) else owner
        with contextlib.suppress(Exception):  # unresolvable annotations: leave them to the constructor
            hints.update(typing.get_type_hints(fn))
    return hints


def check_node(node: DictConfig, key: str) -> None:
    """Refuse, in one line, keys a `_target_` does not take and values of the wrong type (per its type hints)."""
    target = get_method(node._target_) if "_target_" in node else None
    params = _parameters(target) if target is not None else None
    hints = _hints(target) if params is not None else {}
    for name in node:
        if str(name).startswith("_"):
            continue
        full = f"{key}.{name}"
        if params is not None and name not in params:
            near = difflib.get_close_matches(str(name), list(params), n=1)
            hint = f" (did you mean {key}.{near[0]}?)" if near else f"; it takes {', '.join(sorted(params))}"
            raise ConfigError(f"{full} is not a setting of {node._target_}{hint}.")
        try:
            child = node[name]
        except Exception:  # an interpolation only Hydra's runtime can resolve: its owner checks it later
            continue
        if isinstance(child, DictConfig) and "_target_" in child:
            check_node(child, full)
        elif name in hints and not isinstance(child, DictConfig | ListConfig) and not _accepts(hints[name], child):
            raise ConfigError(f"{full} must be {_type_name(hints[name])}, got {child!r}.")


def make(node: DictConfig, key: str, *args, **kwargs):
    """instantiate(node) (called with args / kwargs when the node is partial); any refusal becomes one line."""
    check_node(node, key)
    try:
        made = instantiate(node, **({"_partial_": True} if args or kwargs else {}))
        return made(*args, **kwargs) if args or kwargs else made
    except InstantiationException as err:
        raise ConfigError(_first_line(err.__cause__ or err, key)) from None
    except (ValueError, TypeError, RuntimeError, MisconfigurationException) as err:
        raise ConfigError(_first_line(err, key)) from None


def _first_line(err: BaseException, key: str) -> str:
    """The refusal's first line, naming the config node when the owner's message does not."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    line = lines[0] if lines else type(err).__name__
    return line if key in line else f"{key}: {line}"


# ---------------------------------------------------------------------------------------------------- objects
def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """The DataModule (no data read yet) and the LightningModule sized for it."""
    datamodule = make(cfg.data, "data")
    parts = {"latent": make(cfg.latent, "latent"), "channels": datamodule.channels, "image_size": datamodule.image_size}
    if "noise" in cfg:
        parts["noise"] = make(cfg.noise, "noise")
    if "loss" in cfg:
        parts["loss"] = make(cfg.loss, "loss")
    accepted = _parameters(get_method(cfg.model._target_))
    if accepted is not None:  # a model without instance noise or an adversarial loss (the VAE) is not given one
        parts = {k: v for k, v in parts.items() if k in accepted}
    model = make(cfg.model, "model", **parts)
    return datamodule, model


def build_callbacks(cfg: DictConfig, invocations: list[list[str]] | None = None) -> list[L.Callback]:
    """The configured callbacks (progress bar dropped when trainer.enable_progress_bar=false) + checkpoint hooks;
    `invocations`: the command lines that trained the run so far, kept in its checkpoints."""
    callbacks = [make(node, f"callbacks.{name}") for name, node in (cfg.get("callbacks") or {}).items() if node]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    config = OmegaConf.to_container(cfg, resolve=True)
    return [*callbacks, ConfigInCheckpoint(config, invocations), LogsBeforeCheckpoint(), LastCheckpoint()]


def build_loggers(cfg: DictConfig) -> list:
    """The configured loggers; one that cannot start (W&B offline, say) returns None and is left out."""
    nodes = (cfg.get("logger") or {}).items()
    return [lg for lg in (make(node, f"logger.{name}") for name, node in nodes if node) if lg is not None]


def build_trainer(cfg: DictConfig, callbacks: list | None = None, loggers: list | None = None) -> L.Trainer:
    """The Lightning Trainer; refuses budgets that train nothing or never end, and DDP on one device."""
    trainer = cfg.trainer
    max_steps, max_epochs = trainer.get("max_steps", -1), trainer.get("max_epochs", -1)
    check_node(trainer, "trainer")
    if max_steps == 0 or max_epochs == 0 or (max_steps is not None and max_steps < -1):
        raise ConfigError(f"nothing to train: trainer.max_steps={max_steps}, trainer.max_epochs={max_epochs}.")
    if max_steps in (-1, None) and max_epochs in (-1, None):
        raise ConfigError("training would never end: set trainer.max_steps or trainer.max_epochs.")
    interval = trainer.get("val_check_interval")
    if interval is not None and interval <= 0:
        raise ConfigError(f"trainer.val_check_interval must be > 0, got {interval}.")
    strategy = trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy or "")
    if "ddp" in target.lower() and trainer.get("devices") in (1, "1"):
        raise ConfigError("DDP with one device: set trainer.devices >= 2, or use trainer=default / trainer=gpu.")
    kwargs: dict[str, Any] = {"callbacks": callbacks or [], "logger": loggers or False}
    if callbacks is None:  # the pre-flight check: no checkpointing, no progress bar, nothing written
        kwargs.update(enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    else:  # every checkpoint written whole or not at all; last.ckpt always the newest complete one
        last_dir = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath") or f"{cfg.paths.output_dir}/checkpoints"
        kwargs["plugins"] = [AtomicCheckpointIO(last_dir)]
    with quiet_lightning():
        return make(trainer, "trainer", **kwargs)


def build_labeller(cfg: DictConfig):
    """What labels generated images for the evaluation (conf/labeller/), or None."""
    node = cfg.get("labeller")
    return make(node, "labeller") if node and "_target_" in node else None


@contextlib.contextmanager
def quiet_lightning():
    """Silence Lightning's start-up notes ('GPU available: ...', tips) while building."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
