"""Everything about checkpoints in one place: what they hold beyond Lightning's state, where they go, how they are
read safely, whether one fits the run that wants to resume from it, and the callbacks that write them.

A checkpoint holds the resolved run configuration under `CONFIG_KEY` (so `evaluate` rebuilds the model from it),
the iteration, the NaN guard's state and every random generator's state (bit-exact resume). Files are read with
`torch.load(weights_only=True)` only; a file that is not a readable infogan_pl checkpoint is refused in one line.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from infogan_pl.atomic import TEMP_PREFIX, atomic_link, atomic_write

CONFIG_KEY = "infogan_pl_config"
INVOCATIONS_KEY = "infogan_pl_invocations"  # every command line that trained the run, in order
LAST, LAST_FINITE = "last.ckpt", "last_finite.ckpt"
# Keys of the stored run configuration that must match for a checkpoint to fit the model being built.
MUST_MATCH = (
    "model._target_",
    "latent",
    "data._target_",
    "data.variant",
    "data.image_size",
    "model.generator",
    "model.discriminator",
    "model.learn_sigma",
)


# ---------------------------------------------------------------------------------------------------- state
def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) generator states, in types torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x


# ---------------------------------------------------------------------------------------------------- files
def checkpoint_dir(trainer: L.Trainer) -> Path:
    """Where this run's checkpoints go: the ModelCheckpoint's directory, else <run dir>/checkpoints."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        return Path(callback.dirpath)
    return Path(trainer.default_root_dir) / "checkpoints"


def resumed_iteration(path: str | Path) -> int:
    """The iteration a checkpoint (already checked by the pre-flight) resumes from; memory-mapped, nothing copied."""
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("iteration", 0))


def stored_invocations(path: str | Path) -> list[list[str]]:
    """The command-line overrides of every invocation that trained the run a checkpoint holds, in order."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return [list(inv) for inv in ckpt.get(INVOCATIONS_KEY, [])]


def effective_overrides(invocations: list[list[str]]) -> list[str]:
    """What a run trained with: the invocations' overrides in order, a later value of a key replacing an earlier
    one, without `ckpt_path` (where it resumed from is not what it trained)."""
    merged: dict[str, str] = {}
    for invocation in invocations:
        for override in invocation:
            key = override.split("=", 1)[0].lstrip("+~")
            if key != "ckpt_path":
                merged[key] = override  # in the place the key first appeared
    return list(merged.values())


def load_checkpoint_file(path: str | Path) -> dict:
    """torch.load(weights_only=True) with one clear error for a missing, directory, truncated or foreign file.

    torch's own message (which suggests weights_only=False, i.e. running arbitrary code) never reaches the user."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a directory: give a .ckpt file, e.g. {path / 'checkpoints' / LAST}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated zip, text, a pickle with code in it: torch raises many types
        raise ValueError(
            f"checkpoint {path} is not a readable checkpoint (truncated, corrupt or not a torch file); use another one"
        ) from None
    if not isinstance(ckpt, dict) or CONFIG_KEY not in ckpt:
        raise ValueError(f"checkpoint {path} holds no infogan_pl configuration: it was not written by infogan_pl")
    return ckpt


