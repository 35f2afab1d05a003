"""Sweeps (grid, Optuna, W&B, SLURM launcher), multirun job isolation and 2-process CPU DDP."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from infogan_pl.config import CONFIG_DIR, SWEEPS_DIR
from tests.helpers import TINY

ROOT = Path(__file__).resolve().parent.parent


def _compose_with_hydra(overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


def _run(args, tmp_path, timeout=540):
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "infogan_pl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_lambda_lr_grid_sweeps_lambda_and_both_learning_rates():
    cfg = _compose_with_hydra(["+sweep=lambda_lr", "experiment=basicprop_line"])
    params = cfg.hydra.sweeper.params
    assert params["model.lambda_info"] == "0,0.1,0.5,1,2" and "model.lr_d" in params and "model.lr_g" in params
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"


def test_optuna_sweep_maximizes_the_experiments_metric():
    cfg = _compose_with_hydra(["+sweep=optuna", "experiment=mnist_infogan"])
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.direction == "maximize"
    assert cfg.optimized_metric == "metric/cat_acc"
    assert get_class(cfg.hydra.sweeper._target_)
    assert _compose_with_hydra(["experiment=basicprop_rect"]).optimized_metric == "metric/mig"


def test_slurm_launcher_composes_and_resolves_to_submitit():
    cfg = _compose_with_hydra(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and get_class(launcher._target_)
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 240)
    assert launcher.max_num_timeout > 0  # requeued after preemption


def test_wandb_sweep_runs_the_module_with_hydra_overrides():
    spec = yaml.safe_load((SWEEPS_DIR / "wandb_lambda_lr.yml").read_text())
    assert spec["command"] == [
        "${env}",
        "python",
        "-m",
        "infogan_pl",
        "experiment=basicprop_line",
        "${args_no_hyphens}",
    ]
    overrides = [f"{k}={v['values'][0]}" for k, v in spec["parameters"].items()]
    cfg = _compose_with_hydra(["experiment=basicprop_line", *overrides])
    assert cfg.model.lambda_info == 0 and spec["metric"]["name"] == cfg.optimized_metric


@pytest.mark.slow  # covered in make test by the README's own commands; the stricter checks stay here
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_2x2_multirun_writes_4_run_dirs_with_metrics(launcher, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "experiment=basicprop_line", "model.lambda_info=0,1", "model.lr_d=1e-4,2e-4", "data.train_size=64"]
    args += ["data.val_size=32", f"hydra.sweep.dir={sweep_dir}", f"hydra/launcher={launcher}", *TINY]
    if launcher == "joblib":
        args.append("hydra.launcher.n_jobs=2")
    _run(args, tmp_path)
    runs = sorted(p.parent for p in sweep_dir.glob("*/summary.json"))
    assert [p.name for p in runs] == ["0", "1", "2", "3"]
    assert all((p / "csv" / "metrics.csv").is_file() for p in runs)
    lambdas = sorted(OmegaConf.load(p / "config.yaml").model.lambda_info for p in runs)
    assert lambdas == [0, 0, 1, 1]


def test_two_process_cpu_ddp_trains_with_one_set_of_outputs_identical_generators_and_rank_own_fakes(tmp_path):
    """With every stabilizer on: R1's double backward, spectral norm and G's average under DDP. 4 iterations: the
    last one is evaluated inside fit, and the closing evaluation must not leave one rank waiting for the other."""
    run_dir, probe = tmp_path / "run", tmp_path / "probe"
    args = ["experiment=basicprop_line", "trainer=ddp_cpu", "data.train_size=128", "data.val_size=32"]
    args += ["model.r1_gamma=1", "model.discriminator.spectral_norm=true", "model.g_ema_decay=0.9"]
    args += [
        f"hydra.run.dir={run_dir}",
        "+callbacks.probe._target_=tests.helpers.RecordRanks",
        f"+callbacks.probe.dirpath={probe}",
    ]
    _run([*args, *TINY, "trainer.max_steps=8"], ROOT)
    g0, g1 = torch.load(probe / "generator_rank0.pt"), torch.load(probe / "generator_rank1.pt")
    assert torch.equal(g0, g1)  # gradients were synchronized
    b0, b1 = torch.load(probe / "batch_rank0.pt"), torch.load(probe / "batch_rank1.pt")
    assert not torch.equal(b0, b1)  # each rank drew its own samples
    f0, f1 = torch.load(probe / "fake_rank0.pt"), torch.load(probe / "fake_rank1.pt")
    assert not torch.equal(f0, f1)  # and its own z, c and noise: the global batch holds no duplicated fakes
    assert len(list(run_dir.glob("checkpoints/last.ckpt"))) == 1 and (run_dir / "summary.json").is_file()
    assert len(list(run_dir.glob("csv/metrics.csv"))) == 1


def test_under_ddp_a_nan_on_one_rank_stops_every_rank_at_that_iteration(tmp_path):
    """The ranks share gradients, so they must skip or stop together (the flag is all-reduced). (A run that ends on
    an evaluated iteration, where the closing evaluation must not leave one rank waiting: the test above.)"""
    run_dir = tmp_path / "run"
    args = ["experiment=basicprop_line", "trainer=ddp_cpu", "data.train_size=128", "data.val_size=32"]
    args += [f"hydra.run.dir={run_dir}", "+callbacks.probe._target_=tests.helpers.NaNOnRank", *TINY]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "infogan_pl", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    summary = __import__("json").loads((run_dir / "summary.json").read_text())
    assert summary["nan_iteration"] == 2
