"""`python -m infogan_pl`: compose → check → train → report the metrics and the run directory.

Exit status: 0 trained (the metrics table and the run directory are printed last); 2 the configuration or an input
was refused before anything was written (one line on stderr); 3 training stopped at a non-finite loss (one line,
`summary.json` has `nan_iteration` and the loss); 143 stopped by SIGTERM (a cluster's preemption or time limit:
`last.ckpt` holds the iteration it stopped at, `ckpt_path=last` resumes; no `summary.json`, the run is not finished);
1 any other failure (a sweep: one or more jobs failed).
Only Hydra is imported until a run starts, so `--help` and a refused key answer at once.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from infogan_pl.cli import EXIT_CONFIG, exit_on_command_line_error
from infogan_pl.config import CONFIG_DIR

log = logging.getLogger("infogan_pl.train")
EXIT_NAN = 3
EXIT_SIGTERM = 143  # 128 + SIGTERM, the shell's status for a process SIGTERM ended


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from infogan_pl.atomic import WriteFailed
    from infogan_pl.build import ConfigError
    from infogan_pl.train import run

    if HydraConfig.get().mode != RunMode.MULTIRUN:
        try:
            outcome = run(cfg)
        except SIGTERMException:  # a SystemExit of status 0 otherwise: "trained" to whatever reads the status
            sys.exit(EXIT_SIGTERM)  # last.ckpt is saved; the line saying so is printed
        except ConfigError as err:
            _fail(str(err), EXIT_CONFIG)
        except WriteFailed as err:  # a full disk: the line names the file and the space it needs
            _fail(str(err), 1)
        except OSError as err:  # permissions, ...: nothing half-written is named as valid
            _fail(f"{type(err).__name__}: {err}", 1)
        if outcome.nan_iteration is not None:
            sys.exit(EXIT_NAN)
        return outcome.value
    (Path(cfg.paths.output_dir) / "error.txt").unlink(missing_ok=True)  # a job run again into its old directory
    try:  # in a sweep, one failed job is reported and the others go on; the sweep exits 1 at the end
        return run(cfg).value
    except SIGTERMException:  # the sweep itself is being stopped: no job after this one starts
        sys.exit(EXIT_SIGTERM)
    except Exception as err:
        log.error("Job %s failed: %s: %s", HydraConfig.get().job.num, type(err).__name__, err)
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.txt").write_text(f"{type(err).__name__}: {err}\n")
        return math.nan


if __name__ == "__main__":
    exit_on_command_line_error("config")  # what Hydra itself would refuse: one line, exit 2
    main()
