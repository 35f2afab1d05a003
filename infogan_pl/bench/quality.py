"""`make bench-quality`: MNIST InfoGAN variants side by side, same machine, same seeds.

Each (variant, seed) is a `python -m infogan_pl` process writing to <out>/<variant>/seed<k>/, evaluated after
every epoch (Hungarian cat accuracy on the 10,000 real test images). Prints per seed and epoch the accuracy, the
final L_I per code and FID-LeNet of the final checkpoint (`python -m infogan_pl.evaluate`: 10,000 generated images
against the whole test set), then per variant the median and range over seeds, and each variant's seconds per
training iteration timed in this one process (alternating rounds). Finished runs and evaluations are reused. By
default: the recommended preset (`invariant`) against the original scheme (`baseline`), 5 seeds x 3 epochs, two jobs.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from infogan_pl.bench.launch import job_env, run_jobs

STRONG_T = ["model.augment.rotation=25", "model.augment.scale=0.2", "model.augment.shift=3"]
VARIANTS = {  # name -> overrides; the experiments say what each term is
    "baseline": ["experiment=mnist_infogan", "recipe=study"],  # the original scheme, as the paper trained it
    "real_mi": ["experiment=mnist_infogan_real_mi", "recipe=study"],
    "consistency_study": ["experiment=mnist_infogan_consistency", "recipe=study"],
    "consistency": ["experiment=mnist_infogan_consistency"],  # the preset as it is, with the default recipe
    "consistency_small_z_study": [
        "experiment=mnist_infogan_consistency",
        "recipe=study",
        "latent.z_prior=normal",
        "latent.z_scale=0.1",
    ],
    "consistency_overcluster_study": ["experiment=mnist_infogan_consistency", "recipe=study", "model.overcluster=50"],
    "consistency_overcluster": ["experiment=mnist_infogan_consistency", "model.overcluster=50"],
    # IIC's strength of transforms on MNIST (rotations up to 25 degrees, crops): style is what t changes
    "consistency_strong_t": ["experiment=mnist_infogan_consistency", *STRONG_T],
    "consistency_overcluster_strong_t": ["experiment=mnist_infogan_consistency", "model.overcluster=50", *STRONG_T],
    # Elastic-InfoGAN's transformation consistency on the generated side: Q reads c from t(G(z, c)) too
    "invariant": ["experiment=mnist_infogan_invariant"],  # the recommended preset: consistency + model.moved_fake=1
    "invariant_half": ["experiment=mnist_infogan_invariant", "model.moved_fake=0.5"],  # FID against accuracy
    "invariant_q_only": ["experiment=mnist_infogan_invariant", "model.moved_fake_trains_g=false"],  # G not pushed
    "invariant_live_g": ["experiment=mnist_infogan_consistency", "model.moved_fake=1"],  # the same, drawn with G itself
    "moved_fake_overcluster": ["experiment=mnist_infogan_consistency", "model.moved_fake=1", "model.overcluster=50"],
    # IIC's weight on the marginals (SCAN weighs its entropy term 5x): merged digits leave the clusters unbalanced
    "consistency_balanced": ["experiment=mnist_infogan_consistency", "model.consistency_entropy=2"],
}


def per_epoch(run_dir: Path, epochs: int) -> list[float]:
    """metric/cat_acc after each epoch, from the run's metrics CSV."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("metric/cat_acc")]
    return [float(r["metric/cat_acc"]) for r in rows][:epochs]


