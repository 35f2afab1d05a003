"""The pre-flight check: a configuration that cannot run fails in a second, in one sentence, before anything is written.

`validate(cfg, run_dir)` builds the cheap objects through the same builder as training (latent, noise, loss, the
DataModule without reading data, the model, the Trainer and its callbacks), so each constructor's own one-line
refusal is what the user sees. It adds only what no constructor can know: the data files are present and sound (the
DataModule's own `check`), the run directory can be created, and the checkpoint to resume from is readable and was
trained with the same model, codes and data. The Hydra callback `ValidateConfig` runs it before Hydra creates the
run directory, prints the line and exits with status 2. Before that, `infogan_pl.cli.command_line_error` has
refused in one line what Hydra itself would (a misspelt key, an unknown experiment, a malformed override).
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from infogan_pl.build import ConfigError, build, build_callbacks, build_labeller, build_trainer
from infogan_pl.checkpointing import check_resume
from infogan_pl.cli import EXIT_CONFIG
from infogan_pl.report import launch_order


def _world_size(cfg: DictConfig) -> int:
    devices = cfg.trainer.get("devices", 1)
    return devices if isinstance(devices, int) and devices > 0 else 1


def check_writable(run_dir: str | Path) -> None:
    """The run directory can be created: try it (os.access says yes to root everywhere, /proc included)."""
    path = Path(run_dir).absolute()
    parent = path
    while not parent.exists():
        parent = parent.parent
    if parent.is_dir():
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".infogan_pl-check-", dir=parent))
            return
        except OSError:
            pass
    raise ConfigError(
        f"cannot create the run directory {run_dir} ({parent} is not a writable directory): set hydra.run.dir."
    )


def validate(cfg: DictConfig, run_dir: str | Path | None = None, sweep: bool = False) -> None:
    """Raise ConfigError with one actionable sentence if `cfg` cannot train; writes nothing.

    sweep: the check a sweep makes once where it is launched (a SLURM login node may have no GPU, and each job's
    checkpoints are its own): the Trainer's devices and the checkpoint are left to each job's own check."""
    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}.")
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.pop("hydra", None)  # Hydra's own node holds values only its runtime can resolve
        if run_dir is not None:  # before Hydra sets its runtime config, the run's directory is known only here
            cfg.paths.output_dir = str(run_dir)
    datamodule, _model = build(cfg)
    build_labeller(cfg)
    callbacks = build_callbacks(cfg)
    if not sweep:
        build_trainer(cfg, callbacks=callbacks)
    if run_dir is not None:
        check_writable(run_dir)
    try:
        datamodule.check(world_size=_world_size(cfg))
    except (RuntimeError, ValueError, OSError) as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    if sweep:
        return
    try:
        check_resume(cfg, run_dir)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from None


class ValidateConfig(Callback):
    """Hydra callback: run the pre-flight check before Hydra creates the run (or sweep) directory."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._validate(config, OmegaConf.select(config, "hydra.run.dir"))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        # The sweep's own values are applied per job; each job checks its configuration again before training.
        self._validate(config, OmegaConf.select(config, "hydra.sweep.dir"), sweep=True)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        """Exit non-zero when a job failed, naming each (the others have finished)."""
        sweep_dir = Path(OmegaConf.select(config, "hydra.sweep.dir"))
        print(f"Sweep finished in {sweep_dir}; its table over seeds: python -m infogan_pl.report {sweep_dir}")
        failed = sorted(sweep_dir.glob("*/error.txt"), key=lambda p: launch_order(p.parent))
        if failed:
            lines = [f"  job {p.parent.name}: {p.read_text().strip()}" for p in failed]
            print(f"error: {len(failed)} job(s) of the sweep failed:\n" + "\n".join(lines), file=sys.stderr)
            sys.exit(1)

    def _validate(self, config: DictConfig, run_dir: str | None, sweep: bool = False) -> None:
        # Hydra turns an exception in a callback into a warning and goes on: the check must end the command here.
        try:
            validate(config, run_dir, sweep)
        except ConfigError as err:
            self._fail(err)
        except Exception as err:  # noqa: BLE001 - whatever refused this configuration, the user sees one line
            self._fail(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")

    @staticmethod
    def _fail(err: Exception) -> None:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
