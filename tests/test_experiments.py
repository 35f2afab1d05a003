"""Every experiment of the study composes, instantiates and trains a few steps on tiny data."""

import subprocess
import sys

import pytest

from infogan_pl.build import build
from infogan_pl.train import train
from tests.helpers import CLI_PRESETS, EXPERIMENTS, STUDY_ROWS, assert_run_outputs, compose_config, tiny_overrides


def test_every_row_of_the_study_has_an_experiment():
    assert set(EXPERIMENTS) >= STUDY_ROWS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(experiment, tmp_path, mnist_dir):
    cfg = compose_config(tiny_overrides(experiment, mnist_dir), tmp_path)
    assert cfg.name == experiment
    datamodule, model = build(cfg)
    assert model.latent.input_dim == model.generator.net[0].in_features


def test_experiments_set_the_study_settings(tmp_path, mnist_dir):
    def cfg(name):
        return compose_config(tiny_overrides(name, mnist_dir), tmp_path)

    assert cfg("mnist_vanilla_gan").model._target_.endswith(".GAN")
    assert cfg("mnist_gan_latent").model.lambda_info == 0
    infogan = cfg("mnist_infogan")
    assert (infogan.latent.z_dim, list(infogan.latent.categorical), infogan.latent.continuous) == (
        62,
        [10],
        2,
    )
    assert (infogan.model.lr_d, infogan.model.lr_g, infogan.model.lambda_info) == (2e-4, 1e-3, 1.0)
    assert cfg("mnist_infogan_latent_only").latent.z_dim == 0
    cat_only = cfg("mnist_infogan_cat_only").latent
    assert (cat_only.z_dim, cat_only.continuous) == (0, 0)
    assert cfg("basicprop_line").data.noise == "foreground"
    assert cfg("basicprop_rect").data.variant == "rectangles"
    assert cfg("basicprop_rect_fg_bg_noise").data.noise == "both"
    slow = cfg("basicprop_rect_slow_d")
    assert slow.data.variant == "rectangles" and slow.model.lr_d < 2e-4 and slow.data.noise == "foreground"


@pytest.mark.parametrize("experiment", sorted(set(EXPERIMENTS) - set(CLI_PRESETS)))
def test_experiment_trains_and_writes_config_checkpoint_metrics_and_traversals(experiment, tmp_path, mnist_dir):
    """The presets the README names train through the command line instead (test_user_commands.py)."""
    train(compose_config(tiny_overrides(experiment, mnist_dir), tmp_path))
    assert_run_outputs(tmp_path, experiment)


@pytest.mark.slow  # covered in make test by the README's own commands; the stricter checks stay here
def test_the_command_line_runs_an_experiment_into_the_chosen_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "infogan_pl", "experiment=basicprop_line", f"hydra.run.dir={run_dir}"]
    cmd += ["data.train_size=64", "data.val_size=32", *tiny_overrides("basicprop_line", tmp_path)[2:]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Outputs in {run_dir}" in done.stdout
    assert (run_dir / "config.yaml").is_file() and (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