def criterion(run_dir: Path, epochs: int) -> float | None:
    """The unsupervised selection criterion of a finished run: `metric/consistency` at its last evaluation (Q's
    stability on real images under small transforms), else the mean `mi/consistency` the training logged over its
    last epoch (runs with the consistency term). No label is read."""
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    if "metric/consistency" in metrics:
        return metrics["metric/consistency"]
    with open(run_dir / "csv" / "metrics.csv") as f:
        values = [float(r["mi/consistency"]) for r in csv.DictReader(f) if r.get("mi/consistency")]
    return sum(values[-len(values) // epochs :]) / len(values[-len(values) // epochs :]) if values else None


def final_fid(run_dirs: list[Path], jobs: int, threads: int, data_dir: str) -> dict[Path, float | None]:
    """FID-LeNet of each run's last checkpoint by `evaluate` (its full budget: 10,000 generated images against the
    10,000 test images; the validation's 2,000 a side are too few to compare runs by), reused while newer than the
    checkpoint."""
    from concurrent.futures import ThreadPoolExecutor

    env = job_env(jobs, threads)

    def one(run_dir: Path) -> tuple[Path, float | None]:
        ckpt, record = run_dir / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "eval_last" / "metrics.json"
        if not ckpt.is_file():
            return run_dir, None
        if not record.is_file() or record.stat().st_mtime < ckpt.stat().st_mtime:
            cmd = [sys.executable, "-m", "infogan_pl.evaluate", f"ckpt_path={ckpt}", f"paths.data_dir={data_dir}"]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"evaluate failed on {ckpt}: {done.stderr.strip().splitlines()[-1:]}")
                return run_dir, None
        return run_dir, json.loads(record.read_text())["metrics"].get("metric/fid_lenet")

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return dict(pool.map(one, run_dirs))


def selected(finals: list[float], scores: list[float], k: int) -> list[float]:
    """For every k of the runs (restarts), the final accuracy of the one with the highest criterion."""
    return [finals[max(group, key=lambda i: scores[i])] for group in itertools.combinations(range(len(finals)), k)]


def _fmt(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per variant (default 5)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run, evaluated after each (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (default 2)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per job (0: cores / jobs)")
    parser.add_argument(
        "--variants",
        default="baseline,invariant",
        help=f"comma-separated, of {', '.join(VARIANTS)}; 'all' for every one",
    )
    parser.add_argument("--data-dir", default="data")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/bench_quality"),
        help="<out>/<variant>/seed<k>; finished runs are reused",
    )
    parser.add_argument(
        "--cost-iters", type=int, default=20, help="iterations timed per variant for the cost table (0: none)"
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args(argv)
    names = list(VARIANTS) if args.variants == "all" else [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print(f"error: unknown variant(s) {unknown}: choose from {list(VARIANTS)}", file=sys.stderr)
        return 2
    # The LeNet the evaluation uses is trained once here, not by several jobs at the same time.
    subprocess.run([sys.executable, "-m", "infogan_pl.metrics.lenet", "--data-dir", args.data_dir], check=True)
    start = time.time()
    budget = [f"trainer.max_epochs={args.epochs}", "trainer.max_steps=-1", "trainer.val_check_interval=1.0"]
    budget += ["trainer.check_val_every_n_epoch=1", f"paths.data_dir={Path(args.data_dir).absolute()}", "logger=csv"]
    jobs = {
        f"{v}/seed{k}": [*VARIANTS[v], f"seed={k}", *budget, *args.overrides] for v in names for k in range(args.seeds)
    }
    failed = run_jobs(jobs, args.out, args.jobs, args.threads)
    fid_of = final_fid([args.out / n for n in jobs], args.jobs, args.threads, str(Path(args.data_dir).absolute()))
    print(f"MNIST InfoGAN variants, {args.seeds} seeds x {args.epochs} epochs, {time.time() - start:.0f} s wall")
    header = ["variant", "seed", *(f"acc ep{e + 1}" for e in range(args.epochs)), "L_I cat0", "L_I cont0", "FID 10k"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    summary, selection = {}, {}
    for v in names:
        finals, li, fids, scores, epochs = [], [], [], [], [[] for _ in range(args.epochs)]
        for k in range(args.seeds):
            run_dir = args.out / v / f"seed{k}"
            if not (run_dir / "summary.json").is_file():
                print(f"| {v} | {k} | run failed or missing: {run_dir} |")
                continue
            accs = per_epoch(run_dir, args.epochs)
            m = json.loads((run_dir / "summary.json").read_text())["metrics"]
            cells = [f"{a:.3f}" for a in accs] + ["—"] * (args.epochs - len(accs))
            extra = [m.get("mi/eval_cat0"), m.get("mi/eval_cont0"), fid_of.get(run_dir)]
            cells += ["—" if x is None else f"{x:.3f}" for x in extra]
            print(f"| {v} | {k} | " + " | ".join(cells) + " |")
            for e, a in enumerate(accs):
                epochs[e].append(a)
            if accs:
                finals.append(accs[-1])
                scores.append(criterion(run_dir, args.epochs))
            li += [m["mi/eval_cat0"]] if m.get("mi/eval_cat0") is not None else []
            fids += [fid_of[run_dir]] if fid_of.get(run_dir) is not None else []
        summary[v] = (epochs, finals, li, fids)
        if len(finals) >= 2 and all(score is not None for score in scores):
            selection[v] = (finals, scores)
    print(
        "\nMedian (range) over seeds; 'seeds >= 0.95': runs whose final cat acc passes the paper's 95%, one run each:"
    )
    header = ["variant", "seeds >= 0.95", *(f"cat acc ep{e + 1}" for e in range(args.epochs))]
    header += ["L_I cat0", "FID-LeNet 10k"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for v, (epochs, finals, li, fids) in summary.items():
        passed = f"{sum(a >= 0.95 for a in finals)}/{len(finals)}"
        print(f"| {v} | {passed} | " + " | ".join(_fmt(e) for e in epochs) + f" | {_fmt(li)} | {_fmt(fids)} |")
    if selection:
        print(
            "\nBest of k restarts by the unsupervised criterion (no label read), over every k of the seeds; cost k x:"
        )
        print("| variant | k | selected final cat acc: median (range) | criterion per seed |\n|---|---|---|---|")
        for v, (finals, scores) in selection.items():
            per_seed = ", ".join(f"{c:.3f}" for c in scores)
            for k in range(2, min(3, len(finals)) + 1):
                print(f"| {v} | {k} | {_fmt(selected(finals, scores, k))} | {per_seed} |")
    if args.cost_iters:
        cost(
            names,
            args.cost_iters,
            args.threads or os.cpu_count() or 1,
            args.data_dir,
            args.out / "cost",
            args.overrides,
        )
    return 1 if failed else 0


def cost(
    names: list[str], iters: int, threads: int, data_dir: str, out: Path, overrides: list[str] = (), rounds: int = 2
) -> None:
    """Seconds per training iteration of each variant, timed in this one process in alternating rounds (after a
    warm-up, evaluation outside the window), and the ratio to the original scheme (`baseline`; else the first)."""
    import logging

    import torch

    from infogan_pl.bench.speed import framework_rate

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(threads)
    batch, extra = 128, [f"paths.data_dir={Path(data_dir).absolute()}", "trainer.enable_progress_bar=false", *overrides]
    times = {v: [] for v in names}
    for _ in range(rounds):
        for v in names:
            times[v].append(batch / framework_rate(batch, iters, 3, "auto", [*VARIANTS[v], *extra], str(out)))
    ref = "baseline" if "baseline" in names else names[0]
    first = statistics.mean(times[ref])
    print(
        f"\nCost per iteration ({torch.get_num_threads()} threads, {rounds} alternating rounds of {iters} iterations):"
    )
    print(f"| variant | s / iteration | x {ref} |\n|---|---|---|")
    for v in names:
        print(f"| {v} | {statistics.mean(times[v]):.3f} | {statistics.mean(times[v]) / first:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
