"""`make bench-quality`: train mnist_infogan for K seeds x N epochs; print cat accuracy per epoch and L_I per seed.

Each seed is a separate `python -m infogan_pl` process (validated after every epoch) writing to
<out>/seed<k>/; up to --jobs run at once, each with --threads torch threads. Finished seeds are reused.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_seed(seed: int, epochs: int, out: Path, threads: int, extra: list[str]) -> subprocess.Popen | None:
    run_dir = out / f"seed{seed}"
    if (run_dir / "summary.json").is_file():
        return None
    cmd = [sys.executable, "-m", "infogan_pl", "experiment=mnist_infogan", f"seed={seed}"]
    cmd += [f"trainer.max_epochs={epochs}", "trainer.max_steps=-1", "trainer.val_check_interval=1.0"]
    cmd += ["trainer.check_val_every_n_epoch=1", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "bench.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([*cmd, *extra], stdout=log, stderr=subprocess.STDOUT, env=env)


def per_epoch(run_dir: Path) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("metric/cat_acc")]
    return [float(r["metric/cat_acc"]) for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per job (0: cores / jobs)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_quality"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every seed")
    args = parser.parse_args(argv)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    # The LeNet used by the per-epoch evaluation is trained once here, not by several jobs at the same time.
    subprocess.run([sys.executable, "-m", "infogan_pl.metrics.lenet", "--data-dir", "data"], check=True)
    start, pending, running = time.time(), list(range(args.seeds)), []
    while pending or running:
        while pending and len(running) < args.jobs:
            seed = pending.pop(0)
            proc = run_seed(seed, args.epochs, args.out, threads, args.overrides)
            if proc is not None:
                running.append((seed, proc))
        for seed, proc in list(running):
            if proc.poll() is not None:
                running.remove((seed, proc))
                if proc.returncode != 0:
                    print(f"seed {seed} failed (exit {proc.returncode}): see {args.out / f'seed{seed}' / 'bench.log'}")
        time.sleep(5)
    print(f"mnist_infogan, {args.seeds} seeds x {args.epochs} epochs, {time.time() - start:.0f} s wall")
    header = ["seed"] + [f"acc ep{e + 1}" for e in range(args.epochs)] + ["L_I cat0", "L_I cont0", "L_I cont1"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    finals, lis = [], []
    for seed in range(args.seeds):
        run_dir = args.out / f"seed{seed}"
        if not (run_dir / "summary.json").is_file():
            continue
        accs = per_epoch(run_dir)
        m = json.loads((run_dir / "summary.json").read_text())["metrics"]
        li = [m.get(f"mi/eval_{c}", float("nan")) for c in ("cat0", "cont0", "cont1")]
        finals.append(accs[-1])
        lis.append(li)
        print("| " + " | ".join([str(seed), *(f"{a:.3f}" for a in accs), *(f"{v:.3f}" for v in li)]) + " |")
    if finals:
        med = [statistics.median(col) for col in zip(*lis, strict=True)]
        print(
            f"| median | {' | '.join([''] * (args.epochs - 1))} | {statistics.median(finals):.3f} | "
            + " | ".join(f"{v:.3f}" for v in med)
            + " |"
        )
    return 0 if len(finals) == args.seeds else 1


if __name__ == "__main__":
    sys.exit(main())
