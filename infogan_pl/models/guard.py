"""What happens when a loss stops being finite: stop (the study's behaviour) or roll back to the last finite state."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)
POLICIES = ("stop", "rollback")


class NaNGuard:
    """Checks each loss before the update it would drive, and applies the policy when one is NaN or infinite.

    stop: save the (still finite) state to checkpoints/last_finite.ckpt, stop the trainer with one line.
    rollback: restore the in-memory snapshot taken every `snapshot_every` iterations (weights, optimizer states),
    multiply D's learning rates by `lr_factor`, count the event (`nan/rollbacks`) and continue; after
    `max_rollbacks` it stops like `stop`.
    On the CPU every check reads the value (free there). On an accelerator a read is a host synchronization, so the
    flags are gathered on the device and read every `check_every` iterations.
    """

    def __init__(
        self,
        policy: str = "stop",
        check_every: int = 50,
        snapshot_every: int = 100,
        lr_factor: float = 0.5,
        max_rollbacks: int = 3,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"model.nan_policy must be one of {POLICIES}, got {policy!r}.")
        if check_every <= 0 or snapshot_every <= 0 or max_rollbacks < 0 or not 0 < lr_factor <= 1:
            raise ValueError("nan guard: check_every, snapshot_every > 0, max_rollbacks >= 0, lr_factor in (0, 1].")
        self.policy, self.check_every, self.snapshot_every = policy, check_every, snapshot_every
        self.lr_factor, self.max_rollbacks = lr_factor, max_rollbacks
        self.rollbacks = 0
        self.stopped_at: int | None = None
        self.message: str | None = None
        self._flag: Tensor | None = None
        self._snapshot: dict | None = None

    # ------------------------------------------------------------------ snapshots
    def maybe_snapshot(self, module, iteration: int) -> None:
        if self.policy == "rollback" and iteration % self.snapshot_every == 0:
            self._snapshot = self.snapshot(module)

    @staticmethod
    def snapshot(module) -> dict:
        """Deep copies of the module's state and every optimizer's state (on their devices)."""
        return {
            "model": {k: v.detach().clone() for k, v in module.state_dict().items()},
            "optimizers": [copy.deepcopy(opt.optimizer.state_dict()) for opt in module.optimizers()],
        }

    @staticmethod
    def restore(module, snapshot: dict) -> None:
        module.load_state_dict(snapshot["model"])
        for opt, state in zip(module.optimizers(), snapshot["optimizers"], strict=True):
            opt.optimizer.load_state_dict(copy.deepcopy(state))  # load_state_dict keeps tensors it is given

    # ------------------------------------------------------------------ checks
    def finite(self, module, name: str, loss: Tensor) -> bool:
        """False when training must not apply the update of `loss` (after applying the policy)."""
        if loss.device.type != "cpu":
            bad = ~torch.isfinite(loss.detach())
            self._flag = bad if self._flag is None else self._flag | bad
            if (module.iteration + 1) % self.check_every or not bool(self._flag):
                return True
            self._flag = None
        elif bool(torch.isfinite(loss)):
            return True
        value = float(loss.detach())
        if self.policy == "rollback" and self._snapshot is not None and self.rollbacks < self.max_rollbacks:
            self._roll_back(module, name, value)
        else:
            self._stop(module, name, value)
        return False

    def _roll_back(self, module, name: str, value: float) -> None:
        lrs = [[g["lr"] for g in opt.optimizer.param_groups] for opt in module.optimizers()]
        self.restore(module, self._snapshot)
        for i, opt in enumerate(module.optimizers()):
            for group, lr in zip(opt.optimizer.param_groups, lrs[i], strict=True):
                group["lr"] = lr * self.lr_factor if i == 0 else lr  # optimizer 0 is D's (and Q's)
        self.rollbacks += 1
        log.warning(
            "Non-finite %s (%s) at iteration %d: rolled back to the last snapshot, D learning rate x%g (%d/%d)",
            name,
            value,
            module.iteration,
            self.lr_factor,
            self.rollbacks,
            self.max_rollbacks,
        )

    def _stop(self, module, name: str, value: float) -> None:
        trainer = module.trainer
        self.stopped_at = module.iteration
        ckpt_cb = trainer.checkpoint_callback
        directory = (
            Path(ckpt_cb.dirpath)
            if ckpt_cb is not None and ckpt_cb.dirpath
            else Path(trainer.default_root_dir) / "checkpoints"
        )
        path = directory / "last_finite.ckpt"
        trainer.save_checkpoint(path, weights_only=False)
        after = f" after {self.rollbacks} rollbacks" if self.rollbacks else ""
        self.message = (
            f"Non-finite {name} ({value}) at iteration {self.stopped_at}{after}: training stopped, "
            f"last finite state saved to {path}"
        )
        log.error(self.message)
        trainer.should_stop = True
