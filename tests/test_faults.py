"""Bad input and broken environments, through the real command line in a fresh directory with the default run
directory: one clear line, a non-zero exit, and no run directory or partial file left behind."""

import functools
import gzip
import pickle
import resource
import signal
import time

import pytest
import torch

from tests.helpers import TINY, assert_refused, run_cli, tiny_overrides, write_mnist_idx

SHORT = ["data.train_size=64", "data.val_size=48", *TINY]


def _nothing_written(cwd):
    assert not (cwd / "outputs").exists(), list((cwd / "outputs").rglob("*"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # one of each kind through the command line (a type, a value rule, a misspelt key, Lightning's own refusal);
        # every rule's message is checked in-process in test_validation.py
        ("trainer.max_steps=abc", "trainer.max_steps must be int, got 'abc'"),
        ("trainer.accelerator=gpu", "trainer: No supported gpu backend found"),
        ("+model.lamda_info=0.5", "model.lamda_info is not a setting of infogan_pl.models.InfoGAN (did you mean "),
        ("model.lambda_info=-1", "model.lambda_info must be >= 0, got -1"),
    ],
)
def test_a_bad_override_is_one_line_exit_2_and_no_run_directory(override, message, tmp_path):
    if override == "trainer.accelerator=gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = run_cli([override], tmp_path)
    assert_refused(done, message)
    _nothing_written(tmp_path)


