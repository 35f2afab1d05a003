"""What happens when a loss stops being finite: stop (the study's behaviour) or roll back to the last finite state.

No non-finite update is ever applied, and the states the guard keeps or writes are finite in every tensor:
- every step (the CPU default, where reading a value costs nothing): each loss is read before its update; a
  non-finite one is not applied and the policy runs at once;
- deferred (accelerators, or `check_every` set): no host synchronization per step. Each loss is written into a
  device buffer and its non-finite flag goes to the optimizer as `found_inf`, which makes a fused optimizer skip the
  update on the device (as GradScaler does); every `check_every` iterations the buffer is read once, and the first
  non-finite loss is reported with its own iteration. An optimizer without a fused step falls back to a read.
Batch norm updates its running statistics in the forward pass, before any loss exists, so the guard keeps a copy of
the module's buffers from the last clean check and puts it back when a loss went non-finite.
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.distributed as dist
from torch import Tensor

from infogan_pl.checkpointing import all_finite, non_finite_tensors, save_last_finite

log = logging.getLogger(__name__)
POLICIES = ("stop", "rollback")
LOSSES = ("loss/d", "loss/q", "loss/g")  # the columns of the deferred loss buffer; one more holds the agreed flag


class NaNGuard:
    """Guards the optimizer steps of a LightningModule against non-finite losses (see the module docstring).

    policy: `stop` saves the last finite state to checkpoints/last_finite.ckpt and stops the trainer with one line;
    `rollback` restores the last finite snapshot (weights, buffers, optimizer states; taken every `snapshot_every`
    iterations at a clean check), multiplies D's learning rates by `lr_factor` and continues, and after
    `max_rollbacks` stops like `stop`. check_every: None = every step on the CPU, 50 on accelerators.
    """

    def __init__(
        self,
        policy: str = "stop",
        check_every: int | None = None,
        snapshot_every: int = 100,
        lr_factor: float = 0.5,
        max_rollbacks: int = 3,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"model.nan.policy must be one of {POLICIES}, got {policy!r}.")
        if check_every is not None and check_every <= 0:
            raise ValueError(f"model.nan.check_every must be > 0 (or null), got {check_every}.")
        if snapshot_every <= 0 or max_rollbacks < 0 or not 0 < lr_factor <= 1:
            raise ValueError("model.nan: snapshot_every > 0, max_rollbacks >= 0 and lr_factor in (0, 1] are required.")
        self.policy, self.check_every, self.snapshot_every = policy, check_every, snapshot_every
        self.lr_factor, self.max_rollbacks = lr_factor, max_rollbacks
        self.rollbacks = 0
        self.stopped_at: int | None = None  # iteration of the first non-finite loss that stopped training
        self.bad_loss: tuple[str, float] | None = None  # (name, value) of that loss
        self.message: str | None = None
        self.every = 1
        self._losses: Tensor | None = None  # deferred: (every, len(LOSSES)) losses of the current window
        self._last_bad: Tensor | None = None
        self._buffers: dict[str, Tensor] | None = None
        self._snapshot: dict | None = None
        self._snapshot_at = -1
        self._fallback_warned = False

    @property
    def deferred(self) -> bool:
        return self._losses is not None

    def setup(self, module) -> None:
        """Choose the mode for the module's device and take the first clean copies (at the start of training).
        Windows are aligned to absolute iterations (0..every-1, every..), so a resumed run checks where it would
        have."""
        on_cpu = module.device.type == "cpu"
        self.every = self.check_every or (1 if on_cpu else 50)
        columns = len(LOSSES) + 1
        self._losses = torch.zeros(self.every, columns, device=module.device) if self.every > 1 else None
        self._clean(module, module.iteration)

    @staticmethod
    def _agreed(flag: Tensor) -> Tensor:
        """The largest of a flag over every DDP rank (an all-reduce on the device: no host read): the ranks share
        their gradients, so they must skip or stop together."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return flag

    # ------------------------------------------------------------------ per step
    def allow(self, module, optimizer, losses: dict[str, Tensor], total: Tensor) -> bool:
        """Before the update driven by `total` (the sum of `losses`, named as in LOSSES): False when it must not be
        applied (the policy has run). In deferred mode the update goes ahead and a fused optimizer skips it on the
        device when `total` is not finite on any rank."""
        bad = self._last_bad = self._agreed((~torch.isfinite(total.detach())).float().reshape(()))
        if self.deferred:
            row = module.iteration % self.every
            for name, loss in losses.items():
                self._losses[row, LOSSES.index(name)] = loss.detach()
            self._losses[row, -1] = torch.maximum(self._losses[row, -1], bad)
            inner = getattr(optimizer, "optimizer", optimizer)
            if getattr(inner, "_step_supports_amp_scaling", False):
                inner.found_inf = bad
                return True
            if not self._fallback_warned:
                log.warning("%s has no fused step: the NaN guard reads each loss (a host sync).", type(inner).__name__)
                self._fallback_warned = True
        if not bool(bad):
            return True
        name, value = next(
            ((n, float(v.detach())) for n, v in losses.items() if not bool(torch.isfinite(v))),
            ("loss (on another rank)", float(total.detach())),
        )
        self._apply(module, module.iteration, name, value)
        return False

    def loss_for_backward(self, module, total: Tensor) -> Tensor:
        """The loss to differentiate. Under a GradScaler (16-mixed) the scaler sets the optimizer's `found_inf` from
        the gradients alone, which can be finite when the loss is not (the gradient of an overflowing mean is 1/N):
        then the loss is made NaN, so its gradients are, and the scaler skips the step."""
        if self.deferred and getattr(module.trainer.precision_plugin, "scaler", None) is not None:
            return total * torch.where(self._last_bad > 0, torch.nan, 1.0)
        return total

    @staticmethod
    def after_step(optimizer) -> None:
        inner = getattr(optimizer, "optimizer", optimizer)
        if hasattr(inner, "found_inf"):
            del inner.found_inf

    def end_iteration(self, module, iteration: int, force: bool = False) -> None:
        """After iteration `iteration`: at the end of a window (or when forced: before a checkpoint, at the end of
        training) read the window's losses (one sync) and act; else nothing."""
        if self.stopped_at is not None:
            return
        if self.deferred:
            if (iteration + 1) % self.every and not force:
                return
            start = iteration - iteration % self.every
            losses = self._losses[: iteration + 1 - start].to("cpu", copy=True)  # one sync
            self._losses.zero_()
            flagged = losses[:, -1].nonzero()
            if len(flagged):  # agreed across ranks; the loss that went non-finite may be another rank's
                row = int(flagged[0])
                local = (~torch.isfinite(losses[row, :-1])).nonzero()
                col = int(local[0]) if len(local) else None
                name = LOSSES[col] if col is not None else "loss (on another rank)"
                self._apply(module, start + row, name, float(losses[row, col]) if col is not None else float("nan"))
                return
        self._clean(module, iteration + 1)

    # ------------------------------------------------------------------ states
    def _clean(self, module, iteration: int) -> None:
        """Keep copies of a state known to be finite: the buffers (if they are), a rollback snapshot when it is due."""
        buffers = {k: v.detach().clone() for k, v in module.named_buffers()}
        if all_finite(buffers.values()):
            self._buffers = buffers
        if self.policy == "rollback" and (
            self._snapshot is None or iteration - self._snapshot_at >= self.snapshot_every
        ):
            snapshot = self.snapshot(module)
            if not non_finite_tensors(snapshot):
                self._snapshot, self._snapshot_at = snapshot, iteration

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

    def _restore_buffers(self, module) -> None:
        if self._buffers is None:
            return
        with torch.no_grad():
            for name, buffer in module.named_buffers():
                if name in self._buffers:
                    buffer.copy_(self._buffers[name])

    # ------------------------------------------------------------------ policies
    def _apply(self, module, iteration: int, name: str, value: float) -> None:
        if self.deferred:  # this window is dealt with: a later check must not count it again
            self._losses.zero_()
        if self.policy == "rollback" and self._snapshot is not None and self.rollbacks < self.max_rollbacks:
            self._roll_back(module, iteration, name, value)
        else:
            self._stop(module, iteration, name, value)

    def _roll_back(self, module, iteration: int, name: str, value: float) -> None:
        lrs = [[g["lr"] for g in opt.optimizer.param_groups] for opt in module.optimizers()]
        self.restore(module, self._snapshot)
        for i, opt in enumerate(module.optimizers()):
            for group, lr in zip(opt.optimizer.param_groups, lrs[i], strict=True):
                group["lr"] = lr * self.lr_factor if i == 0 else lr  # optimizer 0 is D's (and Q's)
        self.rollbacks += 1
        self._buffers = {k: v.detach().clone() for k, v in module.named_buffers()}
        log.warning(
            "Non-finite %s (%s) at iteration %d: rolled back to iteration %d, D learning rate x%g (%d/%d)",
            name,
            value,
            iteration,
            self._snapshot_at,
            self.lr_factor,
            self.rollbacks,
            self.max_rollbacks,
        )

    def _stop(self, module, iteration: int, name: str, value: float) -> None:
        if self.stopped_at is not None:  # Lightning may train on (min_steps): the first stop is the one reported
            return
        self._restore_buffers(module)
        self.stopped_at, self.bad_loss = iteration, (name, value)
        trainer = module.trainer
        path = save_last_finite(trainer, module)
        after = f" after {self.rollbacks} rollbacks" if self.rollbacks else ""
        where = f"the last finite state is in {path}" if path else "no finite state to save"
        self.message = f"Non-finite {name} ({value}) at iteration {iteration}{after}: training stopped; {where}"
        trainer.should_stop = True  # the entry point prints the message (one line) and exits with status 3

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"rollbacks": self.rollbacks, "stopped_at": self.stopped_at}

    def load_state_dict(self, state: dict) -> None:
        self.rollbacks = state.get("rollbacks", 0)
