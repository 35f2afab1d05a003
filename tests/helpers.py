"""Test helpers: tiny on-disk MNIST in torchvision's layout, config composition, short Trainer runs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from infogan_pl.config import CONFIG_DIR
from infogan_pl.data.offline_mnist import idx_bytes
from infogan_pl.latent import LatentSpec

SPEC = LatentSpec(z_dim=8, categorical=[10], continuous=2)  # the MNIST codes with a small z, for module tests
EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
STUDY_ROWS = {  # the presets of the study's table, one per row
    "mnist_vanilla_gan",
    "mnist_gan_latent",
    "mnist_infogan",
    "mnist_infogan_latent_only",
    "mnist_infogan_cat_only",
    "basicprop_line",
    "basicprop_rect",
    "basicprop_rect_fg_noise",
    "basicprop_rect_fg_bg_noise",
    "basicprop_rect_slow_d",
}

README_PRESETS = {  # presets the README gives a command for, beside the study's table
    "basicprop_rect_two_cat",
    "mnist_infogan_real_mi",
    "mnist_infogan_consistency",
    "mnist_infogan_invariant",
    "mnist_vae",
    "mnist_vae_mi",
    "basicprop_line_vae_mi",
    "mnist_infogan_cat20",
    "mnist_infogan_encoder_loss",
    "basicprop_pp_colour",
    "basicprop_pp_alternating_shapes_invariant",
}
# Trained through the command line, in one sweep, by test_user_commands.py; the other presets train in-process in
# test_experiments.py. Both check a run's outputs with assert_run_outputs.
CLI_PRESETS = sorted(STUDY_ROWS | README_PRESETS)


def assert_run_outputs(run: Path, experiment: str) -> None:
    """A finished run of `experiment` wrote its config, last checkpoint, traversals and the metrics of its kind."""
    import csv
    import json
    import math

    from omegaconf import OmegaConf

    cfg = OmegaConf.load(run / "config.yaml")
    assert cfg.name == experiment
    assert (run / "checkpoints" / "last.ckpt").is_file()
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("config.yaml", "summary.json", "checkpoints/last.ckpt", "csv/metrics.csv"):  # readable as a plain
        assert (run / name).stat().st_mode & 0o777 == 0o666 & ~umask, name  # write's: a shared disk shares them
    assert list((run / "traversals").glob("*.png"))
    with open(run / "csv" / "metrics.csv") as f:
        logged = {k for row in csv.DictReader(f) for k, v in row.items() if v}
    if "vae" in experiment:
        assert {"loss/recon", "loss/kl", "kl/z0", "mi/regularized", "mi/eval_unregularized"} <= logged
        return
    assert {"loss/d", "loss/g", "d/real", "d/fake", "noise/std"} <= logged
    assert ("d/gap" if "wgan" in experiment else "d/fake_over_real") in logged  # critic scores are no probabilities
    value = json.loads((run / "summary.json").read_text())["metrics"].get(cfg.optimized_metric)
    infogan = cfg.model._target_.endswith("InfoGAN")
    if infogan and not cfg.latent.categorical:  # continuous factors and codes only
        assert {"loss/q", "mi/total", "mi/cont0", "metric/mig", "metric/cont_corr"} <= logged
    elif infogan and "celeba" not in experiment:
        assert {"loss/q", "mi/total", "mi/cat0", "metric/cat_acc"} <= logged
        assert 0 <= value <= 1
    elif "celeba" in experiment:  # attributes, not factors: the code x attribute table instead of an accuracy
        assert {"loss/q", "mi/total", "mi/cat9"} <= logged and "metric/cat_acc" not in logged
        assert (run / "figures" / "mi_table.csv").is_file()
    else:
        assert value is None or math.isfinite(value)


def write_mnist_idx(raw_dir: Path, n_train: int = 256, n_test: int = 128, seed: int = 0) -> None:
    """Random digits-like uint8 images with balanced labels, written as torchvision's four raw IDX files."""
    rng = np.random.default_rng(seed)
    raw_dir.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw_dir / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (raw_dir / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))


# FC layers of 64 instead of the paper's 1024: 1/16 of the parameters, so steps and checkpoint writes are cheap
SMALL_NETS = ["+model.generator.hidden=64", "+model.discriminator.hidden=64"]
TINY = [
    *SMALL_NETS,
    "logger=csv",
    "data.batch_size=16",
    "trainer.max_steps=6",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.model_checkpoint.every_n_train_steps=4",
    "callbacks.evaluation.real=48",
    "callbacks.evaluation.generated_per_value=4",
    "callbacks.evaluation.fid=32",
    "callbacks.evaluation.mi=64",
]


def tiny_overrides(experiment: str, data_dir: Path) -> list[str]:
    """Overrides that make any experiment a few-step run on tiny data (data_dir: the `data_dir` fixture)."""
    if experiment.startswith("mnist"):
        data = ["data.download=false", "data.train_size=64", "data.val_size=48"]
    elif experiment.startswith("celeba"):  # the generated layout: 8 train / 2 valid images
        return [
            f"experiment={experiment}",
            f"paths.data_dir={data_dir}",
            *[o for o in TINY if o not in SMALL_NETS],  # the CelebA nets have no `hidden`
            "data.batch_size=4",
            "data.verify_md5=false",
            "data.num_workers=0",
        ]
    else:
        data = ["data.train_size=64", "data.val_size=48"]
    return [f"experiment={experiment}", f"paths.data_dir={data_dir}", *data, *TINY]


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose conf/config.yaml as the CLI would, with the run directory set to `output_dir`."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[*overrides, f"paths.root_dir={output_dir}", f"paths.output_dir={output_dir}"],
        )


