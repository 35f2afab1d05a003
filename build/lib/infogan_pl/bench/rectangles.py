"""`make bench-rectangles`: every lever of the study and the seeds against BasicProp rectangles, same budget.

Prints, per variant: the iteration of the first non-finite loss (if any), final MIG, the accuracy of each
categorical code against each height (Hungarian-matched, on held-out real images), and the decoder's valid rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infogan_pl.bench.launch import run_jobs

VARIANTS = {
    "fg noise": ["experiment=basicprop_rect_fg_noise"],
    "fg+bg noise": ["experiment=basicprop_rect_fg_bg_noise"],
    "slow D": ["experiment=basicprop_rect_slow_d"],
    "annealed instance noise": ["experiment=basicprop_rect_annealed_noise"],
    "two cat codes": ["experiment=basicprop_rect_two_cat"],
    "WGAN-GP": ["experiment=basicprop_rect_wgan_gp"],
    "two cat codes + WGAN-GP": [
        "experiment=basicprop_rect_two_cat",
        "loss=wgan_gp",
        "model.lr_d=1e-4",
        "model.lr_g=1e-4",
        "model.lr_q=1e-4",
    ],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000, help="training batches per variant")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_rectangles"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    jobs = {}
    for name, overrides in VARIANTS.items():
        wgan = any("wgan" in o for o in overrides)
        steps = args.iterations + args.iterations // 5 if wgan else 2 * args.iterations  # optimizer steps
        jobs[name.replace(" ", "_").replace("+", "plus")] = [
            *overrides,
            f"seed={args.seed}",
            "logger=csv",
            f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={max(1, args.iterations // 4)}",
            "callbacks.evaluation.real=5000",
        ]
    failed = run_jobs(jobs, args.out, args.jobs)
    print(f"BasicProp rectangles, {args.iterations} iterations (batches of 64) per variant, seed {args.seed}")
    print("| variant | NaN at iteration | MIG | cat0: left / right height acc | cat1: left / right | valid rate |")
    print("|---|---|---|---|---|---|")
    for name, key in zip(VARIANTS, jobs, strict=True):
        path = args.out / key / "summary.json"
        if not path.is_file():
            print(f"| {name} | run failed | | | | |")
            continue
        s = json.loads(path.read_text())
        m = s["metrics"]

        def acc(i, m=m):
            left, right = m.get(f"metric/cat_acc/cat{i}_left_height"), m.get(f"metric/cat_acc/cat{i}_right_height")
            return "—" if left is None else f"{left:.3f} / {right:.3f}"

        nan = s["nan_iteration"] if s["nan_iteration"] is not None else "—"
        mig, valid = m.get("metric/mig"), m.get("metric/valid_rate")
        print(
            f"| {name} | {nan} | {mig:.3f} | {acc(0)} | {acc(1)} | {valid:.3f} |"
            if mig is not None
            else f"| {name} | {nan} | — | {acc(0)} | {acc(1)} | — |"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
