"""Latent traversals in the style of InfoGAN's Fig. 2: a grid of generated images whose rows are a categorical
code's values and whose columns sweep a continuous code, labelled with both and titled with the run and iteration."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

PAD = 2  # pixels between cells


@torch.no_grad()
def traversal_images(
    model, steps: int = 9, span: float = 2.0, seed: int = 0, per_value: bool = False
) -> dict[str, Tensor]:
    """The model's traversals (`model.traversals`) drawn by its generator (G's weight average when there is one):
    {name: images (rows * steps, C, H, W) in [-1, 1]}, row-major, names like `cat0_cont1`, `cat0_samples`,
    `cat0_value07`, `samples` or (a VAE) `z0`."""
    return {
        name: model.generate(inputs).float().cpu()
        for name, inputs in model.traversals(steps, span, seed, per_value).items()
    }


def raw_grid(images: Tensor, steps: int) -> Tensor:
    """The unlabelled grid (3, H, W) in [0, 1], as W&B and TensorBoard show images."""
    return make_grid(images, nrow=steps, padding=PAD, normalize=True, value_range=(-1, 1), pad_value=0.5)


def axes_of(name: str, rows: int, steps: int, span: float) -> tuple[str, list[str], str, list[str], str]:
    """What a traversal's rows and columns are, from its name: (row label, row ticks, column label, column ticks,
    what is held fixed)."""
    sweep = [f"{v:+.1f}" for v in np.linspace(-span, span, steps)]
    draws_r, draws_c = [str(i + 1) for i in range(rows)], [str(i + 1) for i in range(steps)]
    if m := re.fullmatch(r"cat(\d+)_cont(\d+)", name):
        values = [str(k) for k in range(rows)]
        return f"cat{m[1]} value", values, f"cont{m[2]}", sweep, "z and the other codes fixed"
    if m := re.fullmatch(r"cat(\d+)_samples", name):
        held = "each column its own draw of z and the other codes"
        return f"cat{m[1]} value", [str(k) for k in range(rows)], "draw", draws_c, held
    if m := re.fullmatch(r"cat(\d+)_value(\d+)", name):
        return "draw of z", draws_r, "cont0", sweep, f"cat{m[1]} = {int(m[2])}"
    if m := re.fullmatch(r"cont(\d+)", name):
        return "draw", draws_r, f"cont{m[1]}", sweep, "each row its own draw of z and the other codes"
    if m := re.fullmatch(r"z(\d+)", name):
        return "prior draw", draws_r, f"z{m[1]}", sweep, "the other dimensions fixed per row"
    return "draw", draws_r, "draw", draws_c, "random latents"


def traversal_figure(images: Tensor, name: str, steps: int, span: float, title: str, path: Path) -> Path:
    """Save `traversal_plot` to path."""
    fig = traversal_plot(images, name, steps, span, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def traversal_plot(images: Tensor, name: str, steps: int, span: float, title: str) -> plt.Figure:
    """A labelled traversal grid: row and column labels (code values), a title naming the run, iteration and the
    codes swept. images: (rows * steps, C, H, W) in [-1, 1], row-major."""
    rows = len(images) // steps
    grid = raw_grid(images, steps).permute(1, 2, 0).numpy()
    row_label, row_ticks, col_label, col_ticks, fixed = axes_of(name, rows, steps, span)
    cell_h, cell_w = images.shape[2] + PAD, images.shape[3] + PAD
    fig, ax = plt.subplots(figsize=(1.4 + 0.55 * steps, 1.5 + 0.55 * rows))
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([PAD + cell_w * c + (cell_w - PAD) / 2 for c in range(steps)], col_ticks, fontsize=8)
    ax.set_yticks([PAD + cell_h * r + (cell_h - PAD) / 2 for r in range(rows)], row_ticks, fontsize=8)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"{title}\nrows: {row_label}; columns: {col_label} ({fixed})", fontsize=9)
    fig.tight_layout()
    return fig


def save_traversals(
    traversals: dict[str, Tensor], directory: Path, prefix: str, steps: int, span: float, title: str
) -> list[Path]:
    """One labelled figure per traversal: <directory>/<prefix>_<name>.png."""
    return [
        traversal_figure(images, name, steps, span, title, directory / f"{prefix}_{name}.png")
        for name, images in traversals.items()
    ]