def fit(
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    max_steps: int,
    root: Path,
    log_every: int = 1,
    ckpt_path: str | None = None,
    **trainer_kwargs,
) -> L.Trainer:
    """A quiet CPU Trainer run of `max_steps` optimizer steps; step metrics written every `log_every` batches,
    resumed from `ckpt_path` if given. `trainer_kwargs` go to the Trainer (e.g. `plugins`, `callbacks`)."""
    settings = dict(
        accelerator="cpu",
        max_steps=max_steps,
        log_every_n_steps=log_every,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=root,
        use_distributed_sampler=False,
    )
    trainer = L.Trainer(**{**settings, **trainer_kwargs})
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer


class StepRecorder(L.Callback):
    """Test probe through torch's public optimizer hooks: each optimizer step appends (network, names of the
    parameters it changed), network "d" for the D (+ Q) optimizer and "g" for G's."""

    def __init__(self) -> None:
        self.records: list[tuple[str, set[str]]] = []
        self._before: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        for network, opt in zip("dg", pl_module.optimizers(), strict=True):
            opt.optimizer.register_step_pre_hook(lambda *_: self._snapshot(pl_module))
            opt.optimizer.register_step_post_hook(lambda *_, network=network: self._record(pl_module, network))

    def _snapshot(self, module) -> None:
        self._before = {n: p.detach().clone() for n, p in module.named_parameters()}

    def _record(self, module, network: str) -> None:
        changed = {n for n, p in module.named_parameters() if not torch.equal(self._before[n], p.detach())}
        self.records.append((network, changed))


class RecordRanks(L.Callback):
    """Test probe: each rank saves its first real batch, its first generated batch and its final generator weights
    to <dirpath>."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_start(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"fake_rank{trainer.global_rank}.pt"

        def save_first(module, inputs, output):
            if not path.exists():
                torch.save(output.detach().cpu(), path)

        pl_module.generator.register_forward_hook(save_first)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0 and trainer.current_epoch == 0:
            torch.save(batch[0].cpu(), self.dirpath / f"batch_rank{trainer.global_rank}.pt")

    def on_train_end(self, trainer, pl_module) -> None:
        weights = torch.cat([p.detach().flatten().cpu() for p in pl_module.generator.parameters()])
        torch.save(weights, self.dirpath / f"generator_rank{trainer.global_rank}.pt")


CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
# The command-line modules a `run_cli` process starts with already imported (see `_run_module`).
PRELOADED = ["infogan_pl.__main__", "infogan_pl.train", "infogan_pl.evaluate", "infogan_pl.report"]


def run_cli(
    args: list[str], cwd: Path, module: str = "infogan_pl", timeout: float = 300, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` as a user types it, in `cwd`, with the default output directories.

    The command runs in a process of its own with its own argv, working directory and environment, its output
    captured and its exit status returned; the process is forked from a server that imported the package once
    (torch, Lightning, Hydra: about 8 s of every start on a slow 2-core machine), not started as a new
    interpreter. What depends on the interpreter's start (which modules a command imports, signals, DDP's
    re-launch, a fresh clone's `make`) is tested with `subprocess` directly."""
    import multiprocessing

    preexec_fn = kwargs.pop("preexec_fn", None)
    assert not kwargs, f"run_cli does not take {sorted(kwargs)}"
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        out.touch()
        err.touch()
        environment = {**CLI_ENV, **(env or {})}
        proc = context.Process(target=_run_module, args=(module, args, str(cwd), environment, out, err, preexec_fn))
        proc.start()
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()
            raise subprocess.TimeoutExpired([module, *args], timeout, out.read_text(), err.read_text())
        return subprocess.CompletedProcess(
            [sys.executable, "-m", module, *args], proc.exitcode, out.read_text(), err.read_text()
        )


def _run_module(module, args, cwd, env, out, err, preexec_fn) -> None:
    """In the forked process: become `python -m module *args` run in `cwd` with `env`, then exit as it would."""
    import atexit
    import multiprocessing.process
    import runpy
    import threading
    import traceback

    multiprocessing.current_process().name = "MainProcess"  # as a started interpreter: no parent process
    multiprocessing.process._parent_process = None
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.path[:0] = [cwd, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    if "OMP_NUM_THREADS" in env:  # read by torch when it was imported, in the server
        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    if preexec_fn is not None:
        preexec_fn()
    sys.argv = [module, *args]
    for name in (module, f"{module}.__main__"):  # run as __main__, as `-m` does, not the copy the server imported
        sys.modules.pop(name, None)
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, int | None):
            print(stop.code, file=sys.stderr)
    except BaseException:  # as an interpreter does: the traceback on stderr, exit 1
        traceback.print_exc()
        code = 1
    threading._shutdown()  # what the interpreter does at exit: join the threads and their exit hooks, then atexit
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def assert_refused(done: subprocess.CompletedProcess, message: str, code: int = 2) -> None:
    """One line on stderr naming the problem, the given exit status, no traceback, nothing about weights_only."""
    output = done.stdout + done.stderr
    assert done.returncode == code, output[-3000:]
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr[-3000:]
    assert message in done.stderr, done.stderr
    assert "Traceback" not in output and "weights_only" not in output


class NaNOnRank(L.Callback):
    """Test probe: D's logits become NaN on one rank only, from iteration `start` on."""

    def __init__(self, rank: int = 1, start: int = 2) -> None:
        self.rank, self.start = rank, start

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.global_rank == self.rank:
            pl_module.discriminator.head.register_forward_hook(
                lambda m, i, out: out * float("nan") if pl_module.iteration >= self.start else out
            )
