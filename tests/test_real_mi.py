"""The study's row 6 made feasible: mutual information between the code and real images, Q as the encoder."""

import math

import pytest
import torch

from infogan_pl.augment import RandomAffine
from infogan_pl.data import BasicPropDataModule
from infogan_pl.latent import LatentSpec
from infogan_pl.losses import (
    mutual_information_lower_bound,
    paired_marginal_entropy,
    paired_mutual_information,
    real_mutual_information,
)
from infogan_pl.models import InfoGAN
from tests.helpers import SPEC, compose_config, fit, tiny_overrides


def _one_hot_logits(labels, k=10):
    return torch.nn.functional.one_hot(labels, k).float() * 50.0


def test_i_q_of_a_q_that_outputs_one_hot_labels_of_a_balanced_set_is_ln_k():
    marginal, conditional = real_mutual_information(_one_hot_logits(torch.arange(1000) % 10))
    assert float(marginal - conditional) == pytest.approx(math.log(10), abs=1e-4)


def test_i_q_of_a_constant_q_is_zero():
    marginal, conditional = real_mutual_information(torch.randn(1, 10).expand(64, 10))
    assert float(marginal - conditional) == pytest.approx(0.0, abs=1e-5)
    confident_one_value = _one_hot_logits(torch.zeros(64, dtype=torch.long))
    assert float(torch.stack(real_mutual_information(confident_one_value)).abs().max()) < 1e-4


def test_paired_mi_is_ln_k_for_agreeing_balanced_assignments_and_zero_for_independent_ones():
    labels = torch.arange(1000) % 10
    assert float(paired_mutual_information(_one_hot_logits(labels), _one_hot_logits(labels))) == pytest.approx(
        math.log(10), abs=1e-3
    )
    shuffled = labels[torch.randperm(1000, generator=torch.Generator().manual_seed(0))]
    assert float(paired_mutual_information(_one_hot_logits(labels), _one_hot_logits(shuffled))) < 0.06


def test_the_transform_keeps_shape_and_range_is_fresh_per_draw_and_reproducible_from_the_seed():
    images, _ = BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16).train_set[torch.arange(16)]
    t = RandomAffine(rotation=10, scale=0.1, shift=2)
    gen = torch.Generator().manual_seed(3)
    first, second = t(images, gen), t(images, gen)
    assert first.shape == images.shape and float(first.min()) >= -1 - 1e-6 and float(first.max()) <= 1 + 1e-6
    assert not torch.equal(first, second)  # a fresh draw each step
    assert torch.equal(first, t(images, torch.Generator().manual_seed(3)))  # the same seed, the same draw
    moved = [not torch.equal(a, b) for a, b in zip(first, images, strict=True)]
    assert all(moved)  # every image gets its own map
    assert torch.allclose(RandomAffine(0, 0, 0)(images), images, atol=1e-5)  # the identity when all ranges are 0


@pytest.mark.parametrize("term", ["real_mi", "consistency"])
def test_the_real_data_terms_train_the_trunk_and_the_q_head_only(term):
    torch.manual_seed(0)
    model = InfoGAN(SPEC, **{term: 1.0})
    real, _ = BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16).train_set[torch.arange(32)]
    _, features = model.discriminator(real)
    loss, metrics = model.real_data_loss(real, features, torch.Generator().manual_seed(0))
    loss.backward()
    grads = {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters()}
    assert all(grads[n] for n in grads if n.startswith(("discriminator.trunk.0", "q_head.net.3")))
    assert not any(grads[n] for n in grads if n.startswith(("generator.", "discriminator.head.")))
    assert (f"mi/{'real' if term == 'real_mi' else 'consistency'}") in metrics


def test_the_terms_log_their_parts_and_off_means_nothing_is_computed(tmp_path):
    torch.manual_seed(0)
    model = InfoGAN(SPEC, real_mi=1.0, consistency=0.5)
    data = BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16)
    fit(model, data, max_steps=2, root=tmp_path)
    logged = model.step_metrics
    assert {"mi/real", "mi/real_marginal", "mi/real_conditional", "mi/consistency"} <= set(logged)
    parts = float(logged["mi/real_marginal"]) - float(logged["mi/real_conditional"])
    assert float(logged["mi/real"]) == pytest.approx(parts, abs=1e-5)
    off = InfoGAN(SPEC)
    assert off.real_data_loss(None, torch.zeros(4, 1024), None)[1] == {}


def test_the_real_data_terms_need_a_categorical_code():
    with pytest.raises(ValueError, match="need a categorical code"):
        InfoGAN(LatentSpec(z_dim=8, categorical=[], continuous=2), consistency=1.0)


@pytest.mark.parametrize("experiment", ["mnist_infogan_real_mi", "mnist_infogan_consistency"])
def test_the_presets_name_the_studys_row_and_turn_one_term_on(experiment, tmp_path, mnist_dir):
    cfg = compose_config(tiny_overrides(experiment, mnist_dir), tmp_path)
    assert (cfg.model.real_mi > 0) != (cfg.model.consistency > 0) and cfg.model.lambda_info == 1.0


