"""Everything that says whether a code means something, for one model on one data set, as a flat dict of numbers
(the pieces: metrics/codes.py on real images, metrics/generated.py on generated ones).

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
from infogan_pl.losses import paired_mutual_information
from infogan_pl.metrics.codes import code_metrics, code_tables, posterior_metrics
from infogan_pl.metrics.disentanglement import mutual_information_matrix
from infogan_pl.metrics.generated import batched, eval_mutual_information, fixed_latents, generated_metrics
from infogan_pl.metrics.lenet import fid
from infogan_pl.metrics.success import success
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


def encoder_modules(model) -> list[nn.Module]:
    """What reads real images: D's trunk and the Q head (GANs), the encoder (VAE)."""
    return [getattr(model, n) for n in ("discriminator", "q_head", "encoder", "to_code") if hasattr(model, n)]


def _batch_norms(modules: list[nn.Module]) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def estimate_batch_norm(modules: list[nn.Module], images: Tensor, forward, batch: int = 512) -> None:
    """The batch-norm statistics of `modules` re-estimated on `images` (a cumulative average over batches in train
    mode), then eval mode. A SyncBatchNorm is left as it is (in train mode it would gather over every rank)."""
    norms = _batch_norms(modules)
    if any(isinstance(m, nn.SyncBatchNorm) for m in norms):
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
        m.train()
    for chunk in images.split(batch):
        forward(chunk)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
        m.eval()


@contextlib.contextmanager
def recalibrated_batch_norm(modules: list[nn.Module], images: Tensor, forward, batch: int = 512):
    """Inside: the batch-norm statistics of `modules` re-estimated on `images` (`estimate_batch_norm`), outside:
    the statistics as they were. Training keeps its own running averages, built mostly from generated images; Q as
    an encoder of real images is measured with statistics of real images."""
    norms = _batch_norms(modules)
    if any(isinstance(m, nn.SyncBatchNorm) for m in norms):
        # a SyncBatchNorm in train mode gathers over every rank, but only rank 0 evaluates: keep the running ones
        yield
        return
    saved = [(m.momentum, {k: v.clone() for k, v in m.state_dict().items()}) for m in norms]
    try:
        estimate_batch_norm(modules, images, forward, batch)
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
    if any(isinstance(m, nn.SyncBatchNorm) for m in model.discriminator.modules()):
        return None  # trainer.sync_batchnorm=true: its copy could not run on one process
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
        context = recalibrated_batch_norm(encoder_modules(model), calibration.to(model.device), forward)
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
        metrics.update(eval_mutual_information(model, budget.mi, budget.seed))
        if hasattr(model, "kl_per_dim"):  # a VAE: is its posterior alive?
            metrics.update(posterior_metrics(model, images))
        if model.latent.categorical and not datamodule.factors_are_generative:  # BasicProp's factors move with t
            metrics["metric/consistency"] = consistency(model, images, budget.seed)
        if labeller is not None and model.latent.has_codes and not datamodule.factors_are_attributes:
            names, kinds = datamodule.factor_names, datamodule.factor_kinds
            metrics.update(generated_metrics(model, labeller, names, budget.generated_per_value, budget.seed, kinds))
    features = labeller.fid_features() if labeller is not None else None
    if features is not None:
        real, _ = take(datamodule.val_set, budget.fid, seed=budget.seed)  # drawn from the whole set
        g_input, _ = fixed_latents(model.latent, len(real), budget.seed, model.device)
        fake = torch.cat(batched(model.generate, g_input)).cpu()
        metrics["metric/fid_lenet"] = fid(features, real, fake)
    verdict = success(metrics, datamodule.task, len(model.latent.categorical))
    if verdict is not None:
        metrics["metric/success"] = verdict
    return Evaluation(metrics, matrix, labels, list(datamodule.factor_names), tables)
