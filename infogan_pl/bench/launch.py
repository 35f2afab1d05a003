"""Run several `python -m infogan_pl` jobs as subprocesses, a few at a time; finished jobs are reused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def job_env(parallel: int = 1, threads: int = 0) -> dict[str, str]:
    """The environment of a job run beside `parallel - 1` others: `threads` torch threads (0: the cores shared out),
    W&B off."""
    threads = threads or max(1, (os.cpu_count() or 1) // parallel)
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}


def run_jobs(jobs: dict[str, list[str]], out: Path, parallel: int = 1, threads: int = 0) -> list[str]:
    """Run each job's overrides into <out>/<name>/ (skipped when its summary.json exists); returns failures."""
    env = job_env(parallel, threads)
    pending, running, failed = list(jobs), [], []
    while pending or running:
        while pending and len(running) < parallel:
            name = pending.pop(0)
            run_dir = out / name
            if (run_dir / "summary.json").is_file():
                continue
            run_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "infogan_pl", *jobs[name], "trainer.enable_progress_bar=false"]
            cmd.append(f"hydra.run.dir={run_dir}")
            log = open(run_dir / "bench.log", "w")  # noqa: SIM115 - closed when the process ends
            running.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
        for item in list(running):
            name, proc, log = item
            if proc.poll() is not None:
                running.remove(item)
                log.close()
                if proc.returncode != 0:
                    failed.append(name)
                    print(f"{name} failed (exit {proc.returncode}): see {out / name / 'bench.log'}")
        time.sleep(2)
    return failed
