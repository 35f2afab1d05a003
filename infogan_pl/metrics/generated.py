"""What the codes do to generated images: code-controlled generation labelled by a labeller, and the information
terms on a fixed generated set."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from infogan_pl.latent import Codes
from infogan_pl.metrics.accuracy import contingency
from infogan_pl.metrics.codes import abs_correlation, kinds_of


def batched(fn, x: Tensor, batch: int = 1000) -> list:
    return [fn(x[i : i + batch]) for i in range(0, len(x), batch)]


def fixed_latents(latent, n: int, seed: int, device) -> tuple[Tensor, Codes]:
    gen = torch.Generator().manual_seed(seed)
    g_input, codes = latent.sample(n, generator=gen)
    return g_input.to(device), Codes(codes.categorical.to(device), codes.continuous.to(device))


def generated_scores(values: np.ndarray, labels: np.ndarray, valid: np.ndarray, k: int, n_labels: int):
    """(purity, Hungarian accuracy, distinct labels) of code values (N,) against decoded labels (N,); an invalid
    image counts as an error in both, so a generator that draws one valid class scores 0.1, not 1.0."""
    counts = contingency(values[valid], labels[valid], k, n_labels) if valid.any() else np.zeros((k, n_labels))
    purity = float(counts.max(axis=1).sum() / len(values))
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(counts, maximize=True)
    accuracy = float(counts[rows, cols].sum() / len(values))
    return purity, accuracy, int((counts.sum(axis=0) > 0).sum())


@torch.no_grad()
def generated_metrics(
    model, labeller, factor_names: list[str], per_value: int, seed: int, factor_kinds: list[str] | None = None
) -> dict[str, float]:
    """Code-controlled generation labelled by the labeller: per categorical code and categorical factor purity /
    accuracy / distinct labels (invalid images count as errors); per continuous factor the best |Pearson r| between
    a continuous code's value and the factor read off the valid images (`gen_cont_corr`); the valid rate."""
    latent, metrics = model.latent, {}
    kinds = kinds_of(factor_kinds, len(factor_names))
    categorical = [j for j, kind in enumerate(kinds) if kind == "categorical"]
    continuous = [j for j, kind in enumerate(kinds) if kind == "continuous"]
    all_valid = []
    best: dict[str, dict[str, list[float]]] = {
        name: {factor_names[j]: [] for j in categorical} for name in ("purity", "acc")
    }
    distinct: dict[str, list[int]] = {factor_names[j]: [] for j in categorical}
    for i, k in enumerate(latent.categorical):
        g_input, codes = fixed_latents(latent, k * per_value, seed + i, model.device)
        values = torch.arange(k, device=model.device).repeat_interleave(per_value)
        codes.categorical[:, i] = values
        images = torch.cat(batched(model.generate, latent.assemble(g_input[:, : latent.z_dim], codes)))
        labels, valid = labeller.label(images)
        all_valid.append(valid.cpu())
        v, lab, ok = values.cpu().numpy(), labels.cpu().numpy(), valid.cpu().numpy()
        for j in categorical:
            fname, target = factor_names[j], lab[:, j].astype(np.int64)
            n_labels = max(int(target.max()) + 1, k)
            p, a, d = generated_scores(v, target, ok, k, n_labels)
            metrics[f"metric/gen_purity/cat{i}_{fname}"], metrics[f"metric/gen_acc/cat{i}_{fname}"] = p, a
            metrics[f"metric/gen_distinct/cat{i}_{fname}"] = float(d)
            best["purity"][fname].append(p)
            best["acc"][fname].append(a)
            distinct[fname].append(d)
    if latent.continuous and continuous:
        n = 10 * per_value
        g_input, codes = fixed_latents(latent, n, seed + 99, model.device)
        labels, valid = labeller.label(torch.cat(batched(model.generate, g_input)))
        all_valid.append(valid.cpu())
        ok = valid.cpu().numpy()
        c_np, lab = codes.continuous.cpu().numpy(), labels.cpu().numpy().astype(np.float64)
        for j in continuous:
            corr = max(abs_correlation(c_np[ok, c], lab[ok, j]) for c in range(c_np.shape[1])) if ok.sum() > 2 else 0.0
            metrics[f"metric/gen_cont_corr/{factor_names[j]}"] = corr
        metrics["metric/gen_cont_corr"] = float(
            np.mean([metrics[f"metric/gen_cont_corr/{factor_names[j]}"] for j in continuous])
        )
    if all_valid and labeller.can_be_invalid:
        metrics["metric/valid_rate"] = float(torch.cat(all_valid).float().mean())
    if latent.categorical and categorical:
        names = [factor_names[j] for j in categorical]
        best_i = {f: int(np.argmax(best["acc"][f])) for f in names}
        metrics["metric/gen_purity"] = float(np.mean([best["purity"][f][best_i[f]] for f in names]))
        metrics["metric/gen_acc"] = float(np.mean([best["acc"][f][best_i[f]] for f in names]))
        metrics["metric/gen_distinct"] = float(np.mean([distinct[f][best_i[f]] for f in names]))
    return metrics


@torch.no_grad()
def eval_mutual_information(model, n: int, seed: int) -> dict[str, float]:
    """The model's information terms (`model.eval_information`: InfoGAN's L_I per code with each continuous code's
    MSE and σ-optimal bound; the VAE's bound per dimension group), nats, on a fixed generated set larger than a
    training batch, in eval mode."""
    g_input, codes = fixed_latents(model.latent, n, seed, model.device)
    terms: dict[str, list[float]] = {}
    for lo in range(0, n, 1024):
        sl = slice(lo, lo + 1024)
        values = model.eval_information(g_input[sl], Codes(codes.categorical[sl], codes.continuous[sl]))
        for name, value in values.items():
            terms.setdefault(name, []).append(float(value) * len(g_input[sl]))
    return {f"mi/eval_{name}": sum(v) / n for name, v in terms.items()}
