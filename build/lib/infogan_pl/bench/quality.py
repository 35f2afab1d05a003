"""`make bench-quality`: train mnist_infogan for K seeds x N epochs; print cat accuracy per epoch and L_I per seed.

Each seed is a separate `python -m infogan_pl` process (validated after every epoch) writing to
<out>/seed<k>/; up to --jobs run at once, each with --threads torch threads. Finished seeds are reused.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from infogan_pl.bench.launch import run_jobs


def per_epoch(run_dir: Path, epochs: int) -> list[float]:
    """metric/cat_acc after each epoch (the run's closing validation repeats the last one and is dropped)."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("metric/cat_acc")]
    return [float(r["metric/cat_acc"]) for r in rows][:epochs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per job (0: cores / jobs)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_quality"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every seed")
    args = parser.parse_args(argv)
    # The LeNet used by the per-epoch evaluation is trained once here, not by several jobs at the same time.
    subprocess.run([sys.executable, "-m", "infogan_pl.metrics.lenet", "--data-dir", "data"], check=True)
    start = time.time()
    epochs = [f"trainer.max_epochs={args.epochs}", "trainer.max_steps=-1", "trainer.val_check_interval=1.0"]
    epochs.append("trainer.check_val_every_n_epoch=1")
    jobs = {f"seed{k}": ["experiment=mnist_infogan", f"seed={k}", *epochs, *args.overrides] for k in range(args.seeds)}
    run_jobs(jobs, args.out, args.jobs, args.threads)
    print(f"mnist_infogan, {args.seeds} seeds x {args.epochs} epochs, {time.time() - start:.0f} s wall")
    header = ["seed"] + [f"acc ep{e + 1}" for e in range(args.epochs)] + ["L_I cat0", "L_I cont0", "L_I cont1"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    finals, lis = [], []
    for seed in range(args.seeds):
        run_dir = args.out / f"seed{seed}"
        if not (run_dir / "summary.json").is_file():
            continue
        accs = per_epoch(run_dir, args.epochs)
        m = json.loads((run_dir / "summary.json").read_text())["metrics"]
        li = [m.get(f"mi/eval_{c}", float("nan")) for c in ("cat0", "cont0", "cont1")]
        finals.append(accs[-1])
        lis.append(li)
        print("| " + " | ".join([str(seed), *(f"{a:.3f}" for a in accs), *(f"{v:.3f}" for v in li)]) + " |")
    if finals:
        med = [statistics.median(col) for col in zip(*lis, strict=True)]
        blanks = [""] * (args.epochs - 1)
        print(
            "| "
            + " | ".join(["median", *blanks, f"{statistics.median(finals):.3f}", *(f"{v:.3f}" for v in med)])
            + " |"
        )
    return 0 if len(finals) == args.seeds else 1


if __name__ == "__main__":
    sys.exit(main())
