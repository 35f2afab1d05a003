"""`python -m infogan_pl.semi_supervised ckpt_path=<ckpt> [labels_per_class=[1,5,10,100] ...]`: the study's
Appendix D, InfoGAN as data augmentation for a classifier with few labels.

For each N labelled real images per class: map every value of the checkpoint's categorical code to a digit using
those N x 10 labelled images only (Q's soft assignments of them, with batch-norm statistics re-estimated on real
training images as in the evaluation, matched one to one when the code has 10 values, else each value to its most
likely digit); generate `generated_per_value` images per value with z and the other
codes drawn at random; train the project's LeNet-5 on the labelled images alone and on them plus the generated set
(same seeds, same number of steps); test on the 10,000 real test images. Prints and writes the table (mean and
range over classifier seeds), `results.json` and a figure of accuracy against N, in <checkpoint dir>/semi_supervised/.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from infogan_pl.atomic import atomic_write
from infogan_pl.build import ConfigError
from infogan_pl.cli import exit_on_command_line_error
from infogan_pl.config import CONFIG_DIR
from infogan_pl.evaluate import load_checkpoint
from infogan_pl.latent import Codes
from infogan_pl.metrics.evaluation import encoder_modules, recalibrated_batch_norm
from infogan_pl.metrics.lenet import LeNet5, accuracy, mnist_tensors

log = logging.getLogger(__name__)


def labelled_subset(labels: Tensor, per_class: int, seed: int) -> tuple[Tensor, int]:
    """Indices of `per_class` images of each class, found the way a person labels on demand: images are visited in
    a random order drawn from `seed` alone, and one is kept while its class still needs images. Returns the indices
    and how many images were visited; the labels of the others are never read."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    need, chosen = [per_class] * 10, []
    for visited, i in enumerate(order.tolist(), start=1):
        digit = int(labels[i])
        if need[digit]:
            need[digit] -= 1
            chosen.append(i)
            if not any(need):
                return torch.tensor(chosen), visited
    raise ValueError(f"labels_per_class={per_class}: the training set has fewer images of some digit.")


@torch.no_grad()
def map_values_to_classes(model, images: Tensor, labels: Tensor, code: int = 0) -> Tensor:
    """Digit (K,) of each value of categorical code `code`, from labelled images (N, 1, 28, 28) and their labels
    only: the (K, 10) matrix of Q's probabilities summed per labelled digit, matched one to one (Hungarian) when
    K = 10, each value to its most likely digit otherwise (every value gets a digit, even with one label a class)."""
    model.eval()
    probs = torch.cat([model.encode(chunk).logits[code].softmax(1).cpu() for chunk in images.split(500)])
    k = probs.shape[1]
    soft = torch.zeros(k, 10)
    soft.index_add_(1, labels.cpu(), probs.t())  # soft[v, d] = sum over images of digit d of Q(v | image)
    soft = soft / soft.sum(dim=0, keepdim=True).clamp_min(1e-12)  # each digit's images share one unit
    if k == 10:
        rows, cols = linear_sum_assignment(soft.numpy(), maximize=True)
        mapping = torch.empty(10, dtype=torch.long)
        mapping[torch.as_tensor(rows)] = torch.as_tensor(cols)
        return mapping
    return soft.argmax(dim=1)


@torch.no_grad()
def generate_set(model, mapping: Tensor, per_value: int, seed: int, code: int = 0) -> tuple[Tensor, Tensor]:
    """`per_value` images for every value of code `code` (z and the other codes random, drawn from `seed`) and the
    digit the mapping gives each: (K * per_value, 1, 28, 28) in [-1, 1] and (K * per_value,)."""
    model.eval()
    latent = model.latent
    k = latent.categorical[code]
    g_input, codes = latent.sample(k * per_value, generator=torch.Generator().manual_seed(seed))
    values = torch.arange(k).repeat_interleave(per_value)
    codes.categorical[:, code] = values
    inputs = latent.assemble(g_input[:, : latent.z_dim], Codes(codes.categorical, codes.continuous))
    images = torch.cat([model.generate(chunk).float().cpu() for chunk in inputs.split(1000)])
    return images, mapping[values]


