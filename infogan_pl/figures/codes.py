"""What the codes mean on real data: the code x factor MI heatmap and table, and code value x factor value counts."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def mi_heatmap(matrix: np.ndarray, codes: list[str], factors: list[str], path: Path) -> Path:
    """Code x factor mutual information (nats) as an annotated heatmap."""
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 + 1.1 * len(factors)), 1.2 + 0.5 * len(codes)))  # room for the title
    im = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(len(factors)), factors)
    ax.set_yticks(range(len(codes)), codes)
    for (r, c), v in np.ndenumerate(matrix):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="w" if v < matrix.max() / 2 else "k", fontsize=8)
    fig.colorbar(im, ax=ax, label="MI (nats)")
    ax.set_title("I(code; factor) on real data")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_mi_table(matrix: np.ndarray, codes: list[str], factors: list[str], path: Path) -> Path:
    """The code x factor (or attribute) MI matrix in nats as CSV: one row per code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(["code", *factors])] + [
        ",".join([c, *(f"{v:.5f}" for v in row)]) for c, row in zip(codes, matrix, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def code_table(counts: np.ndarray, name: str, path: Path) -> Path:
    """A categorical code's values (rows) against a factor's values (columns) on real images: counts, each row
    shaded by its share, the factor value each row meets most often marked (the many-to-one map)."""
    rows, cols = counts.shape
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.7 * cols), 1.2 + 0.4 * rows))
    ax.imshow(share, cmap="Blues", aspect="auto", vmin=0, vmax=1)
    for r in range(rows):
        for c in range(cols):
            if counts[r, c]:
                top = c == counts[r].argmax()  # the many-to-one map: boxed and bold
                box = {"boxstyle": "round,pad=0.15", "fc": "none", "ec": "orange", "lw": 1.2} if top else None
                colour = "w" if share[r, c] > 0.5 else "k"  # readable on dark and light cells
                weight = "bold" if top else "normal"
                ax.text(c, r, str(int(counts[r, c])), ha="center", va="center", fontsize=7, fontweight=weight,
                        color=colour, bbox=box)  # fmt: skip
    code, _, factor = name.partition("_")
    ax.set_xticks(range(cols), [str(c) for c in range(cols)])
    ax.set_yticks(range(rows), [str(r) for r in range(rows)])
    ax.set_xlabel(factor)
    ax.set_ylabel(f"{code} value")
    boxed = "(boxed: each row's most frequent, the many-to-one map)"
    ax.set_title(f"{code} x {factor} on real images\n{boxed}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
