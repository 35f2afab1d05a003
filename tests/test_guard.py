"""The NaN path (the study's Fig. 6 runs ended in NaN): no non-finite update is ever applied, the state called
last-finite is finite in every tensor, and a NaN stop is a clean, documented outcome of the command."""

import copy
import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from infogan_pl.checkpointing import non_finite_tensors
from infogan_pl.data import BasicPropDataModule
from infogan_pl.figures.curves import curves_plots
from infogan_pl.models import InfoGAN
from infogan_pl.models.guard import NaNGuard
from infogan_pl.noise import InstanceNoise
from tests.helpers import SPEC, fit, run_cli, tiny_overrides


def _data():
    return BasicPropDataModule("line", train_size=96, val_size=32, batch_size=16, noise="foreground")


def _model_tensors(path):
    ckpt = torch.load(path, weights_only=True)
    return {"state_dict": ckpt["state_dict"], "optimizer_states": ckpt["optimizer_states"]}


class _NaNFrom:
    """Instance noise that turns D's input into infinities from iteration `start` on: NaN enters before D's batch
    norm, whose running statistics the forward pass updates before any loss exists."""

    def __init__(self, start: int) -> None:
        self.start, self.inner = start, InstanceNoise()

    def __call__(self, x, step, generator=None):
        return x * math.inf if step >= self.start else x

    def std_at(self, step):
        return 0.0


def test_a_non_finite_loss_stops_training_at_that_iteration_and_saves_the_last_finite_state(tmp_path):
    torch.manual_seed(0)
    model = InfoGAN(SPEC)
    model.discriminator.head.register_forward_hook(lambda m, i, out: out * math.nan if model.iteration >= 2 else out)
    trainer = fit(model, _data(), max_steps=100, root=tmp_path)
    assert model.nan_iteration == 2 and trainer.global_step == 4
    assert "Non-finite loss/d (nan) at iteration 2" in model.nan_message and "\n" not in model.nan_message
    state = torch.load(tmp_path / "checkpoints" / "last_finite.ckpt", weights_only=True)["state_dict"]
    assert not non_finite_tensors(state)
    for name, value in model.state_dict().items():
        assert torch.equal(state[name], value), f"{name} moved after the non-finite loss"


def test_nan_entering_before_batch_norm_leaves_a_finite_last_finite_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = InfoGAN(SPEC, noise=_NaNFrom(3))
    fit(model, _data(), max_steps=100, root=tmp_path)
    assert model.nan_iteration == 3
    assert not non_finite_tensors(_model_tensors(tmp_path / "checkpoints" / "last_finite.ckpt"))
    assert not non_finite_tensors(model.state_dict())  # the buffers the forward pass poisoned were put back


def test_the_deferred_check_applies_no_non_finite_update_and_reports_the_first_bad_iteration(tmp_path):
    """The accelerator branch, driven on the CPU: flags stay on the device, read every 50 iterations."""
    torch.manual_seed(0)
    model = InfoGAN(SPEC, noise=_NaNFrom(7), nan=NaNGuard(check_every=50))
    updates = []
    fit(model, _data(), max_steps=100, root=tmp_path, callbacks=[_Updates(updates)])
    assert model.guard.deferred and model.nan_iteration == 7  # its own iteration, not the check's (49)
    assert model.iteration == 50  # trained on to the check, every update from iteration 7 on skipped on the device
    assert not non_finite_tensors(model.state_dict())
    assert not non_finite_tensors([o.optimizer.state_dict()["state"] for o in model.optimizers()])
    assert updates[7:] == [0] * (len(updates) - 7) and all(updates[:7])  # parameters changed before, not after
    assert not non_finite_tensors(_model_tensors(tmp_path / "checkpoints" / "last_finite.ckpt"))


class _Updates(L.Callback):
    """Counts, per iteration, how many parameters the optimizer steps changed."""

    def __init__(self, out: list) -> None:
        self.out = out

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.out.append(sum(not torch.equal(b, p) for b, p in zip(self.before, pl_module.parameters(), strict=True)))


def test_rollback_snapshots_are_finite_even_when_the_nan_enters_before_batch_norm(tmp_path):
    torch.manual_seed(0)
    model = InfoGAN(SPEC, noise=_NaNFrom(6), nan=NaNGuard("rollback", snapshot_every=2, max_rollbacks=2))
    fit(model, _data(), max_steps=100, root=tmp_path)
    assert model.guard.rollbacks == 2 and model.nan_iteration is not None
    assert not non_finite_tensors(model.guard._snapshot)
    assert not non_finite_tensors(model.state_dict())


