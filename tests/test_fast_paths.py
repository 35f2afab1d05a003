"""The performance options train correctly on the CPU: bf16 autocast, channels-last, optimizer sweeps."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infogan_pl.train import train
from tests.helpers import TINY, compose_config, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("option", ["trainer.precision=bf16-mixed", "model.channels_last=true"])
def test_fast_path_trains_with_finite_losses(option, tmp_path, mnist_dir):
    value = train(compose_config([*tiny_overrides("basicprop_line", mnist_dir), option], tmp_path))
    assert math.isfinite(value)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in last.values() if v.is_floating_point())


def test_data_reaches_the_device_as_keys_and_is_rendered_there(mnist_dir):
    from infogan_pl.data import BasicPropDataModule

    dm = BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16)
    keys = next(iter(dm.train_dataloader()))
    assert keys.dtype == torch.long and keys.numel() == 16  # 128 bytes cross to the device, not 50 KB of pixels


@pytest.mark.slow
def test_torch_compile_of_g_and_d_trains(tmp_path, mnist_dir):
    value = train(compose_config([*tiny_overrides("basicprop_line", mnist_dir), "model.compile=true"], tmp_path))
    assert math.isfinite(value)


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