def test_the_over_clustering_head_trains_the_trunk_and_itself_by_the_consistency_term_only():
    torch.manual_seed(0)
    model = InfoGAN(SPEC, consistency=1.0, overcluster=30)
    opt_d, _ = model.configure_optimizers()
    in_d = {id(p) for group in opt_d.param_groups for p in group["params"]}
    assert all(id(p) in in_d for p in model.overcluster_head.parameters())  # D's optimizer, at Q's lr
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    _, features = model.discriminator(real)
    model.q_head.requires_grad_(False)  # what the over-clustering head alone moves
    loss, metrics = model.real_data_loss(real, features, torch.Generator().manual_seed(0))
    (-metrics["mi/overcluster"]).backward()
    assert model.overcluster_head.weight.grad.abs().sum() > 0
    assert model.discriminator.trunk[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.generator.parameters())
    assert 0 <= float(metrics["mi/overcluster"]) <= math.log(30) + 1e-5
    with pytest.raises(ValueError, match="model.overcluster needs model.consistency"):
        InfoGAN(SPEC, overcluster=30)


def test_the_moved_fake_term_is_the_categorical_l_i_on_transformed_fakes_and_trains_g_through_the_transform(tmp_path):
    torch.manual_seed(0)
    model = InfoGAN(SPEC, moved_fake=0.5, lambda_info=2.0, augment=RandomAffine(0, 0, 0))  # t = identity
    g_input, codes = model.sample(16, torch.Generator().manual_seed(0))
    fake = model.generator(g_input)
    loss, metrics = model.moved_fake_loss(fake, codes, 0, torch.Generator().manual_seed(1))
    plain = mutual_information_lower_bound(model.encode(fake), codes)
    moved, cat = float(metrics["mi/moved_fake"].detach()), float(plain["cat0"].detach())
    assert moved == pytest.approx(cat, abs=1e-5)  # the continuous codes are left out
    assert float(loss.detach()) == pytest.approx(-0.5 * 2.0 * cat, abs=1e-5)
    loss.backward()
    assert model.generator.net[0].weight.grad.abs().sum() > 0 and model.q_head.net[3].weight.grad.abs().sum() > 0
    for off in (InfoGAN(SPEC), InfoGAN(SPEC, moved_fake=1.0, lambda_info=0.0)):  # off, and the probe: nothing
        assert off.moved_fake_loss(fake, codes, 0, None) == (pytest.approx(0.0), {})
    q_only = InfoGAN(SPEC, moved_fake=1.0, moved_fake_trains_g=False)  # Q's side stays, G's step gets nothing
    assert q_only.moved_fake_loss(fake, codes, 0, None, g_step=True) == (pytest.approx(0.0), {})
    assert float(q_only.moved_fake_loss(fake, codes, 0, torch.Generator().manual_seed(1))[0].detach()) < 0
    with pytest.raises(ValueError, match="model.moved_fake"):
        InfoGAN(LatentSpec(z_dim=8, categorical=[], continuous=2), moved_fake=1.0)
    model = InfoGAN(SPEC, moved_fake=1.0)  # and a real fit logs it
    fit(model, BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16), max_steps=2, root=tmp_path)
    assert 0 < math.exp(float(model.step_metrics["mi/moved_fake"])) <= 10 + 1e-4  # L_I(cat) <= ln 10


def test_the_g_step_gets_the_moved_fake_term_unless_moved_fake_trains_g_is_off(tmp_path):
    generators = {}
    for trains_g in (True, False):
        torch.manual_seed(0)
        model = InfoGAN(SPEC, moved_fake=1.0, moved_fake_trains_g=trains_g, consistency=0.0)
        data = BasicPropDataModule("line", train_size=32, val_size=16, batch_size=16)
        fit(model, data, max_steps=4, root=tmp_path / str(trains_g))
        generators[trains_g] = torch.cat([p.detach().flatten() for p in model.generator.parameters()])
    assert not torch.equal(generators[True], generators[False])  # the only difference: the G step's term


def test_iic_lambda_on_the_marginals_is_the_mi_plus_twice_the_marginal_entropy_and_is_added_to_the_loss():
    torch.manual_seed(0)
    a, b = torch.randn(64, 10), torch.randn(64, 10)
    pa, pb = a.softmax(1), b.softmax(1)
    joint = pa.t() @ pb / 64
    joint = (joint + joint.t()) / 2
    lam = 2.5  # IIC's loss as its authors write it: sum P (log P - lam log P_i - lam log P_j)
    iic = (
        joint * (joint.log() - lam * joint.sum(1, keepdim=True).log() - lam * joint.sum(0, keepdim=True).log())
    ).sum()
    ours = paired_mutual_information(a, b) + (lam - 1) * 2 * paired_marginal_entropy(a, b)
    assert float(ours) == pytest.approx(float(iic), abs=1e-5) and float(iic) > float(paired_mutual_information(a, b))
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    losses = {}
    for weight in (1.0, lam):
        torch.manual_seed(0)
        model = InfoGAN(SPEC, consistency=1.0, consistency_entropy=weight)
        _, features = model.discriminator(real)
        losses[weight], metrics = model.real_data_loss(real, features, torch.Generator().manual_seed(0))
    extra = float(losses[1.0].detach() - losses[lam].detach())
    assert extra == pytest.approx((lam - 1) * 2 * float(metrics["mi/consistency_marginal"].detach()), abs=1e-4)
    with pytest.raises(ValueError, match="model.consistency_entropy"):
        InfoGAN(SPEC, consistency=1.0, consistency_entropy=0.5)