def test_a_run_directory_that_cannot_be_created_is_refused(tmp_path):
    assert_refused(run_cli(["hydra.run.dir=/proc/x"], tmp_path), "cannot create the run directory /proc/x")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert_refused(run_cli([f"hydra.run.dir={blocker / 'run'}"], tmp_path), "cannot create the run directory")
    _nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [(lambda b: b[:5000], "is truncated or corrupt"), (lambda b: b"\x00\x00\x09\x03" + b[4:], "wrong magic number")],
)
def test_a_damaged_mnist_file_is_named_before_anything_is_written(damage, message, tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    write_mnist_idx(raw)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    done = run_cli(["experiment=mnist_infogan", "data.download=false"], tmp_path)
    assert_refused(done, f"train-images-idx3-ubyte {message}" if "trunc" in message else message)
    _nothing_written(tmp_path)


def test_resuming_from_a_bad_checkpoint_is_refused_in_one_line(tmp_path, mnist_dir):
    run = tmp_path / "run"  # a run directory as a crash leaves it: a torn last.ckpt (refused before any training)
    (run / "checkpoints").mkdir(parents=True)
    args = tiny_overrides("basicprop_line", mnist_dir)
    assert_refused(run_cli([*args, f"ckpt_path={run}"], tmp_path), f"checkpoint {run} is a directory")
    assert_refused(run_cli([*args, "ckpt_path=last"], tmp_path), "ckpt_path=last: no checkpoint in")
    (run / "checkpoints" / "last.ckpt").write_bytes(bytes(range(256)) * 8)  # a corrupt last.ckpt in the run
    done = run_cli([*args, f"hydra.run.dir={run}", "ckpt_path=last"], tmp_path)
    assert_refused(done, "is not a readable checkpoint")
    assert not (tmp_path / "outputs").exists()


class _Exploit:
    def __reduce__(self):
        return (print, ("this code ran",))


def test_evaluate_refuses_files_that_are_not_checkpoints_in_one_line(tmp_path):
    from infogan_pl.checkpointing import load_checkpoint_file

    random_bytes, text, malicious = tmp_path / "random.ckpt", tmp_path / "notes.ckpt", tmp_path / "evil.ckpt"
    random_bytes.write_bytes(bytes(range(256)) * 40)
    text.write_text("these are my notes\n")
    torch.save({"x": _Exploit()}, malicious)  # a pickle that runs code when loaded without weights_only
    done = run_cli([f"ckpt_path={malicious}"], tmp_path, module="infogan_pl.evaluate")  # the command, end to end
    assert_refused(done, "is not a readable checkpoint")
    assert "this code ran" not in done.stdout and "weights_only" not in done.stderr
    (tmp_path / "foreign.ckpt").write_bytes(gzip.compress(pickle.dumps({"state_dict": {}})))
    refusals = {  # every command reads checkpoints through this one loader
        random_bytes: "is not a readable checkpoint",
        text: "is not a readable checkpoint",
        tmp_path: "is a directory",
        tmp_path / "nope.ckpt": "not found",
        tmp_path / "foreign.ckpt": "is not a readable checkpoint",
    }
    for path, message in refusals.items():
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            load_checkpoint_file(path)


def test_evaluate_refuses_overrides_that_change_the_trained_model_in_one_line(tmp_path, mnist_dir):
    run = tmp_path / "run"
    done = run_cli([*tiny_overrides("basicprop_line", mnist_dir), f"hydra.run.dir={run}"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = run / "checkpoints" / "last.ckpt"
    for override in ("latent.categorical=[5]", "model.g_ema_decay=0.9"):  # a Q head of another shape; G's average
        done = run_cli([f"ckpt_path={ckpt}", override], tmp_path, module="infogan_pl.evaluate")
        assert_refused(done, f"its weights do not fit the model ({override.split('=')[0]} changed the model")
    assert not (run / "checkpoints" / "eval_last").exists()


def test_a_sweep_with_a_failing_job_exits_1_naming_it_and_the_others_finish(tmp_path):
    args = ["-m", "experiment=basicprop_line", "data.batch_size=16,999", "data.train_size=64", "data.val_size=48"]
    args += [a for a in TINY if not a.startswith("data.batch_size")]
    done = run_cli(args, tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "1 job(s) of the sweep failed" in done.stderr and "job 1: ConfigError: data.batch_size=999" in done.stderr
    sweep = next((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert (sweep / "0" / "summary.json").is_file() and (sweep / "1" / "error.txt").is_file()


def test_a_sweeps_failed_jobs_are_named_in_launch_order(tmp_path, capsys):
    from omegaconf import OmegaConf

    from infogan_pl.validation import ValidateConfig

    for job in (10, 2):
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "error.txt").write_text(f"ConfigError: job {job}'s reason")
    with pytest.raises(SystemExit) as stop:
        ValidateConfig().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "2 job(s) of the sweep failed" in err and err.index("job 2:") < err.index("job 10:")


def test_online_wandb_with_a_bogus_key_gives_up_in_bounded_time_and_the_csv_has_every_metric(tmp_path):
    env = {"WANDB_MODE": "online", "WANDB_API_KEY": "0" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}
    run = tmp_path / "run"
    start = time.time()
    args = ["experiment=basicprop_line", *SHORT, "logger=default", "logger.wandb.init_timeout=5"]
    done = run_cli([*args, f"hydra.run.dir={run}"], tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.time() - start < 120 and "W&B could not start" in done.stdout + done.stderr
    header = (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert {"loss/d", "loss/g", "mi/total", "metric/cat_acc"} <= set(header.split(","))


def _file_size_limit(limit_bytes: int):
    return functools.partial(_limit_file_size, limit_bytes)


def _limit_file_size(limit_bytes: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_no_half_written_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = ["experiment=basicprop_line", *SHORT, f"hydra.run.dir={run}"]
    done = run_cli(args, tmp_path, preexec_fn=_file_size_limit(300_000))  # a checkpoint of the tiny nets is ~2 MB
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.startswith("error: could not write ") and done.stderr.count("\n") == 1
    assert "(File too large); the previous " in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for path in (run / "checkpoints").glob("*"):  # whatever is there under a checkpoint's name is a whole one
        assert path.suffix == ".ckpt", f"leftover {path.name}"
        torch.load(path, weights_only=True)


def test_run_and_data_directories_with_spaces_work(tmp_path, mnist_dir):
    data = tmp_path / "my data"
    (data / "MNIST").mkdir(parents=True)
    (data / "MNIST" / "raw").symlink_to(mnist_dir / "MNIST" / "raw")
    for name in ("lenet_mnist.pt", "lenet_mnist.json"):
        (data / name).write_bytes((mnist_dir / name).read_bytes())
    run = tmp_path / "my runs" / "first run"
    args = [*tiny_overrides("mnist_infogan", data)[2:], "experiment=mnist_infogan"]
    done = run_cli([*args, f"paths.data_dir='{data}'", f"hydra.run.dir='{run}'"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "summary.json").is_file() and f"Outputs in {run}" in done.stdout
    assert "metric/fid_lenet" in done.stdout
