"""Exact resume after SIGKILL, SIGTERM checkpoints, atomic saves, config validation and file faults."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from infogan_pl.data.mnist import load_mnist
from infogan_pl.train import train
from infogan_pl.validation import ConfigError, validate
from tests.helpers import SMALL_NETS, compose_config, tiny_overrides, write_mnist_idx

ROOT = Path(__file__).resolve().parent.parent
# 50 iterations over 3+ epochs of 16 batches, data-level and instance noise: every source of randomness in play
RESUME = [
    "experiment=basicprop_line",
    *SMALL_NETS,
    "logger=csv",
    "data.train_size=256",
    "data.val_size=32",
    "data.batch_size=16",
    "noise=gaussian",
    "trainer.max_steps=100",
    "trainer.val_check_interval=1000",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.model_checkpoint.every_n_train_steps=20",
    "callbacks.evaluation.real=32",
    "callbacks.evaluation.generated_per_value=2",
    "callbacks.evaluation.mi=32",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def _start(run_dir, *extra):
    cmd = [sys.executable, "-m", "infogan_pl", *RESUME, f"hydra.run.dir={run_dir}", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, proc, timeout=300):
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, f"finished before {path.name} appeared:\n{proc.stdout.read()[-2000:]}"
        assert time.time() - start < timeout
        time.sleep(0.02)


def _final_state(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 100
    return ckpt["state_dict"], ckpt["optimizer_states"]


def test_a_run_killed_mid_epoch_and_resumed_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path):
    straight = _start(tmp_path / "straight")
    assert straight.wait(timeout=600) == 0, straight.stdout.read()[-2000:]
    killed = _start(tmp_path / "killed")
    _wait_for(tmp_path / "killed" / "checkpoints" / "step0000040.ckpt", killed)  # iteration 20: epoch 1, batch 4
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    resumed = _start(tmp_path / "killed", "ckpt_path=last")
    out = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, out[-2000:]
    (a, opt_a), (b, opt_b) = _final_state(tmp_path / "straight"), _final_state(tmp_path / "killed")
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"
    for sa, sb in zip(opt_a, opt_b, strict=True):
        for k in sa["state"]:
            assert all(torch.equal(sa["state"][k][s], sb["state"][k][s]) for s in sa["state"][k])


def test_sigterm_saves_a_checkpoint_and_exits_cleanly_ready_to_resume(tmp_path):
    proc = _start(tmp_path / "run")
    _wait_for(tmp_path / "run" / "checkpoints" / "step0000020.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-2000:]
    assert "SIGTERM at iteration" in out
    step = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 20 <= step < 100
    resumed = _start(tmp_path / "run", "ckpt_path=last")
    assert resumed.wait(timeout=600) == 0
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 100


def test_an_interrupted_checkpoint_write_leaves_the_previous_file_intact(tmp_path, monkeypatch, mnist_dir):
    import fsspec.implementations.local as local

    cfg = compose_config(tiny_overrides("basicprop_line", mnist_dir), tmp_path)
    train(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()

    def crash(self, data):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(local.LocalFileOpener, "write", crash)
    from lightning.fabric.utilities.cloud_io import _atomic_save

    with pytest.raises(OSError):
        _atomic_save({"junk": torch.zeros(3)}, last)
    assert last.read_bytes() == before


BAD = [
    (["model.lambda_info=-1"], "model.lambda_info must be >= 0"),
    (["latent.categorical=[1]"], "latent.categorical sizes must each be >= 2"),
    (["latent.z_dim=0", "latent.categorical=[]", "latent.continuous=0"], "latent spec is empty"),
    (["model.lr_d=0"], "model.lr_d must be > 0"),
    (["model.lr_g=-1e-3"], "model.lr_g must be > 0"),
    (["model.lr_q=0"], "model.lr_q must be > 0"),
    (["noise=gaussian", "noise.std=-0.1"], "noise.std must be >= 0"),
    (["noise.schedule=cosine"], "noise.schedule must be one of"),
    (["noise.where=edges"], "noise.where must be one of"),
    (["data.batch_size=100000"], "data.batch_size=100000 is larger than the training set"),
    (["data.batch_size=0"], "data.batch_size must be > 0"),
    (["data.variant=circles"], "data.variant must be 'line' or 'rectangles'"),
    (["data.noise=pink"], "data.noise must be none"),
    (["latent.z_dim=-3"], "must be >= 0"),
    (["latent.z_prior=laplace"], "latent.z_prior must be"),
    (["model.betas=[0.5,1.5]"], "model.betas must be two numbers"),
    (["trainer.max_steps=0"], "nothing to train"),
    (["trainer.max_steps=-1", "trainer.max_epochs=-1"], "training would never end"),
    (["trainer=ddp_cpu", "trainer.devices=1"], "DDP with one device"),
    (["model=infogan", "latent=noise_only"], "InfoGAN needs latent codes"),
    (["experiment=celeba_infogan", "model=infogan"], "networks take 28x28 images but data gives 32x32"),
    (["experiment=celeba_infogan", "data.image_size=48"], "take 32 or 64 px images"),
    (["callbacks.model_checkpoint.every_n_train_steps=0"], "every_n_train_steps must be > 0"),
    (["trainer.val_check_interval=0"], "val_check_interval must be > 0"),
    (["seed=abc"], "seed must be an integer"),
    (["model.discriminator.leaky_slope=2"], "leaky_slope must be in [0, 1)"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_configuration_is_refused_with_one_clear_line(overrides, message, tmp_path, mnist_dir):
    experiment = "celeba_infogan" if "experiment=celeba_infogan" in overrides else "basicprop_line"
    cfg = compose_config([*tiny_overrides(experiment, mnist_dir), *overrides], tmp_path)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_mnist_is_refused_before_training_naming_make_data(tmp_path):
    cfg = compose_config(["experiment=mnist_infogan", f"paths.data_dir={tmp_path}", "data.download=false"], tmp_path)
    with pytest.raises(ConfigError, match="run `make data`"):
        validate(cfg)


def test_checkpoint_faults_are_refused(tmp_path, mnist_dir):
    run = tmp_path / "run"
    train(compose_config(tiny_overrides("basicprop_line", mnist_dir), run))
    ckpt = run / "checkpoints" / "last.ckpt"
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    cases = [
        (tmp_path / "none.ckpt", "not found"),
        (truncated, "is truncated or corrupt"),
    ]
    for path, message in cases:
        cfg = compose_config([*tiny_overrides("basicprop_line", mnist_dir), f"ckpt_path={path}"], tmp_path / "x")
        with pytest.raises(ConfigError, match=message):
            validate(cfg)
    other = compose_config(
        [*tiny_overrides("basicprop_line", mnist_dir), "latent.continuous=3", f"ckpt_path={ckpt}"], tmp_path / "y"
    )
    with pytest.raises(
        ConfigError, match="was trained with latent=.*'continuous': 2.*this run has latent=.*'continuous': 3"
    ):
        validate(other)


def test_the_command_line_refuses_a_bad_override_in_one_line_before_creating_the_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "infogan_pl", "model.lambda_info=-1", f"hydra.run.dir={run_dir}"]
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: model.lambda_info must be >= 0, got -1."
    assert not run_dir.exists()


def test_an_unwritable_output_directory_is_reported_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cmd = [sys.executable, "-m", "infogan_pl", f"hydra.run.dir={blocker / 'run'}"]
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "cannot write the run directory" in done.stderr


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:5000], "is truncated or corrupt"),
        (lambda b: b"\x00\x00\x09\x03" + b[4:], "wrong magic number"),
    ],
)
def test_damaged_mnist_files_are_named(tmp_path, damage, message):
    raw = tmp_path / "MNIST" / "raw"
    write_mnist_idx(raw)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(RuntimeError, match=f"train-images-idx3-ubyte {message}" if "trunc" in message else message):
        load_mnist(tmp_path, train=True, download=False)


def test_unreachable_wandb_in_online_mode_warns_and_the_csv_keeps_every_metric(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    overrides = [*tiny_overrides("basicprop_line", mnist_dir), "logger=default", "logger.wandb.init_timeout=10"]
    train(compose_config(overrides, tmp_path))
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert {"loss/d", "loss/g", "mi/total", "metric/cat_acc"} <= set(header.split(","))
