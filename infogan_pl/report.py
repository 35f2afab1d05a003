"""`python -m infogan_pl.report <run dirs or multirun dirs> [--out report.md]`: the study's table, our numbers.

A run directory is any directory holding `config.yaml` and `summary.json` (written at the end of every run, a run
stopped at a non-finite loss included). The report has two tables: *over seeds*, one row per configuration (runs
that differ only in their seed; the recipe, which a preset selects, counts as training): how many runs succeeded
(`metric/success`, n/N) and the median (range) of the headline metrics; and *runs*, one row per run.
`metrics_table` is the table every run and `evaluate` print.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

from omegaconf import OmegaConf

from infogan_pl.atomic import atomic_write

COLUMNS = ["run", "experiment", "recipe", "seed", "overrides", "data", "codes", "λ", "L_I per code in eval mode (nats)"]
COLUMNS += ["cat acc", "cat acc untrained", "MIG", "FID-LeNet / valid rate", "NaN at iteration", "iterations"]
COLUMNS += ["traversal"]
HEADLINE = ("metric/", "mi/eval_", "val/")
# Overrides that do not change what a run learns: runs differing only in these (and the seed) form one row over seeds.
NOT_TRAINING = ("seed", "logger", "ckpt_path", "trainer.enable_progress_bar", "trainer.enable_model_summary")
NOT_TRAINING_PREFIXES = ("hydra.", "paths.", "callbacks.progress.")
# (column, metric) of the over-seeds table; a column no run has is left out.
SEED_COLUMNS = [
    ("cat acc", "metric/cat_acc"),
    ("MIG", "metric/mig"),
    ("valid rate", "metric/valid_rate"),
    ("gen distinct", "metric/gen_distinct"),
    ("FID-LeNet", "metric/fid_lenet"),
    ("active dims", "metric/active_dims"),
    ("L_I total in eval mode (nats)", "mi/eval_total"),
]


def metrics_table(metrics: dict[str, float]) -> str:
    """The headline metrics (per-code / per-factor details are in summary.json and metrics.json), one per line."""
    names = sorted(k for k in metrics if k.startswith(HEADLINE) and k.count("/") == 1 and metrics[k] is not None)
    if not names:
        return "(no evaluation metrics)"
    width = max(len(n) for n in names)
    return "\n".join(f"{name:{width}s}  {metrics[name]:.4f}" for name in names)


def find_runs(paths: list[Path]) -> list[Path]:
    runs = set()
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        for summary in [path / "summary.json", *path.rglob("summary.json")]:
            if summary.is_file() and (summary.parent / "config.yaml").is_file():
                runs.add(summary.parent)
    return sorted(runs, key=launch_order)


def launch_order(path: Path) -> list:
    """A sweep's jobs in launch order (0, 1, 2, ..., 10), not as strings sort them (0, 1, 10, 2)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts]


def _codes(latent) -> str:
    parts = [f"z{latent.z_dim}"] if latent.z_dim else []
    parts += [f"Cat({k})" for k in latent.categorical] + ([f"{latent.continuous}×U(-1,1)"] if latent.continuous else [])
    return " + ".join(parts)


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def row(run: Path, relative_to: Path) -> list[str]:
    cfg = OmegaConf.load(run / "config.yaml")
    summary = json.loads((run / "summary.json").read_text())
    m = summary["metrics"]
    data = cfg.data.get("variant", "mnist") if "variant" in cfg.data else "mnist"
    noise = cfg.data.get("noise", "none")
    data = f"{data} ({noise} noise)" if noise not in (None, "none") else data
    mi = ", ".join(
        f"{k.removeprefix('mi/eval_')} {v:.2f}"
        for k, v in sorted(m.items())
        if k.startswith("mi/eval_") and k.count("_") == 1 and v is not None
    )
    quality = m.get("metric/fid_lenet")
    quality = (
        f"FID {quality:.2f}"
        if quality is not None
        else (f"valid {m['metric/valid_rate']:.3f}" if "metric/valid_rate" in m else "—")
    )
    grids = sorted((run / "traversals").glob("*.png")) if (run / "traversals").is_dir() else []
    last = [g for g in grids if g.name.startswith(grids[-1].name.split("_")[0])] if grids else []
    link = f"[grid]({os.path.relpath(last[0], relative_to)})" if last else "—"
    lam = cfg.model.get("lambda_info", 0)
    nan = summary.get("nan_iteration")
    bad = summary.get("nan_loss")
    nan_text = "—" if nan is None else f"{nan} ({bad['name']})" if bad else str(nan)
    overrides = " ".join(summary.get("overrides") or []) or "—"
    return [
        os.path.relpath(run, relative_to),
        summary["experiment"],
        summary.get("recipe") or "—",
        str(summary.get("seed", cfg.get("seed", "—"))),
        f"`{overrides}`" if overrides != "—" else overrides,
        data,
        _codes(cfg.latent),
        f"{lam:g}",
        mi or "—",
        _fmt(m.get("metric/cat_acc")),
        _fmt(m.get("metric/cat_acc_untrained")),
        _fmt(m.get("metric/mig")),
        quality,
        nan_text,
        str(summary["iterations"]),
        link,
    ]