def _select(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_compatible(path: str | Path, stored: dict, current: dict) -> None:
    """Raise one line naming what differs when a checkpoint was trained with another model / latent / data.

    stored: the configuration saved in the checkpoint; current: {dotted key: value} of this run for MUST_MATCH."""
    for key in MUST_MATCH:
        old, new = _select(stored, key), current.get(key)
        if old != new:
            raise ValueError(f"checkpoint {path} was trained with {key}={old}, this run has {key}={new}")


def resume_path(cfg: DictConfig, run_dir: str | Path | None = None) -> Path | None:
    """The file `ckpt_path` names: None, a path, `last` = <run dir>/checkpoints/last.ckpt, or `auto` = that file if
    it exists, else a fresh start (what a job that a cluster may requeue wants)."""
    path = cfg.get("ckpt_path")
    if path in (None, ""):
        return None
    if path in ("last", "auto"):
        root = run_dir if run_dir is not None else cfg.paths.output_dir
        last = Path(root) / "checkpoints" / LAST
        if path == "auto":
            return last if last.is_file() else None
        if not last.is_file():
            raise ValueError(
                f"ckpt_path=last: no checkpoint in {last.parent}; give the run's directory with "
                "hydra.run.dir=<run dir> (or a file with ckpt_path=<file>)"
            )
        return last
    return Path(path)


def check_budget(path: str | Path, ckpt: dict, max_steps: int | None, max_epochs: int | None) -> None:
    """A resume must have something left to train: a budget at or below the checkpoint's is refused (one line,
    naming the checkpoint's iteration), rather than re-evaluating a finished run and logging it again."""
    steps, epoch, iteration = ckpt.get("global_step", 0), ckpt.get("epoch", 0), ckpt.get("iteration", 0)
    if max_steps is not None and max_steps > 0 and max_steps <= steps:
        raise ValueError(
            f"checkpoint {path} is at iteration {iteration} ({steps} optimizer steps): trainer.max_steps={max_steps} "
            f"leaves nothing to train; resume with trainer.max_steps above {steps}"
        )
    if (max_steps is None or max_steps < 0) and max_epochs is not None and 0 < max_epochs <= epoch:
        raise ValueError(
            f"checkpoint {path} is at iteration {iteration} (epoch {epoch}): trainer.max_epochs={max_epochs} leaves "
            f"nothing to train; resume with trainer.max_epochs above {epoch}"
        )


def check_resume(cfg: DictConfig, run_dir: str | Path | None = None) -> None:
    """The checkpoint to resume from (if any) is readable, fits this run and leaves it something to train;
    ValueError (one line) otherwise."""
    path = resume_path(cfg, run_dir)
    if path is None:
        return
    ckpt = load_checkpoint_file(path)
    stored = ckpt[CONFIG_KEY]
    current = {}
    for key in MUST_MATCH:
        node = OmegaConf.select(cfg, key)
        current[key] = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    check_compatible(path, stored, current)
    check_budget(path, ckpt, cfg.trainer.get("max_steps"), cfg.trainer.get("max_epochs"))


def all_finite(tensors) -> bool:
    """Whether every floating-point tensor of an iterable is finite, read in one host synchronization."""
    flags = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


def non_finite_tensors(tree, prefix: str = "") -> list[str]:
    """Names of the floating-point tensors in a nested dict / list that hold a NaN or an infinity."""
    if isinstance(tree, torch.Tensor):
        return [prefix] if tree.is_floating_point() and not bool(torch.isfinite(tree).all()) else []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list | tuple) else ()
    return [
        name for key, value in items for name in non_finite_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    ]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, by the protocol of `infogan_pl.atomic` (a temporary file beside the destination,
    fsynced, renamed over it): a full disk or a kill leaves the previous checkpoint whole, never a torn one.

    It is also the one writer of `last.ckpt`: every checkpoint saved into the run's checkpoint directory `last_dir`
    (step<N>.ckpt at the periodic saves) becomes last.ckpt there too, as a hard link (no second copy), so last.ckpt
    is always the newest complete checkpoint; last_finite.ckpt (the NaN guard's) stays apart."""

    def __init__(self, last_dir: str | Path | None = None) -> None:
        super().__init__()
        self.last_dir = Path(last_dir).resolve() if last_dir is not None else None

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options.")
        path = Path(path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(path, buffer.getbuffer(), "checkpoint")
        if (
            self.last_dir is not None
            and path.parent.resolve() == self.last_dir
            and path.name not in (LAST, LAST_FINITE)
        ):
            atomic_link(path, self.last_dir / LAST)


def save_last(trainer: L.Trainer) -> Path:
    """checkpoints/last.ckpt with the trainer's current state (between periodic saves the state where a run stops)."""
    path = checkpoint_dir(trainer) / LAST
    trainer.save_checkpoint(path, weights_only=False)
    return path


def save_last_finite(trainer: L.Trainer, module: L.LightningModule) -> Path | None:
    """checkpoints/last_finite.ckpt from the module's current state, written only if every tensor is finite."""
    state = {"state_dict": module.state_dict(), "optimizers": [o.optimizer.state_dict() for o in module.optimizers()]}
    if non_finite_tensors(state):
        return None
    path = checkpoint_dir(trainer) / LAST_FINITE
    trainer.save_checkpoint(path, weights_only=False)
    return path


# ---------------------------------------------------------------------------------------------------- callbacks
class ConfigInCheckpoint(L.Callback):
    """Stores the resolved run configuration in every checkpoint, so `evaluate` can rebuild the model from it, and
    the overrides of every invocation that trained it (a resumed run keeps those of the runs it continues)."""

    def __init__(self, config: dict, invocations: list[list[str]] | None = None) -> None:
        self.config, self.invocations = config, invocations or []

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config
        checkpoint[INVOCATIONS_KEY] = self.invocations


class LogsBeforeCheckpoint(L.Callback):
    """Writes the loggers' rows out while a checkpoint is assembled, before its file lands: a run killed at any
    moment after a checkpoint exists has every row up to it on disk (written after the file, as Lightning's
    `after_save_checkpoint` does, a kill between the two lost the rows since the previous checkpoint)."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            logger.save()


class LastCheckpoint(L.Callback):
    """checkpoints/last.ckpt where a run stops, in a state `ckpt_path=last` continues exactly from:
    - at the batch that reaches `trainer.max_steps`, before Lightning closes the loop: its fit loop then counts the
      unfinished epoch as completed, so a checkpoint written after `fit` would resume with the next epoch's data
      order, not the rest of this one;
    - at the end of training otherwise (a run ended by `max_epochs`, at an epoch boundary, or by the NaN guard);
    - on SIGTERM (what SLURM sends before preemption or the time limit): Lightning stops after the current batch."""

    def __init__(self) -> None:
        self.saved = False  # at the max_steps batch: the end of training has nothing to add

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.saved = False
        if trainer.is_global_zero and trainer.checkpoint_callback is not None:
            for stale in checkpoint_dir(trainer).glob(f"{TEMP_PREFIX}*"):  # a write killed mid-way: never a result
                stale.unlink(missing_ok=True)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.checkpoint_callback is not None and 0 < trainer.max_steps <= trainer.global_step:
            save_last(trainer)
            self.saved = not trainer.should_stop  # a NaN found while saving: saved again once training stops

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.checkpoint_callback is not None and not self.saved:
            save_last(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.checkpoint_callback is not None:
            path = save_last(trainer)
            if trainer.is_global_zero:
                print(f"SIGTERM at iteration {pl_module.iteration}: saved {path}; resume with ckpt_path=last")
