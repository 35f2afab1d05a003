"""A sweep's result as one picture: per configuration (experiment, recipe, overrides; seed aside) the headline metric of
every seed, filled where the run succeeded (metric/success), hollow where it failed, a cross at a NaN stop."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def headline(summaries: list[dict]) -> str:
    """The metric a configuration is read by: what its runs' sweepers optimize, else cat_acc, else MIG."""
    for summary in summaries:
        if summary.get("optimized_metric"):
            return summary["optimized_metric"]
    keys = {k for s in summaries for k in s["metrics"]}
    return next((k for k in ("metric/cat_acc", "metric/mig", "metric/fid_lenet") if k in keys), "metric/success")


def seeds_figure(groups: dict[tuple[str, str, tuple[str, ...]], list[dict]], path: Path) -> Path:
    """One row per configuration (report.Configuration: experiment, recipe, overrides), one point per seed (its
    headline metric, named in the row's label)."""
    items = sorted(groups.items())
    fig, ax = plt.subplots(figsize=(10, 1.4 + 0.55 * len(items)))
    for row, ((experiment, recipe, overrides), summaries) in enumerate(items):
        metric = headline(summaries)
        for s in summaries:
            value = s["metrics"].get(metric)
            if s.get("nan_iteration") is not None:
                ax.plot(0, row, "x", color="red", ms=9)
            elif value is not None:
                won = s["metrics"].get("metric/success")
                face = "tab:blue" if won == 1 else "white"
                ax.plot(value, row, "o", ms=8, mfc=face, mec="tab:blue", alpha=0.85)
                ax.annotate(str(s.get("seed")), (value, row), textcoords="offset points", xytext=(0, 7), fontsize=6,
                            ha="center")  # fmt: skip
        label = " ".join(o for o in overrides if not o.startswith("experiment=")) or "(preset)"
        label = textwrap.shorten(f"{experiment}  {label}", 75)
        named = "" if recipe == "—" else f"recipe={recipe}  "  # "—": a run from before summary.json named its recipe
        text = f"{label}\n{named}[{metric.removeprefix('metric/')}]"
        ax.text(-0.01, row, text, transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=7)
    ax.set_yticks([])
    ax.set_ylim(-0.7, len(items) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("headline metric [in brackets]; filled: succeeded, hollow: failed, red x: NaN stop", fontsize=8)
    ax.set_title("Runs over seeds, one point per seed (the seed above each point)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.subplots_adjust(left=0.45)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
