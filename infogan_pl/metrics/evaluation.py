"""Everything that says whether a code means something, for one model on one data set, as a flat dict of numbers.

Used each validation (cheap budgets, by the Evaluation callback) and by `python -m infogan_pl.evaluate` (full).
Metrics that do not apply to the data (or need a labeller that is absent) are absent, never 0.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from infogan_pl.augment import RandomAffine
from infogan_pl.data.sampling import take
from infogan_pl.latent import Codes
from infogan_pl.losses import paired_mutual_information
from infogan_pl.metrics.accuracy import contingency, hungarian_accuracy, nmi, purity
from infogan_pl.metrics.disentanglement import discretize, mig, mutual_information_matrix
from infogan_pl.metrics.lenet import fid
from infogan_pl.nets import init_weights

BN_MODES = ("running", "recalibrate")


@dataclass
class Budget:
    """How many samples each metric uses (the validation defaults are cheap; `evaluate` raises them)."""

    real: int = 10_000  # held-out real images for Q's code accuracy, NMI and MIG
    generated_per_value: int = 100  # generated images per categorical value for gen purity / accuracy
    fid: int = 2_000  # real and generated images for FID (MNIST)
    mi: int = 4_096  # generated images for L_I per code
    bn_images: int = 4_096  # real training images the D / Q batch-norm statistics are re-estimated on
    seed: int = 1234  # fixes the generated sets so successive evaluations are comparable


@dataclass
class Evaluation:
    metrics: dict[str, float]
    mi_matrix: np.ndarray | None = None  # (codes, factors) MI in nats on real data
    code_labels: list[str] | None = None
    factor_labels: list[str] | None = None
    tables: dict[str, np.ndarray] = field(default_factory=dict)  # `cat<i>_<factor>`: (K, n values) counts


def _batched(fn, x: Tensor, batch: int = 1000) -> list:
    return [fn(x[i : i + batch]) for i in range(0, len(x), batch)]


def _encoder_modules(model) -> list[nn.Module]:
    """What reads real images: D's trunk and the Q head (GANs), the encoder (VAE)."""
    return [getattr(model, n) for n in ("discriminator", "q_head", "encoder", "to_code") if hasattr(model, n)]


@contextlib.contextmanager
def recalibrated_batch_norm(modules: list[nn.Module], images: Tensor, forward, batch: int = 512):
    """Inside: the batch-norm statistics of `modules` re-estimated on `images` (a cumulative average over batches
    in train mode), outside: the statistics as they were. Training keeps its own running averages, built mostly
    from generated images; Q as an encoder of real images is measured with statistics of real images."""
    norms = [m for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, {k: v.clone() for k, v in m.state_dict().items()}) for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average: every batch counts equally
            m.train()
        with torch.no_grad():
            for chunk in images.split(batch):
                forward(chunk)
        for m in norms:
            m.eval()
        yield
    finally:
        for m, (momentum, state) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.load_state_dict(state)


