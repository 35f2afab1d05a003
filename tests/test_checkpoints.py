"""Checkpoints a long run can trust: every write whole or not at all, one last.ckpt, and no resume that trains
nothing. Units for the write protocol; the real command line for what a user sees."""

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from infogan_pl import atomic
from infogan_pl.checkpointing import AtomicCheckpointIO, effective_overrides
from tests.helpers import CLI_ENV, TINY, assert_refused, run_cli

ROOT = Path(__file__).resolve().parent.parent
SHORT = ["experiment=basicprop_line", "data.train_size=64", "data.val_size=48", *TINY]


def _checkpoint(value: float) -> dict:
    return {"state_dict": {"w": torch.full((1000,), value)}, "iteration": int(value)}


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(atomic.TEMP_PREFIX)]


class _FailingFile:
    """A file object whose writes fail with ENOSPC once `budget` bytes have gone through, as on a full disk."""

    def __init__(self, f, budget: int) -> None:
        self.f, self.budget = f, budget

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.budget:
            self.f.write(data[: self.budget])
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_write_failing_midway_leaves_the_previous_checkpoint_bitwise_unchanged_and_no_temporary_file(
    tmp_path, monkeypatch
):
    io_plugin, last = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io_plugin.save_checkpoint(_checkpoint(1.0), last)
    good = last.read_bytes()
    fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: _FailingFile(fdopen(fd, mode), budget=1000))
    with pytest.raises(atomic.WriteFailed) as raised:
        io_plugin.save_checkpoint(_checkpoint(2.0), last)
    assert str(raised.value).startswith(f"no space left for {last}: the checkpoint needs ")
    assert "\n" not in str(raised.value)
    assert last.read_bytes() == good
    assert torch.load(last, weights_only=True)["iteration"] == 1
    assert _leftovers(tmp_path) == []


