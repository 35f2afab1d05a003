"""Everything that says whether a code means something, for one model on one data set, as a flat dict of numbers.

Used each validation (cheap budgets, by the Evaluation callback) and by `python -m infogan_pl.evaluate` (full).
Metrics that do not apply to the data are absent, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from infogan_pl.data.sampling import take
from infogan_pl.latent import Codes
from infogan_pl.losses import mutual_information_lower_bound
from infogan_pl.metrics.accuracy import hungarian_accuracy, nmi, purity
from infogan_pl.metrics.disentanglement import discretize, mig, mutual_information_matrix
from infogan_pl.metrics.lenet import fid


@dataclass
class Budget:
    """How many samples each metric uses (the validation defaults are cheap; `evaluate` raises them)."""

    real: int = 10_000  # held-out real images for Q's code accuracy, NMI and MIG
    generated_per_value: int = 100  # generated images per categorical value for gen purity / accuracy
    fid: int = 2_000  # real and generated images for FID (MNIST)
    mi: int = 4_096  # generated images for L_I per code
    seed: int = 1234  # fixes the generated sets so successive evaluations are comparable


@dataclass
class Evaluation:
    metrics: dict[str, float]
    mi_matrix: np.ndarray | None = None  # (codes, factors) MI in nats on real data
    code_labels: list[str] | None = None
    factor_labels: list[str] | None = None


def _batched(fn, x: Tensor, batch: int = 1000) -> list:
    return [fn(x[i : i + batch]) for i in range(0, len(x), batch)]


@torch.no_grad()
def q_outputs(model, images: Tensor) -> tuple[Tensor, Tensor]:
    """Q's categorical argmax (N, n_cat) and continuous means (N, n_cont) on images, in batches."""
    device = model.device
    cats, means = [], []
    for chunk in images.split(1000):
        q = model.q_head(model.discriminator.features(chunk.to(device)))
        cats.append(torch.stack([lg.argmax(1) for lg in q.logits], 1) if q.logits else torch.zeros(len(chunk), 0))
        means.append(q.mean)
    return torch.cat(cats).long().cpu(), torch.cat(means).float().cpu()


def code_metrics(cat: Tensor, cont: Tensor, factors: Tensor, factor_names: list[str], sizes: list[int], with_mig: bool):
    """Code accuracy / NMI of every categorical code against every factor; MIG and the MI matrix if asked."""
    metrics: dict[str, float] = {}
    f_np = factors.numpy()
    best_acc, best_nmi = [], []
    for j, fname in enumerate(factor_names):
        accs, nmis = [], []
        for i, k in enumerate(sizes):
            acc = hungarian_accuracy(cat[:, i].numpy(), f_np[:, j], n_pred=k, n_target=int(f_np[:, j].max()) + 1)
            score = nmi(cat[:, i].numpy(), f_np[:, j])
            metrics[f"metric/cat_acc/cat{i}_{fname}"], metrics[f"metric/nmi/cat{i}_{fname}"] = acc, score
            accs.append(acc)
            nmis.append(score)
        if sizes:
            best_acc.append(max(accs))
            best_nmi.append(max(nmis))
    if sizes:
        metrics["metric/cat_acc"] = float(np.mean(best_acc))
        metrics["metric/nmi"] = float(np.mean(best_nmi))
    if not with_mig:
        return metrics, None, None
    discrete = np.concatenate([cat.numpy(), discretize(cont.numpy())], axis=1) if cont.shape[1] else cat.numpy()
    matrix = mutual_information_matrix(discrete, f_np)
    metrics["metric/mig"], gaps = mig(matrix, f_np)
    for j, fname in enumerate(factor_names):
        metrics[f"metric/mig/{fname}"] = float(gaps[j])
    labels = [f"cat{i}" for i in range(len(sizes))] + [f"cont{j}" for j in range(cont.shape[1])]
    return metrics, matrix, labels


def _fixed_latents(latent, n: int, seed: int, device) -> tuple[Tensor, Codes]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g_input, codes = latent.sample(n)
    return g_input.to(device), Codes(codes.categorical.to(device), codes.continuous.to(device))


