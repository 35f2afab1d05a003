"""The performance options train correctly on the CPU: bf16 autocast, fp16 with its GradScaler, channels-last,
optimizer sweeps."""

import math
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from infogan_pl.data import BasicPropDataModule
from infogan_pl.models import InfoGAN
from infogan_pl.models.guard import NaNGuard
from infogan_pl.nets import Discriminator, Generator
from infogan_pl.noise import InstanceNoise
from infogan_pl.train import train
from tests.helpers import SPEC, TINY, compose_config, fit, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("option", ["trainer.precision=bf16-mixed", "model.channels_last=true"])
def test_fast_path_trains_with_finite_losses(option, tmp_path, mnist_dir):
    value = train(compose_config([*tiny_overrides("basicprop_line", mnist_dir), option], tmp_path))
    assert math.isfinite(value)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in last.values() if v.is_floating_point())


@pytest.mark.parametrize("source", ["basicprop", "mnist"])
def test_data_reaches_the_device_as_keys_and_is_rendered_there(source, mnist_dir):
    """The loader yields keys (B,); images appear only after the transfer, on the keys' device. The `meta` device
    stands in for a GPU: were any pixel drawn on the host, it could not end up there."""
    from infogan_pl.data import BasicPropDataModule, MNISTDataModule

    if source == "basicprop":
        dm = BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16, noise="both")
    else:
        dm = MNISTDataModule(str(mnist_dir), batch_size=16, download=False)
        dm.setup()
    keys = next(iter(dm.train_dataloader()))
    assert keys.dtype == torch.long and keys.shape == (16,)  # 128 bytes cross to the device, not 50 KB of pixels
    images, factors = dm.on_after_batch_transfer(keys.to("meta"), 0)
    assert images.device.type == "meta" and images.shape == (16, 1, 28, 28) and factors.device.type == "meta"
    on_cpu, _ = dm.on_after_batch_transfer(keys, 0)
    assert torch.equal(on_cpu, dm.train_set[keys][0])


def _fit_16_mixed(model, init_scale: float, iterations: int, root: Path):
    """Train under fp16 autocast with Lightning's GradScaler plugin (on the CPU: `precision="16-mixed"` alone would
    be switched to bf16 by Lightning there)."""
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    plugin = MixedPrecision("16-mixed", device="cpu", scaler=scaler)
    data = BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16)
    fit(model, data, max_steps=2 * iterations, root=root, plugins=[plugin])
    return scaler


def _small_infogan():
    torch.manual_seed(0)
    return InfoGAN(SPEC, generator=partial(Generator, hidden=64), discriminator=partial(Discriminator, hidden=64))


def test_16_mixed_under_manual_optimization_goes_through_the_grad_scaler(tmp_path):
    # a scale so large that the fp16 gradients overflow: the scaler must skip both steps and back off twice
    model = _small_infogan()
    before = {k: v.clone() for k, v in model.named_parameters()}
    scaler = _fit_16_mixed(model, 2.0**100, iterations=1, root=tmp_path)
    assert scaler.get_scale() == 2.0**98
    assert all(torch.equal(before[k], v) for k, v in model.named_parameters())  # no inf/NaN update applied
    # an ordinary scale: the steps are applied, unscaled, and the weights stay finite
    model = _small_infogan()
    scaler = _fit_16_mixed(model, 2.0**16, iterations=3, root=tmp_path)
    assert 2.0**10 <= scaler.get_scale() <= 2.0**16  # at most a few overflow back-offs
    changed = [k for k, v in model.named_parameters() if not torch.equal(before[k], v)]
    assert any(k.startswith("generator.") for k in changed) and any(k.startswith("discriminator.") for k in changed)
    assert all(torch.isfinite(v).all() for v in model.parameters())


@pytest.mark.slow
def test_torch_compile_of_g_and_d_trains(tmp_path, mnist_dir):
    value = train(compose_config([*tiny_overrides("basicprop_line", mnist_dir), "model.compile=true"], tmp_path))
    assert math.isfinite(value)


@pytest.mark.slow  # covered in make test by the README's own commands; the stricter checks stay here
def test_an_optuna_sweep_runs_trials_and_maximizes_the_metric(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["+sweep=optuna", "experiment=basicprop_line", "hydra.sweeper.n_trials=2", "data.train_size=64"]
    args += ["data.val_size=32", f"hydra.sweep.dir={sweep}", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    done = subprocess.run(
        [sys.executable, "-m", "infogan_pl", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(sweep.glob("*/summary.json"))) == 2
    assert "best_params" in (sweep / "optimization_results.yaml").read_text()


class _SyncSpy(L.Callback):
    """Records every host read of a tensor (item, float, int, bool, tolist, numpy, cpu) made during the training
    iterations whose metrics are not written, i.e. the iterations that must run without a host synchronization."""

    METHODS = ("item", "__float__", "__int__", "__bool__", "tolist", "numpy", "cpu")

    def __init__(self, log_every: int) -> None:
        self.log_every, self.active, self.calls = log_every, False, []

    def on_train_start(self, trainer, pl_module):
        self.originals = {m: getattr(torch.Tensor, m) for m in self.METHODS}
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, self._spy(name, original))

    def _spy(self, name, original):
        def spy(tensor, *args, **kwargs):
            if self.active:
                self.calls.append(name)
            return original(tensor, *args, **kwargs)

        return spy

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.active = (pl_module.iteration + 1) % self.log_every != 0 and pl_module.iteration > 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.active = False

    def on_train_end(self, trainer, pl_module):
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, original)


def test_no_host_synchronization_on_the_iterations_whose_metrics_are_not_written(tmp_path):
    """What makes a GPU step launch-bound rather than sync-bound: between written iterations the training step,
    the optimizers, the NaN guard (deferred, as on an accelerator) and Lightning read no tensor on the host."""
    torch.manual_seed(0)
    model = InfoGAN(SPEC, nan=NaNGuard(check_every=50), noise=InstanceNoise(std=0.1), real_mi=1.0, consistency=1.0)
    spy = _SyncSpy(log_every=5)
    data = BasicPropDataModule("line", train_size=256, val_size=32, batch_size=16, noise="foreground")
    fit(model, data, max_steps=2 * 20, root=tmp_path, log_every=5, callbacks=[spy])
    assert model.iteration == 20 and spy.calls == []
    # the spy sees what it must: the CPU's every-step guard reads the loss of each of the two steps, then whether
    # the batch-norm buffers it keeps are finite
    torch.manual_seed(0)
    reading, spy = InfoGAN(SPEC, nan=NaNGuard(check_every=None)), _SyncSpy(log_every=5)
    fit(reading, data, max_steps=2 * 20, root=tmp_path / "reading", log_every=5, callbacks=[spy])
    assert spy.calls.count("__bool__") == 3 * 15


def test_both_optimizers_are_fused_adam_and_gradients_are_freed_not_zeroed(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = InfoGAN(SPEC)
    opt_d, opt_g = model.configure_optimizers()
    assert opt_d.defaults["fused"] and opt_g.defaults["fused"]  # one kernel per step; can skip a step on the device
    calls = []
    original = torch.optim.Optimizer.zero_grad
    monkeypatch.setattr(
        torch.optim.Optimizer,
        "zero_grad",
        lambda self, set_to_none=True: calls.append(set_to_none) or original(self, set_to_none),
    )
    data = BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16)
    fit(model, data, max_steps=4, root=tmp_path)
    assert calls and all(calls)  # set_to_none: no memset of every gradient before each backward