def test_a_write_the_free_space_cannot_hold_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    with pytest.raises(atomic.WriteFailed, match=r"needs 0\.0 MB, 0\.0 MB are free"):
        atomic.atomic_write(tmp_path / "summary.json", "x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_a_file_written_atomically_gets_the_permissions_a_plain_write_would_give_it(tmp_path):
    umask = os.umask(0o027)  # a group-shared disk: the group reads, others do not
    try:
        fresh = atomic.atomic_write(tmp_path / "summary.json", "{}")
        assert fresh.stat().st_mode & 0o777 == 0o640  # not mkstemp's private 0600
        kept = tmp_path / "config.yaml"
        kept.write_text("a: 1\n")
        kept.chmod(0o604)
        atomic.atomic_write(kept, "a: 2\n")
        assert kept.stat().st_mode & 0o777 == 0o604  # a file rewritten keeps its own
    finally:
        os.umask(umask)


def test_every_periodic_checkpoint_becomes_last_ckpt_as_a_link_and_last_finite_stays_apart(tmp_path):
    io_plugin = AtomicCheckpointIO(last_dir=tmp_path)
    io_plugin.save_checkpoint(_checkpoint(4.0), tmp_path / "step0000004.ckpt")
    assert os.path.samefile(tmp_path / "last.ckpt", tmp_path / "step0000004.ckpt")  # no second copy
    io_plugin.save_checkpoint(_checkpoint(5.0), tmp_path / "last_finite.ckpt")
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["iteration"] == 4
    elsewhere = tmp_path / "elsewhere"
    io_plugin.save_checkpoint(_checkpoint(6.0), elsewhere / "mine.ckpt")  # a file outside the run's checkpoints
    assert not (elsewhere / "last.ckpt").exists()
    io_plugin.save_checkpoint(_checkpoint(8.0), tmp_path / "step0000008.ckpt")
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["iteration"] == 8
    assert torch.load(tmp_path / "step0000004.ckpt", weights_only=True)["iteration"] == 4  # untouched by the relink
    assert _leftovers(tmp_path) == []


def test_the_overrides_a_run_trained_with_are_every_invocations_in_order_without_ckpt_path():
    first = ["experiment=basicprop_line", "trainer.max_steps=200", "seed=3"]
    second = ["experiment=basicprop_line", "ckpt_path=last", "trainer.max_steps=400"]
    assert effective_overrides([first, second]) == ["experiment=basicprop_line", "trainer.max_steps=400", "seed=3"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 3-iteration run (a periodic save at step 4, last.ckpt at step 6); tests copy it to change it."""
    root = tmp_path_factory.mktemp("finished")
    done = run_cli([*SHORT, f"hydra.run.dir={root / 'run'}"], root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run"


def _copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run", copy_function=shutil.copy2)
    return tmp_path / "run"


def _csv_rows(run: Path) -> list[dict]:
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_short_long_and_resumed_runs_hold_one_last_ckpt_and_a_resume_says_what_remains(finished, tmp_path):
    run = _copy(finished, tmp_path)  # 3 iterations, a periodic save at step 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt", "step0000004.ckpt"]
    with_progress = [a for a in SHORT if a != "trainer.enable_progress_bar=false"]  # the start line is progress's
    done = run_cli([*with_progress, f"hydra.run.dir={run}", "ckpt_path=last", "trainer.max_steps=12"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training: 3 iterations, 3 to 6" in done.stdout
    assert "Previous log files" not in done.stdout + done.stderr
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step0000004.ckpt", "step0000008.ckpt", "step0000012.ckpt"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 6
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["invocations"]) == 2 and "ckpt_path=last" in summary["invocations"][1]
    assert summary["recipe"] == "default"  # the recipe group's name: config.yaml holds only its values
    assert "trainer.max_steps=12" in summary["overrides"] and "trainer.max_steps=6" not in summary["overrides"]
    assert "ckpt_path=last" not in summary["overrides"]
    rows = _csv_rows(run)
    assert "step" not in rows[0]  # one counter, `iteration`, on every row
    training = [r["iteration"] for r in rows if r.get("loss/d")]
    assert training == [str(float(i)) for i in range(1, 7)]  # every iteration once


def test_a_resume_that_would_train_nothing_is_refused_naming_the_checkpoints_iteration(finished, tmp_path):
    run = _copy(finished, tmp_path)
    before = {p: p.read_bytes() for p in (run / "csv" / "metrics.csv", run / "summary.json")}
    for budget in ("trainer.max_steps=6", "trainer.max_steps=4"):
        done = run_cli([*SHORT, f"hydra.run.dir={run}", "ckpt_path=last", budget], tmp_path)
        assert_refused(done, "is at iteration 3 (6 optimizer steps)")
        assert "resume with trainer.max_steps above 6" in done.stderr
    assert all(p.read_bytes() == data for p, data in before.items())  # nothing appended


def test_a_run_killed_while_writing_a_checkpoint_resumes_from_the_last_complete_one(tmp_path):
    """The paper-sized networks make each checkpoint 160 MB, so the kill lands inside a write."""
    run = tmp_path / "run"
    skip = ("+model", "trainer.max_steps", "callbacks.model_checkpoint", "trainer.enable_progress_bar")
    args = [a for a in SHORT if not a.startswith(skip)]
    args += ["trainer.max_steps=12", f"hydra.run.dir={run}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "infogan_pl", *args, "callbacks.model_checkpoint.every_n_train_steps=2"],
        cwd=tmp_path, env=CLI_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    checkpoints, start = run / "checkpoints", time.time()
    try:
        while not (checkpoints.is_dir() and (run / "checkpoints" / "last.ckpt").exists() and _leftovers(checkpoints)):
            assert proc.poll() is None, "the run ended before a write was caught"
            assert time.time() - start < 300
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert _leftovers(checkpoints), "killed outside a write"
    torn = checkpoints / _leftovers(checkpoints)[0]
    with pytest.raises(Exception):  # noqa: B017 - what the kill left is not a checkpoint, and it is not last.ckpt
        torch.load(torn, weights_only=True)
    iteration = torch.load(checkpoints / "last.ckpt", weights_only=True)["iteration"]  # complete
    done = run_cli([*args, "ckpt_path=last", "callbacks.model_checkpoint.every_n_train_steps=0"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"iterations, {iteration} to 6" in done.stdout
    assert _leftovers(checkpoints) == []


def _can_mount_tmpfs(directory: Path) -> str | None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "needs root and mount(8) to make a small filesystem"
    directory.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)], capture_output=True)
    if done.returncode:
        return f"mount -t tmpfs failed: {done.stderr.decode().strip()}"
    subprocess.run(["umount", str(directory)], check=True)
    return None


def test_a_full_disk_stops_with_one_line_and_the_previous_checkpoint_resumes_once_space_is_freed(finished, tmp_path):
    """End to end on a filesystem that holds one checkpoint but not two."""
    disk = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    reason = _can_mount_tmpfs(disk)
    if reason:
        pytest.skip(reason)
    size = (finished / "checkpoints" / "step0000004.ckpt").stat().st_size
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={int(1.6 * size) + 2_000_000}", "tmpfs", str(disk)], check=True
    )
    try:
        run = disk / "run"
        args = [*SHORT, "callbacks.model_checkpoint.every_n_train_steps=2", f"hydra.run.dir={run}"]
        done = run_cli(args, tmp_path)
        assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
        assert done.stderr.startswith(f"error: no space left for {run / 'checkpoints' / 'step0000004.ckpt'}")
        assert done.stderr.count("\n") == 1 and "the checkpoint needs" in done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        last = run / "checkpoints" / "last.ckpt"
        assert torch.load(last, weights_only=True)["iteration"] == 1  # the step-2 checkpoint, whole
        assert _leftovers(run / "checkpoints") == []
        subprocess.run(["mount", "-o", f"remount,size={10 * size}", str(disk)], check=True)  # space freed
        done = run_cli([*args, "ckpt_path=last"], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert torch.load(last, weights_only=True)["iteration"] == 3
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_every_checkpoint_lands_after_the_metric_rows_up_to_its_iteration_are_on_disk(tmp_path, monkeypatch):
    # a SIGKILL may come the instant a checkpoint file exists: the rows it resumes after must already be written
    from infogan_pl.train import run
    from tests.helpers import compose_config

    seen, write = [], AtomicCheckpointIO.save_checkpoint

    def spy(self, checkpoint, path, storage_options=None):
        rows = _csv_rows(tmp_path) if (tmp_path / "csv" / "metrics.csv").is_file() else []
        seen.append((checkpoint["iteration"], {float(r["iteration"]) for r in rows if r.get("loss/d")}))
        return write(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", spy)
    run(compose_config([*SHORT, "trainer.max_steps=12"], tmp_path))
    assert {it for it, _ in seen} == {2, 4, 6}  # the periodic saves at steps 4, 8, 12 and where the run stops
    for iteration, on_disk in seen:
        assert set(map(float, range(1, iteration + 1))) <= on_disk, iteration
