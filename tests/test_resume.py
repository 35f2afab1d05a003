"""Exact resume after SIGKILL, of a finished run given a longer budget, and SIGTERM (what SLURM sends) saving a
checkpoint to resume from; the resumed run's metrics.csv continues the rows of the run it continues."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.helpers import SMALL_NETS, run_cli

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
    "model.r1_gamma=1",  # every stabilizer on: lazy R1, spectral norm (its power-iteration vectors), G's average
    "model.r1_every=2",
    "model.discriminator.spectral_norm=true",
    "model.g_ema_decay=0.9",
    "model.g_ema_start=10",
    "trainer.max_steps=100",
    "trainer.val_check_interval=1000",
    "trainer.log_every_n_steps=5",
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


def _run(run_dir, *extra):
    """A run that is not killed: it finishes, and the test needs only its exit status and output."""
    done = run_cli([*RESUME, f"hydra.run.dir={run_dir}", *extra], ROOT, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    return done


def _wait_for(path: Path, proc, timeout=300):
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, f"finished before {path.name} appeared:\n{proc.stdout.read()[-2000:]}"
        assert time.time() - start < timeout
        time.sleep(0.02)


def _rows(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [(r["iteration"], r.get("loss/d")) for r in csv.DictReader(f)]


def _final_state(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 100
    return ckpt["state_dict"], ckpt["optimizer_states"]


def test_a_run_killed_mid_epoch_and_resumed_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path):
    _run(tmp_path / "straight")
    killed = _start(tmp_path / "killed")
    _wait_for(tmp_path / "killed" / "checkpoints" / "step0000040.ckpt", killed)  # iteration 20: epoch 1, batch 4
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    _run(tmp_path / "killed", "ckpt_path=last")
    # a finished run (iteration 20 of a 20-iteration budget, mid-epoch) continued with a longer one
    _run(tmp_path / "extended", "trainer.max_steps=40")
    _run(tmp_path / "extended", "ckpt_path=last")
    a, opt_a = _final_state(tmp_path / "straight")
    for run in ("killed", "extended"):
        b, opt_b = _final_state(tmp_path / run)
        for name in a:
            assert torch.equal(a[name], b[name]), f"{name} differs after resume ({run})"
        for sa, sb in zip(opt_a, opt_b, strict=True):
            for k in sa["state"]:
                assert all(torch.equal(sa["state"][k][s], sb["state"][k][s]) for s in sa["state"][k])
        # every training row the uninterrupted run logged, once, with the same values: none lost, none doubled
        # (the finished run's closing evaluation at iteration 20 is a row of its own, kept)
        train_rows = [r for r in _rows(tmp_path / run) if r[1]]
        assert train_rows == [r for r in _rows(tmp_path / "straight") if r[1]], run
    assert ("20.0", "") in _rows(tmp_path / "extended")


def test_sigterm_saves_a_checkpoint_and_exits_143_ready_to_resume(tmp_path):
    proc = _start(tmp_path / "run")
    _wait_for(tmp_path / "run" / "checkpoints" / "step0000020.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 143, out[-2000:]  # not 0: the run has not finished (no summary.json yet)
    assert "SIGTERM at iteration" in out and not (tmp_path / "run" / "summary.json").exists()
    step = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 20 <= step < 100
    _run(tmp_path / "run", "ckpt_path=last")
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 100