Configuration = tuple[str, str, tuple[str, ...]]  # experiment, recipe, the overrides that change training


def configuration(summary: dict) -> Configuration:
    """What a run trained, seed aside: its experiment, its recipe (the preset's or the command line's: a preset that
    changed its recipe between two runs trained differently) and the other overrides that change training, in order.
    Runs from before summary.json named the recipe have "—" and keep `recipe=...` among their overrides."""
    recipe = summary.get("recipe")
    kept = []
    for override in summary.get("overrides") or []:
        key = override.split("=", 1)[0].lstrip("+~")
        if key not in NOT_TRAINING and not key.startswith(NOT_TRAINING_PREFIXES) and not (recipe and key == "recipe"):
            kept.append(override)
    return summary["experiment"], recipe or "—", tuple(kept)


def median_range(values: list[float]) -> str:
    """`median (min–max)` of the finite values, `—` when there are none."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "—"
    med = statistics.median(values)
    counts = all(float(v).is_integer() for v in values) and float(med).is_integer() and max(values) > 1
    fmt = "{:.0f}" if counts else "{:.3f}"  # gen_distinct, active dimensions: whole numbers
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return fmt.format(med) if len(values) == 1 else f"{fmt.format(med)} ({low}–{high})"


def seed_groups(runs: list[Path]) -> dict[Configuration, list[dict]]:
    """Runs grouped by configuration (experiment, recipe, training overrides), each a list of summaries by seed."""
    groups: dict[Configuration, list[dict]] = {}
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        groups.setdefault(configuration(summary), []).append(summary)
    for summaries in groups.values():
        summaries.sort(key=lambda s: (str(type(s.get("seed"))), s.get("seed")))
    return groups


def seeds_table(groups: dict[Configuration, list[dict]]) -> list[str]:
    """One row per configuration: runs, seeds, successes n/N (a run stopped at a non-finite loss counts as a failure;
    `—` when no criterion applies), NaN stops, and the median (range) of each headline metric over its runs."""
    columns = [
        (name, key) for name, key in SEED_COLUMNS if any(key in s["metrics"] for g in groups.values() for s in g)
    ]
    header = ["experiment", "recipe", "overrides", "runs", "seeds", "torch threads", "success", "NaN stops"]
    header += [name for name, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (experiment, recipe, overrides), summaries in sorted(groups.items()):
        judged = [s for s in summaries if s["metrics"].get("metric/success") is not None or s.get("nan_iteration")]
        wins = sum(1 for s in judged if s["metrics"].get("metric/success") == 1)
        nans = sum(1 for s in summaries if s.get("nan_iteration") is not None)
        cells = [
            experiment,
            recipe,
            f"`{' '.join(overrides)}`" if overrides else "—",
            str(len(summaries)),
            ",".join(str(s.get("seed")) for s in summaries),
            ",".join(sorted({str((s.get("machine") or {}).get("torch_threads", "?")) for s in summaries})),
            f"{wins}/{len(judged)}" if judged else "—",
            str(nans),
            *[median_range([s["metrics"].get(key) for s in summaries]) for _, key in columns],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(paths: list[Path], out: Path) -> str:
    runs = find_runs(paths)
    if not runs:
        raise FileNotFoundError(f"no finished runs (config.yaml + summary.json) under {', '.join(map(str, paths))}")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(run, out.parent)) + " |" for run in runs]
    from infogan_pl.figures.seeds import seeds_figure  # matplotlib: only when a report is written

    groups = seed_groups(runs)
    seeds = seeds_table(groups)
    figure = seeds_figure(groups, out.with_suffix(".png"))
    seeds.append(f"\n![one point per seed]({figure.name})")
    text = "# infogan_pl report\n\n## Over seeds\n\n" + "\n".join(seeds) + "\n\n## Runs\n\n" + "\n".join(lines) + "\n"
    atomic_write(out, text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Markdown table of finished runs, in the layout of the study.")
    parser.add_argument("paths", nargs="+", type=Path, help="run directories or directories that contain runs")
    parser.add_argument("--out", type=Path, help="where to write the report (default: <first path>/report.md)")
    args = parser.parse_args(argv)
    out = args.out or (args.paths[0] / "report.md")
    try:
        print(report(args.paths, out), end="")
    except FileNotFoundError as err:  # nothing to report: the user names another directory
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the report could not be written
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"\nWrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