@torch.no_grad()
def q_outputs(model, images: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """The encoder's categorical argmax (N, n_cat) and continuous means (N, n_cont), and D's logits (N,) when the
    model has a discriminator, on images, in batches."""
    device = model.device
    cats, means, logits = [], [], []
    for chunk in images.split(1000):
        chunk = chunk.to(device)
        features = model.discriminator.features(chunk) if hasattr(model, "discriminator") else None
        if features is not None:
            logits.append(model.discriminator.head(features).squeeze(1).float().cpu())
        if not hasattr(model, "encode"):
            continue
        q = model.q_head(features) if hasattr(model, "q_head") else model.encode(chunk)  # the trunk once
        cats.append(torch.stack([lg.argmax(1) for lg in q.logits], 1).cpu() if q.logits else torch.zeros(len(chunk), 0))
        means.append(q.mean.float().cpu())
    d_logits = torch.cat(logits) if logits else None
    if not cats:
        return torch.zeros(len(images), 0, dtype=torch.long), torch.zeros(len(images), 0), d_logits
    return torch.cat(cats).long(), torch.cat(means), d_logits


def _kinds(factor_kinds: list[str] | None, n: int) -> list[str]:
    return list(factor_kinds) if factor_kinds is not None else ["categorical"] * n


def code_tables(
    cat: Tensor, factors: Tensor, factor_names: list[str], sizes: list[int], factor_kinds: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Per categorical code and categorical factor the (K, n values) counts of (code value, factor value)."""
    f_np = factors.numpy()
    kinds = _kinds(factor_kinds, len(factor_names))
    return {
        f"cat{i}_{fname}": contingency(cat[:, i].numpy(), f_np[:, j].astype(np.int64), k, int(f_np[:, j].max()) + 1)
        for j, fname in enumerate(factor_names)
        if kinds[j] == "categorical"
        for i, k in enumerate(sizes)
    }


def _abs_corr(a: np.ndarray, b: np.ndarray) -> float:
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
    kinds = _kinds(factor_kinds, len(factor_names))
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
            best = max(_abs_corr(c_np[:, i], f_np[:, j]) for i in range(c_np.shape[1]))
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


def _fixed_latents(latent, n: int, seed: int, device) -> tuple[Tensor, Codes]:
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
    model, labeller, factor_names: list[str], budget: Budget, factor_kinds: list[str] | None = None
) -> dict[str, float]:
    """Code-controlled generation labelled by the labeller: per categorical code and categorical factor purity /
    accuracy / distinct labels (invalid images count as errors); per continuous factor the best |Pearson r| between
    a continuous code's value and the factor read off the valid images (`gen_cont_corr`); the valid rate."""
    latent, metrics = model.latent, {}
    kinds = _kinds(factor_kinds, len(factor_names))
    categorical = [j for j, kind in enumerate(kinds) if kind == "categorical"]
    continuous = [j for j, kind in enumerate(kinds) if kind == "continuous"]
    all_valid = []
    best: dict[str, dict[str, list[float]]] = {
        name: {factor_names[j]: [] for j in categorical} for name in ("purity", "acc")
    }
    distinct: dict[str, list[int]] = {factor_names[j]: [] for j in categorical}
    for i, k in enumerate(latent.categorical):
        g_input, codes = _fixed_latents(latent, k * budget.generated_per_value, budget.seed + i, model.device)
        values = torch.arange(k, device=model.device).repeat_interleave(budget.generated_per_value)
        codes.categorical[:, i] = values
        images = torch.cat(_batched(model.generate, latent.assemble(g_input[:, : latent.z_dim], codes)))
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
        n = 10 * budget.generated_per_value
        g_input, codes = _fixed_latents(latent, n, budget.seed + 99, model.device)
        labels, valid = labeller.label(torch.cat(_batched(model.generate, g_input)))
        all_valid.append(valid.cpu())
        ok = valid.cpu().numpy()
        c_np, lab = codes.continuous.cpu().numpy(), labels.cpu().numpy().astype(np.float64)
        for j in continuous:
            corr = max(_abs_corr(c_np[ok, c], lab[ok, j]) for c in range(c_np.shape[1])) if ok.sum() > 2 else 0.0
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
def eval_mutual_information(model, budget: Budget) -> dict[str, float]:
    """The model's information terms (`model.eval_information`: InfoGAN's L_I per code with each continuous code's
    MSE and σ-optimal bound; the VAE's bound per dimension group), nats, on a fixed generated set larger than a
    training batch, in eval mode."""
    g_input, codes = _fixed_latents(model.latent, budget.mi, budget.seed, model.device)
    terms: dict[str, list[float]] = {}
    for lo in range(0, budget.mi, 1024):
        sl = slice(lo, lo + 1024)
        values = model.eval_information(g_input[sl], Codes(codes.categorical[sl], codes.continuous[sl]))
        for name, value in values.items():
            terms.setdefault(name, []).append(float(value) * len(g_input[sl]))
    return {f"mi/eval_{name}": sum(v) / budget.mi for name, v in terms.items()}


@torch.no_grad()
def consistency(model, images: Tensor, seed: int) -> float:
    """I(c(x); c(t(x))) in nats between Q's assignments of held-out real images and of randomly rotated, scaled and
    shifted copies (the model's `augment`, else the default), summed over categorical codes: how stable Q's clusters
    are under small label-preserving changes. It needs no label, so it can choose among restarts of a run; it is
    meaningful only where such transforms preserve the class (MNIST, not BasicProp's positions and heights)."""
    augment = getattr(model, "augment", None) or RandomAffine()
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    moved = torch.cat([augment(chunk, gen) for chunk in images.split(1000)])
    a = [model.encode(chunk.to(model.device)).logits for chunk in images.split(1000)]
    b = [model.encode(chunk.to(model.device)).logits for chunk in moved.split(1000)]
    for i in range(len(model.latent.categorical)):
        total += float(paired_mutual_information(torch.cat([x[i] for x in a]), torch.cat([x[i] for x in b])))
    return total


def untrained_baseline(
    model, images: Tensor, factors: Tensor, factor_names: list[str], factor_kinds: list[str] | None = None
) -> float | None:
    """metric/cat_acc of a freshly initialized D trunk and Q head (same architecture, fixed seed, batch-norm
    statistics of the same real images; at most 2,000 of them): the chance level a random encoder already reaches."""
    if not model.latent.categorical:
        return None
    images, factors = images[:2000], factors[:2000]
    trunk, head = copy.deepcopy(model.discriminator).cpu(), copy.deepcopy(model.q_head).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        init_weights(trunk)
        init_weights(head)

    def forward(x: Tensor):
        return head(trunk.features(x))

    with recalibrated_batch_norm([trunk, head], images.cpu(), forward), torch.no_grad():
        out = [forward(chunk) for chunk in images.cpu().split(1000)]
    cat = torch.cat([torch.stack([lg.argmax(1) for lg in q.logits], 1) for q in out])
    cont = torch.cat([q.mean for q in out]).float()
    m, _, _ = code_metrics(cat, cont, factors.cpu(), factor_names, model.latent.categorical, False, factor_kinds)
    return m.get("metric/cat_acc")


@torch.no_grad()
def evaluate_model(
    model, datamodule, budget: Budget | None = None, labeller=None, bn: str = "recalibrate"
) -> Evaluation:
    """All metrics that apply to this model, data and labeller. The model is put in eval mode and restored.

    bn: `recalibrate` re-estimates D's and Q's batch-norm statistics on real training images first (Q is then
    measured as an encoder of real images); `running` uses the statistics accumulated in training."""
    if bn not in BN_MODES:
        raise ValueError(f"callbacks.evaluation.bn must be one of {BN_MODES}, got {bn!r}.")
    budget = budget or Budget()
    was_training = model.training
    model.eval()
    context = contextlib.nullcontext()
    if bn == "recalibrate":
        calibration, _ = take(datamodule.train_set, budget.bn_images)
        forward = model.encode if hasattr(model, "encode") else model.discriminator
        context = recalibrated_batch_norm(_encoder_modules(model), calibration.to(model.device), forward)
    try:
        with context:
            return _evaluate(model, datamodule, budget, labeller)
    finally:
        model.train(was_training)


def _evaluate(model, datamodule, budget: Budget, labeller) -> Evaluation:
    metrics: dict[str, float] = {}
    matrix = labels = None
    tables: dict[str, np.ndarray] = {}
    images, factors = take(datamodule.val_set, budget.real)
    cat, cont, d_logits = q_outputs(model, images)
    if d_logits is not None:
        metrics["val/d_real"] = float((torch.sigmoid(d_logits) if model.loss.bounded else d_logits).mean())
    if hasattr(model, "encode"):
        if datamodule.factors_are_attributes:  # CelebA: code x attribute MI table only
            if model.latent.categorical and factors.shape[1]:
                matrix = mutual_information_matrix(cat.numpy(), factors.numpy())
                labels = [f"cat{i}" for i in range(cat.shape[1])]
        elif factors.shape[1]:
            names, kinds = datamodule.factor_names, datamodule.factor_kinds
            sizes, generative = model.latent.categorical, datamodule.factors_are_generative
            m, matrix, labels = code_metrics(cat, cont, factors, names, sizes, generative, kinds)
            metrics.update(m)
            tables = code_tables(cat, factors, names, sizes, kinds)
        metrics.update(eval_mutual_information(model, budget))
        if model.latent.categorical:
            metrics["metric/consistency"] = consistency(model, images, budget.seed)
        if labeller is not None and model.latent.has_codes and not datamodule.factors_are_attributes:
            metrics.update(generated_metrics(model, labeller, datamodule.factor_names, budget, datamodule.factor_kinds))
    features = labeller.fid_features() if labeller is not None else None
    if features is not None:
        real, _ = take(datamodule.val_set, budget.fid)
        g_input, _ = _fixed_latents(model.latent, len(real), budget.seed, model.device)
        fake = torch.cat(_batched(model.generate, g_input)).cpu()
        metrics["metric/fid_lenet"] = fid(features, real, fake)
    return Evaluation(metrics, matrix, labels, list(datamodule.factor_names), tables)
