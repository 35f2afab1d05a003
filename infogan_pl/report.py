"""`python -m infogan_pl.report <run dirs or multirun dirs> [--out report.md]`: the study's table, our numbers.

A run directory is any directory holding `config.yaml` and `summary.json` (written at the end of every run, a run
stopped at a non-finite loss included). `metrics_table` is the table every run and `evaluate` print at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

COLUMNS = ["run", "experiment", "seed", "overrides", "data", "codes", "λ", "L_I per code (nats)", "cat acc"]
COLUMNS += ["cat acc untrained", "MIG", "FID-LeNet / valid rate", "NaN at iteration", "iterations", "traversal"]
HEADLINE = ("metric/", "mi/eval_", "val/")


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
    return sorted(runs)


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


def report(paths: list[Path], out: Path) -> str:
    runs = find_runs(paths)
    if not runs:
        raise FileNotFoundError(f"no finished runs (config.yaml + summary.json) under {', '.join(map(str, paths))}")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(run, out.parent)) + " |" for run in runs]
    text = "# infogan_pl report\n\n" + "\n".join(lines) + "\n"
    out.write_text(text)
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