def test_a_nan_stop_is_exit_3_one_line_a_summary_and_a_report_row(tmp_path, mnist_dir):
    args = [*tiny_overrides("basicprop_line", mnist_dir), "trainer.max_steps=40"]
    probe = ["+callbacks.probe._target_=tests.helpers.NaNOnRank", "+callbacks.probe.rank=0"]  # D's logits NaN from 2
    done = run_cli([*args, *probe], tmp_path, env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: Non-finite")]
    assert len(lines) == 1 and "at iteration 2" in lines[0] and "last_finite.ckpt" in lines[0]
    assert "Finished" not in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    run = next((tmp_path / "outputs" / "basicprop_line").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["nan_iteration"] == 2 and summary["nan_loss"]["name"] in ("loss/d", "loss/g")
    assert not non_finite_tensors(_model_tensors(run / "checkpoints" / "last_finite.ckpt"))
    report = run_cli([str(tmp_path / "outputs")], tmp_path, module="infogan_pl.report")
    assert report.returncode == 0 and f"| 2 ({summary['nan_loss']['name']}) |" in report.stdout
    curves, _ = curves_plots(run)  # the stop is marked on the run's curves
    legends = " ".join(t.get_text() for ax in curves.axes if ax.get_legend() for t in ax.get_legend().get_texts())
    assert "non-finite loss at 2" in legends


@pytest.mark.parametrize("policy", ["stop", "rollback"])
def test_the_guard_refuses_bad_settings(policy):
    with pytest.raises(ValueError, match="check_every"):
        NaNGuard(policy, check_every=0)


def test_rollback_restores_parameters_and_optimizer_state_exactly_and_lowers_d_lr(tmp_path):
    torch.manual_seed(0)
    guard = NaNGuard("rollback", snapshot_every=4, max_rollbacks=1, lr_factor=0.5)
    model = InfoGAN(SPEC, nan=guard)
    seen = {}

    def poison(m, i, out):
        if model.iteration == 4 and "snapshot" not in seen:
            seen["snapshot"] = model.guard._snapshot  # taken at the start of iteration 4
        return out * math.nan if model.iteration in (6, 9) else out

    model.discriminator.head.register_forward_hook(poison)
    restored = {}
    restore = model.guard.restore

    def recording(module, snapshot):
        restore(module, snapshot)
        restored["model"] = {k: v.clone() for k, v in module.state_dict().items()}
        restored["opt"] = [copy.deepcopy(o.optimizer.state_dict()) for o in module.optimizers()]

    model.guard.restore = recording
    fit(model, _data(), max_steps=100, root=tmp_path)
    snap = seen["snapshot"]
    assert all(torch.equal(restored["model"][k], v) for k, v in snap["model"].items())
    for got, want in zip(restored["opt"], snap["optimizers"], strict=True):
        for pid, state in want["state"].items():
            assert all(torch.equal(got["state"][pid][k], v) for k, v in state.items() if torch.is_tensor(v))
    assert model.guard.rollbacks == 1  # the second non-finite loss exceeded nan_max_rollbacks: stop
    assert model.nan_iteration == 9 and "after 1 rollbacks" in model.nan_message
    assert model.optimizers()[0].optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5)
    assert model.optimizers()[1].optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_under_a_grad_scaler_a_non_finite_loss_with_finite_gradients_is_not_applied(tmp_path):
    """16-mixed: the GradScaler decides from the gradients alone; an overflowing loss whose gradients are finite
    (D's logits + inf: the BCE gradient is sigmoid - target, finite) must still not be applied."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    torch.manual_seed(0)
    model = InfoGAN(SPEC, nan=NaNGuard(check_every=50))
    model.discriminator.head.register_forward_hook(lambda m, i, out: out + math.inf if model.iteration >= 2 else out)
    seen = {}

    class Before(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if pl_module.iteration == 2:
                seen.update({k: v.detach().clone() for k, v in pl_module.named_parameters()})

    plugin = MixedPrecision("16-mixed", device="cpu", scaler=torch.amp.GradScaler("cpu"))
    fit(model, _data(), max_steps=2 * 6, root=tmp_path, plugins=[plugin], callbacks=[Before()])
    assert model.nan_iteration == 2
    assert all(torch.equal(seen[k], v) for k, v in model.named_parameters())  # nothing applied from iteration 2 on


def test_an_optimizer_without_a_fused_step_counts_one_nan_once(tmp_path):
    from functools import partial

    torch.manual_seed(0)
    guard = NaNGuard("rollback", check_every=4, snapshot_every=2, max_rollbacks=2)
    model = InfoGAN(SPEC, nan=guard, optimizer_d=partial(torch.optim.SGD, momentum=0.9), lr_d=0.01)
    model.discriminator.head.register_forward_hook(lambda m, i, out: out * math.nan if model.iteration == 5 else out)
    fit(model, _data(), max_steps=2 * 10, root=tmp_path)
    assert guard.rollbacks == 1 and model.nan_iteration is None  # counted once, though its window is read later
    assert model.iteration == 11  # the rolled-back iteration made no optimizer step