def train_classifier(images: Tensor, labels: Tensor, steps: int, seed: int, device: str = "cpu") -> LeNet5:
    """LeNet-5 trained for a fixed number of Adam steps on batches of 128 drawn with replacement (so every arm of
    the comparison gets the same budget, whatever its data set size)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LeNet5().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = images.to(device), labels.to(device)
    model.train()
    with torch.enable_grad():
        for _ in range(steps):
            idx = torch.randint(len(images), (min(128, len(images)),), generator=gen)
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def check_settings(cfg: DictConfig) -> None:
    """One line for a value the method cannot use, before the checkpoint is read."""
    counts = list(cfg.labels_per_class)
    if not counts or any(not isinstance(n, int) or n < 1 or n > 5000 for n in counts):
        raise ConfigError(f"labels_per_class must be a list of whole numbers in 1..5000, got {counts}.")
    for key in ("steps", "generated_per_value"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ConfigError(f"{key} must be a whole number >= 1, got {cfg[key]!r}.")
    seeds = list(cfg.classifier_seeds)
    if not seeds or any(not isinstance(s, int) for s in seeds):
        raise ConfigError(f"classifier_seeds must be a non-empty list of integers, got {seeds}.")


def run(cfg: DictConfig) -> dict:
    """The whole table: {N: {arm: [accuracy per classifier seed]}} plus the mapping's accuracy per N."""
    check_settings(cfg)
    overrides = OmegaConf.create({"paths": {"data_dir": cfg.data_dir}}) if cfg.get("data_dir") else None
    trained, _, model, _ = load_checkpoint(cfg.ckpt_path, overrides, cfg.device)
    if not model.latent.categorical or not hasattr(model, "encode") or "MNIST" not in trained.data._target_:
        raise ConfigError("semi_supervised needs an InfoGAN checkpoint trained on MNIST (a categorical code to map).")
    (train_x, train_y), (test_x, test_y) = mnist_tensors(trained.paths.data_dir)
    results: dict = {"ckpt_path": str(cfg.ckpt_path), "rows": {}}
    for n in cfg.labels_per_class:
        idx, _ = labelled_subset(train_y, n, cfg.seed)
        images, labels = train_x[idx], train_y[idx]
        # Q measured as the evaluation measures it: batch-norm statistics re-estimated on real training images
        with recalibrated_batch_norm(encoder_modules(model), train_x[:4096].to(model.device), model.encode):
            mapping = map_values_to_classes(model, images.to(model.device), labels)
        gen_x, gen_y = generate_set(model, mapping, cfg.generated_per_value, cfg.seed)
        row = {"labelled only": [], "+ generated": [], "mapping": mapping.tolist()}
        for s in cfg.classifier_seeds:
            for arm, (x, y) in {
                "labelled only": (images, labels),
                "+ generated": (torch.cat([images, gen_x]), torch.cat([labels, gen_y])),
            }.items():
                clf = train_classifier(x, y, cfg.steps, s, cfg.device)
                row[arm].append(accuracy(clf.to(cfg.device), test_x.to(cfg.device), test_y.to(cfg.device)))
        results["rows"][n] = row
        log.info("N=%d: labelled only %s, + generated %s", n, row["labelled only"], row["+ generated"])
    return results


def table(results: dict) -> str:
    lines = ["| labels per class | labelled only: mean (range) | + generated: mean (range) |", "|---|---|---|"]
    for n, row in results["rows"].items():
        cells = [
            f"{np.mean(row[a]):.3f} ({min(row[a]):.3f}–{max(row[a]):.3f})" for a in ("labelled only", "+ generated")
        ]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [int(n) for n in results["rows"]]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arm in ("labelled only", "+ generated"):
        means = [np.mean(results["rows"][n][arm]) for n in results["rows"]]
        ax.plot(ns, means, marker="o", label=arm)
    ax.set_xscale("log")
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy (10k real images)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="semi_supervised")
def main(cfg: DictConfig) -> None:
    out = Path(cfg.ckpt_path).parent / "semi_supervised"
    try:
        results = run(cfg)
    except (FileNotFoundError, ValueError, ConfigError, RuntimeError) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.json", json.dumps(results, indent=2))
    text = table(results)
    atomic_write(out / "table.md", text + "\n")
    figure(results, out / "accuracy_vs_labels.png")
    print(text)
    print(f"Wrote {out / 'results.json'}, table.md and accuracy_vs_labels.png in {out}")


if __name__ == "__main__":
    exit_on_command_line_error("semi_supervised")  # what Hydra itself would refuse: one line, exit 2
    main()
