"""How well codes read off real images match the data's factors: accuracy, NMI, MIG, tables, correlations."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from infogan_pl.metrics.accuracy import contingency, hungarian_accuracy, nmi, purity
from infogan_pl.metrics.disentanglement import discretize, mig, mutual_information_matrix


def kinds_of(factor_kinds: list[str] | None, n: int) -> list[str]:
    return list(factor_kinds) if factor_kinds is not None else ["categorical"] * n


def code_tables(
    cat: Tensor, factors: Tensor, factor_names: list[str], sizes: list[int], factor_kinds: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Per categorical code and categorical factor the (K, n values) counts of (code value, factor value)."""
    f_np = factors.numpy()
    kinds = kinds_of(factor_kinds, len(factor_names))
    return {
        f"cat{i}_{fname}": contingency(cat[:, i].numpy(), f_np[:, j].astype(np.int64), k, int(f_np[:, j].max()) + 1)
        for j, fname in enumerate(factor_names)
        if kinds[j] == "categorical"
        for i, k in enumerate(sizes)
    }


def abs_correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(abs(np.corrcoef(a, b)[0, 1]))


def code_metrics(
    cat: Tensor,
    cont: Tensor,
    factors: Tensor,
    factor_names: list[str],
    sizes: list[int],
    with_mig: bool,
    factor_kinds: list[str] | None = None,
):
    """Code accuracy / NMI of every categorical code against every categorical factor; with `with_mig` (factors that
    generated the images) also MIG, the MI matrix, how well continuous codes order categorical factors
    (`cont_acc`) and follow continuous ones (`cont_corr`: the best |Pearson r| of a code's mean with the factor).

    `cat_acc` matches values to factor values one to one (Hungarian); `cat_acc_many` maps each value to the factor
    value it meets most often (many to one), which is what a code with more values than classes (the study's
    Appendix C: does Cat(20) find sub-categories?) can be scored by."""
    metrics: dict[str, float] = {}
    f_np = factors.numpy().astype(np.float64)
    kinds = kinds_of(factor_kinds, len(factor_names))
    categorical = [j for j, kind in enumerate(kinds) if kind == "categorical"]
    best_acc, best_nmi, best_many = [], [], []
    for j in categorical:
        fname, target = factor_names[j], f_np[:, j].astype(np.int64)
        accs, nmis, manys = [], [], []
        for i, k in enumerate(sizes):
            n_target = int(target.max()) + 1
            acc = hungarian_accuracy(cat[:, i].numpy(), target, n_pred=k, n_target=n_target)
            many = purity(cat[:, i].numpy(), target, n_pred=k, n_target=n_target)
            score = nmi(cat[:, i].numpy(), target)
            metrics[f"metric/cat_acc/cat{i}_{fname}"], metrics[f"metric/nmi/cat{i}_{fname}"] = acc, score
            metrics[f"metric/cat_acc_many/cat{i}_{fname}"] = many
            accs.append(acc)
            nmis.append(score)
            manys.append(many)
        if sizes:
            best_acc.append(max(accs))
            best_nmi.append(max(nmis))
            best_many.append(max(manys))
    if sizes and categorical:
        metrics["metric/cat_acc"] = float(np.mean(best_acc))
        metrics["metric/nmi"] = float(np.mean(best_nmi))
        metrics["metric/cat_acc_many"] = float(np.mean(best_many))
    if not with_mig:
        return metrics, None, None
    if not bool(torch.isfinite(cont).all()):  # a diverged Q: no MIG rather than a crash in the binning
        metrics["metric/mig"] = float("nan")
        return metrics, None, None
    if cont.shape[1] and categorical:
        names = [factor_names[j] for j in categorical]
        metrics.update(continuous_factor_accuracy(cont.numpy(), f_np[:, categorical].astype(np.int64), names))
    continuous = [j for j, kind in enumerate(kinds) if kind == "continuous"]
    if cont.shape[1] and continuous:
        c_np = cont.numpy()
        for j in continuous:
            best = max(abs_correlation(c_np[:, i], f_np[:, j]) for i in range(c_np.shape[1]))
            metrics[f"metric/cont_corr/{factor_names[j]}"] = best
        metrics["metric/cont_corr"] = float(
            np.mean([metrics[f"metric/cont_corr/{factor_names[j]}"] for j in continuous])
        )
    discrete_factors = np.stack(
        [
            f_np[:, j].astype(np.int64) if kinds[j] == "categorical" else discretize(f_np[:, [j]])[:, 0]
            for j in range(f_np.shape[1])
        ],
        axis=1,
    )  # continuous factors binned like the codes (20 equal-width bins) for the MI matrix
    discrete = np.concatenate([cat.numpy(), discretize(cont.numpy())], axis=1) if cont.shape[1] else cat.numpy()
    matrix = mutual_information_matrix(discrete, discrete_factors)
    metrics["metric/mig"], gaps = mig(matrix, discrete_factors)
    for j, fname in enumerate(factor_names):
        metrics[f"metric/mig/{fname}"] = float(gaps[j])
    labels = [f"cat{i}" for i in range(len(sizes))] + [f"cont{j}" for j in range(cont.shape[1])]
    return metrics, matrix, labels


def continuous_factor_accuracy(cont: np.ndarray, factors: np.ndarray, factor_names: list[str]) -> dict[str, float]:
    """How well one continuous code orders a discrete factor: per factor with K values, each code dimension is cut
    into K equal-count bins and Hungarian-matched to the factor; the best dimension's accuracy is reported
    (`metric/cont_acc/<factor>`, mean `metric/cont_acc`). A code whose value sorts the bar positions scores 1."""
    out = {}
    for j, name in enumerate(factor_names):
        k = int(factors[:, j].max()) + 1
        best = 0.0
        for i in range(cont.shape[1]):
            edges = np.quantile(cont[:, i], np.linspace(0, 1, k + 1)[1:-1])
            bins = np.searchsorted(edges, cont[:, i], side="right")
            best = max(best, hungarian_accuracy(bins, factors[:, j], n_pred=k, n_target=k))
        out[f"metric/cont_acc/{name}"] = best
    out["metric/cont_acc"] = float(np.mean([out[f"metric/cont_acc/{n}"] for n in factor_names]))
    return out


ACTIVE_KL = 0.1  # nats: a code dimension whose mean KL to the prior is below this carries (almost) nothing


@torch.no_grad()
def posterior_metrics(model, images: Tensor) -> dict[str, float]:
    """A VAE's posterior on held-out real images (N, C, H, W): `metric/active_dims`, the dimensions whose KL(q(z_j|x)
    ‖ N(0, 1)), averaged over the images, exceeds 0.1 nats (a collapsed posterior has none), and `metric/recon`,
    -log p(x | z = μ(x)) in nats per image (the decoder fed the posterior mean)."""
    kls, recons = [], []
    for chunk in images.split(1000):
        chunk = chunk.to(model.device)
        q = model.encode(chunk)
        kls.append(model.kl_per_dim(q) * len(chunk))
        recons.append(model.reconstruction(model.decode_logits(q.mean), chunk) * len(chunk))
    kl = torch.stack(kls).sum(0) / len(images)
    return {
        "metric/active_dims": float((kl > ACTIVE_KL).sum()),
        "metric/recon": float(torch.stack(recons).sum() / len(images)),
    }
