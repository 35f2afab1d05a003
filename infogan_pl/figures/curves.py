"""A run's story from its metrics.csv: the losses, L_I per code against its ceiling, D's outputs on real and generated
images (the study's Figs. 4 and 6) and the evaluation metrics, over iterations; a NaN stop marked.

Drawn by the Evaluation callback at every evaluation and by the entry point at the end (`figures/curves.png`,
`figures/mi_curve.png`); `python -m infogan_pl.figures <run dir>` redraws them for any run, finished, killed or
resumed.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from infogan_pl.losses import FIXED_SIGMA_CEILING  # noqa: E402

EVALUATED = ("metric/cat_acc", "metric/mig", "metric/valid_rate", "metric/gen_acc", "metric/cont_corr")
EVALUATED += ("metric/success", "metric/cat_acc_many")


def read_metrics(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """metrics.csv as {column: (iterations, values)}, each column's non-empty rows only."""
    series: dict[str, list[tuple[float, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            it = row.get("iteration")
            if not it:
                continue
            for key, value in row.items():
                if key not in ("iteration", "epoch", "step") and value not in (None, ""):
                    series.setdefault(key, []).append((float(it), float(value)))
    return {k: (np.array([p[0] for p in v]), np.array([p[1] for p in v])) for k, v in series.items()}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average (edges averaged over what exists); the raw series is drawn faintly beside it."""
    if window <= 1 or len(values) < 3:
        return values
    kernel = np.ones(window)
    return np.convolve(values, kernel, "same") / np.convolve(np.ones_like(values), kernel, "same")


def code_ceilings(config) -> dict[str, float]:
    """The most each code's L_I term can reach: ln K for Cat(K); ln 2 - ½ ln 2π for a U(-1, 1) code with σ fixed
    at 1 (learned σ has no finite ceiling: left out)."""
    latent = config.get("latent") or {}
    ceilings = {f"cat{i}": math.log(k) for i, k in enumerate(latent.get("categorical") or [])}
    if not (config.get("model") or {}).get("learn_sigma", True):
        ceilings.update({f"cont{j}": FIXED_SIGMA_CEILING for j in range(latent.get("continuous") or 0)})
    return ceilings


def _line(ax, data, key: str, window: int, label: str | None = None, **style):
    x, y = data[key]
    (line,) = ax.plot(x, smooth(y, window), label=label or key, lw=1.4, **style)
    if window > 1:
        ax.plot(x, y, color=line.get_color(), lw=0.6, alpha=0.25)
    return line


def mi_panel(ax, data, ceilings: dict[str, float], window: int) -> None:
    """L_I per code on the training batches (smoothed), at each evaluation (markers), and each code's ceiling."""
    codes = sorted(k.removeprefix("mi/") for k in data if k.startswith("mi/") and "_" not in k and "eval" not in k)
    codes = [c for c in codes if c not in ("total", "real", "consistency")]
    for code in codes:
        line = _line(ax, data, f"mi/{code}", window, label=f"{code} (train)")
        if f"mi/eval_{code}" in data:
            ax.plot(*data[f"mi/eval_{code}"], "o", ms=4, color=line.get_color(), label=f"{code} (eval)")
        if code in ceilings:
            ax.axhline(ceilings[code], color=line.get_color(), ls="--", lw=0.8)
    ax.set_title("L_I per code, nats (dashed: its ceiling, ln K for Cat(K))", fontsize=9)
    ax.set_ylabel("nats")


def _panel_losses(ax, data, window):
    for key in sorted(k for k in data if k.startswith("loss/")):
        _line(ax, data, key, window)
    ax.set_title("Losses (smoothed; faint: as logged)", fontsize=9)


def _panel_discriminator(ax, data, window):
    if "d/real" in data:
        _line(ax, data, "d/real", window, label="D(x), real")
        _line(ax, data, "d/fake", window, label="D(G(z)), generated")
        ax.set_ylabel("mean D output")
        if "d/fake_over_real" in data:
            twin = ax.twinx()
            _line(twin, data, "d/fake_over_real", window, color="tab:red", ls=":")
            ax.plot([], [], color="tab:red", ls=":", label="D(G(z)) / D(x), right axis")  # in the legend
            twin.set_ylabel("ratio", color="tab:red")
            twin.set_ylim(bottom=0)
        ax.set_title("Discriminator on real and generated images (the study's Figs. 4, 6)", fontsize=9)
    else:  # a VAE: KL per code dimension
        for key in sorted(k for k in data if k.startswith("kl/")):
            _line(ax, data, key, window)
        ax.set_title("KL per code dimension, nats", fontsize=9)


def _panel_evaluation(ax, data):
    # equal values (every metric at 1.0 on a run that learned) would hide each other: each series its own marker,
    # hollow and one size smaller than the one drawn before it, so all of them stay visible where they coincide
    keys = [k for k in EVALUATED if k in data]
    for i, key in enumerate(keys):
        marker, size = "osD^vpX*"[i % 8], 4 + 1.5 * (len(keys) - 1 - i)
        ax.plot(
            *data[key], ls="-", lw=1, marker=marker, ms=size, mfc="none", mew=1.2, label=key.removeprefix("metric/")
        )
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Evaluation (held-out real images; generated images)", fontsize=9)
    if "metric/fid_lenet" in data:
        twin = ax.twinx()
        twin.plot(*data["metric/fid_lenet"], "s--", ms=4, color="k")
        twin.set_ylabel("FID-LeNet")
        ax.plot([], [], "s--", ms=4, color="k", label="FID-LeNet, right axis")


def draw_curves(run_dir: str | Path) -> list[Path]:
    """figures/curves.png (four panels) and figures/mi_curve.png (L_I alone) of a run directory, from its
    csv/metrics.csv, config.yaml and (when written) summary.json. Returns the paths written ([] without data)."""
    run_dir = Path(run_dir)
    figures = curves_plots(run_dir)
    if figures is None:
        return []
    out = run_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in zip(("curves.png", "mi_curve.png"), figures, strict=True):
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)
    return paths


def curves_plots(run_dir: Path) -> tuple[plt.Figure, plt.Figure] | None:
    """The two figures of `draw_curves`, unsaved; None when the run has no metrics yet."""
    csv_path = run_dir / "csv" / "metrics.csv"
    if not csv_path.is_file():
        return None
    data = read_metrics(csv_path)
    if not data:
        return None
    config = (
        OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml")) if (run_dir / "config.yaml").is_file() else {}
    )
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    nan_at = summary.get("nan_iteration")
    last = int(max(x.max() for x, _ in data.values()))
    train_points = max((len(x) for k, (x, _) in data.items() if k.startswith("loss/")), default=1)
    window = max(1, train_points // 30)
    title = f"{config.get('name', run_dir.name)}, seed {config.get('seed', '?')}: iterations 0–{last} ({run_dir})"
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    _panel_losses(axes[0, 0], data, window)
    mi_panel(axes[0, 1], data, code_ceilings(config), window)
    _panel_discriminator(axes[1, 0], data, window)
    _panel_evaluation(axes[1, 1], data)
    for ax in axes.flat:
        if nan_at is not None:
            ax.axvline(nan_at, color="red", lw=1.2, ls="--", label=f"non-finite loss at {nan_at}")
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("iteration")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    mi_fig, ax = plt.subplots(figsize=(7, 4))
    mi_panel(ax, data, code_ceilings(config), window)
    ax.set_xlabel("iteration")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    mi_fig.suptitle(title, fontsize=8)
    mi_fig.tight_layout()
    return fig, mi_fig