@torch.no_grad()
def generated_metrics(model, datamodule, budget: Budget) -> dict[str, float]:
    """Code-controlled generation labelled by the data's own labeller: purity / accuracy per code, valid rate."""
    latent, metrics = model.latent, {}
    factor_names = datamodule.factor_names
    all_valid = []
    best_purity, best_acc = {f: [] for f in factor_names}, {f: [] for f in factor_names}
    for i, k in enumerate(latent.categorical):
        g_input, codes = _fixed_latents(latent, k * budget.generated_per_value, budget.seed + i, model.device)
        values = torch.arange(k, device=model.device).repeat_interleave(budget.generated_per_value)
        codes.categorical[:, i] = values
        images = torch.cat(_batched(model.generate, latent.assemble(g_input[:, : latent.z_dim], codes)))
        labels, valid = datamodule.label_images(images)
        all_valid.append(valid.cpu())
        v, lab, ok = values.cpu().numpy(), labels.cpu().numpy(), valid.cpu().numpy()
        if ok.sum() == 0:
            continue
        for j, fname in enumerate(factor_names):
            n_target = int(lab[:, j].max()) + 1
            p = purity(v[ok], lab[ok, j], n_pred=k, n_target=n_target)
            a = hungarian_accuracy(v[ok], lab[ok, j], n_pred=k, n_target=n_target)
            metrics[f"metric/gen_purity/cat{i}_{fname}"], metrics[f"metric/gen_acc/cat{i}_{fname}"] = p, a
            best_purity[fname].append(p)
            best_acc[fname].append(a)
    if all_valid and getattr(datamodule, "labels_can_be_invalid", False):
        metrics["metric/valid_rate"] = float(torch.cat(all_valid).float().mean())
    if any(best_purity.values()):
        metrics["metric/gen_purity"] = float(np.mean([max(v) for v in best_purity.values() if v]))
        metrics["metric/gen_acc"] = float(np.mean([max(v) for v in best_acc.values() if v]))
    return metrics


@torch.no_grad()
def eval_mutual_information(model, budget: Budget) -> dict[str, float]:
    """L_I per code (nats) on a fixed generated set larger than a training batch, G and Q in eval mode."""
    g_input, codes = _fixed_latents(model.latent, budget.mi, budget.seed, model.device)
    terms: dict[str, list[float]] = {}
    for lo in range(0, budget.mi, 1024):
        sl = slice(lo, lo + 1024)
        q = model.q_head(model.discriminator.features(model.generate(g_input[sl])))
        for name, value in mutual_information_lower_bound(
            q, Codes(codes.categorical[sl], codes.continuous[sl])
        ).items():
            terms.setdefault(name, []).append(float(value) * len(g_input[sl]))
    return {f"mi/eval_{name}": sum(v) / budget.mi for name, v in terms.items()}


@torch.no_grad()
def evaluate_model(model, datamodule, budget: Budget | None = None) -> Evaluation:
    """All metrics that apply to this model and data. The model is put in eval mode and restored afterwards."""
    budget = budget or Budget()
    was_training = model.training
    model.eval()
    try:
        metrics: dict[str, float] = {}
        matrix = labels = None
        has_q = hasattr(model, "q_head")
        if has_q:
            images, factors = take(datamodule.val_set, budget.real)
            cat, cont = q_outputs(model, images)
            if getattr(datamodule, "factors_are_attributes", False):  # CelebA: code x attribute MI table only
                if model.latent.categorical and factors.shape[1]:
                    matrix = mutual_information_matrix(cat.numpy(), factors.numpy())
                    labels = [f"cat{i}" for i in range(cat.shape[1])]
            else:
                m, matrix, labels = code_metrics(
                    cat,
                    cont,
                    factors,
                    datamodule.factor_names,
                    model.latent.categorical,
                    datamodule.factors_are_generative,
                )
                metrics.update(m)
            metrics.update(eval_mutual_information(model, budget))
            if model.latent.categorical and hasattr(datamodule, "label_images"):
                metrics.update(generated_metrics(model, datamodule, budget))
        features = datamodule.fid_features() if hasattr(datamodule, "fid_features") else None
        if features is not None:
            real, _ = take(datamodule.val_set, budget.fid)
            g_input, _ = _fixed_latents(model.latent, len(real), budget.seed, model.device)
            fake = torch.cat(_batched(model.generate, g_input)).cpu()
            metrics["metric/fid_lenet"] = fid(features, real, fake)
        return Evaluation(metrics, matrix, labels, list(datamodule.factor_names))
    finally:
        model.train(was_training)
