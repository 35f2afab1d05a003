"""Whether a run learned its task: one criterion per data set, read off the evaluation's own metrics.

A run that exits 0 with a collapsed generator has failed; `metric/success` (1 or 0) says so. The evaluation logs it
beside the metrics it reads, summary.json keeps it, and `report` counts it over seeds (n/N). Where the metrics a
criterion needs are absent (no labeller, a code-less GAN, CelebA), there is no criterion and no `metric/success`.

| task | success |
|---|---|
| BasicProp line | valid_rate ≥ 0.95, gen_distinct = 10, cat_acc ≥ 0.99 |
| BasicProp rectangles | valid_rate ≥ 0.95 and one height per categorical code (up to both) with cat_acc ≥ 0.9 |
| BasicProp++ | valid_rate ≥ 0.9 and, where there is a categorical factor, cat_acc ≥ 0.95 |
| MNIST | cat_acc ≥ 0.95 (the InfoGAN paper's 5% error) |
| any VAE | ≥ 4 active dimensions (a collapsed posterior has none; `metric/recon` is reported beside it) |
"""

from __future__ import annotations

import itertools

MIN_ACTIVE_DIMS = 4
PP_TASKS = ("translation", "diameter_ratio", "colour", "alternating_shapes")


def _line(m: dict[str, float], n_cat: int) -> bool | None:
    needed = ("metric/valid_rate", "metric/gen_distinct", "metric/cat_acc")
    if not all(k in m for k in needed):
        return None
    return m["metric/valid_rate"] >= 0.95 and m["metric/gen_distinct"] >= 10 and m["metric/cat_acc"] >= 0.99


def heights_found(m: dict[str, float], n_cat: int, threshold: float = 0.9) -> int:
    """How many of the two rectangle heights distinct categorical codes read off real images with accuracy ≥
    threshold (each code counts for one height at most)."""
    heights = ("left_height", "right_height")
    best = 0
    for codes in itertools.permutations(range(n_cat), min(n_cat, 2)):
        for order in itertools.permutations(heights, len(codes)):
            found = sum(
                m.get(f"metric/cat_acc/cat{i}_{h}", 0.0) >= threshold for i, h in zip(codes, order, strict=True)
            )
            best = max(best, found)
    return best


def _rectangles(m: dict[str, float], n_cat: int) -> bool | None:
    if "metric/valid_rate" not in m or not n_cat:
        return None
    return m["metric/valid_rate"] >= 0.95 and heights_found(m, n_cat) >= min(n_cat, 2)


def _basicprop_pp(m: dict[str, float], n_cat: int) -> bool | None:
    if "metric/valid_rate" not in m:
        return None
    return m["metric/valid_rate"] >= 0.9 and ("metric/cat_acc" not in m or m["metric/cat_acc"] >= 0.95)


def _mnist(m: dict[str, float], n_cat: int) -> bool | None:
    return m["metric/cat_acc"] >= 0.95 if "metric/cat_acc" in m else None


CRITERIA = {"line": _line, "rectangles": _rectangles, "mnist": _mnist, **dict.fromkeys(PP_TASKS, _basicprop_pp)}


def _vae(m: dict[str, float]) -> bool:
    return m["metric/active_dims"] >= MIN_ACTIVE_DIMS


def success(metrics: dict[str, float], task: str | None, n_categorical: int) -> float | None:
    """1.0 when the run learned `task` (a DataModule's `task`: line, rectangles, a BasicProp++ variant, mnist), 0.0
    when it did not, None where no criterion applies. A VAE (its evaluation measures `metric/active_dims`) is judged
    by its posterior; a GAN by what it generates and what Q reads (see the module's table)."""
    if "metric/active_dims" in metrics:
        return float(_vae(metrics))
    criterion = CRITERIA.get(task)
    verdict = criterion(metrics, n_categorical) if criterion is not None else None
    return None if verdict is None else float(verdict)
