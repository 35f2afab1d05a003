"""The study's Appendix C: more categorical values than classes, and the encoder loss instead of the MI term."""

import numpy as np
import pytest
import torch

from infogan_pl.latent import LatentSpec
from infogan_pl.metrics.codes import code_metrics, code_tables
from infogan_pl.models import InfoGAN
from infogan_pl.models.guard import NaNGuard
from tests.helpers import SPEC

DIGITS = torch.arange(2000) % 10


def test_twenty_values_that_split_each_digit_in_two_score_one_many_to_one_and_half_one_to_one():
    sub = torch.randint(2, (2000,), generator=torch.Generator().manual_seed(0))
    values = (DIGITS * 2 + sub)[:, None]  # each digit's images shared by two values: sub-categories
    m, _, _ = code_metrics(values, torch.zeros(2000, 0), DIGITS[:, None], ["digit"], [20], with_mig=False)
    assert m["metric/cat_acc_many"] == 1.0
    assert 0.45 < m["metric/cat_acc"] < 0.55  # one-to-one matching can use only ten of the twenty values
    table = code_tables(values, DIGITS[:, None], ["digit"], [20])["cat0_digit"]
    assert table.shape == (20, 10) and table.sum() == 2000 and np.all(table.argmax(axis=1) == np.arange(20) // 2)


def test_a_code_that_merges_digits_loses_many_to_one_accuracy_too():
    merged = torch.where(DIGITS == 9, torch.tensor(4), DIGITS)[:, None]  # 4 and 9 under one value
    m, _, _ = code_metrics(merged, torch.zeros(2000, 0), DIGITS[:, None], ["digit"], [20], with_mig=False)
    assert m["metric/cat_acc_many"] == pytest.approx(0.9)


def test_per_value_traversals_give_one_grid_per_value_with_that_value_fixed():
    spec = LatentSpec(z_dim=4, categorical=[20], continuous=1)
    inputs = spec.value_traversal(0, 7, rows=3, steps=5)
    assert inputs.shape == (15, spec.input_dim)
    assert bool((inputs[:, 4:24].argmax(1) == 7).all())
    assert torch.equal(inputs[0, :4], inputs[4, :4]) and not torch.equal(inputs[0, :4], inputs[5, :4])  # z per row
    assert torch.allclose(inputs[:5, -1], torch.linspace(-2, 2, 5))
    model = InfoGAN(spec, nan=NaNGuard())
    grids = model.traversals(steps=5, per_value=True)
    assert sum(name.startswith("cat0_value") for name in grids) == 20


def _g_and_q_grads(model):
    latent_input, codes = model.sample(16)
    _, features = model.discriminator(model.generator(latent_input))
    loss_q, _ = model.q_loss(features, codes)
    loss_g = model.generator_info_loss(features, codes)
    params = list(model.generator.parameters())
    g = torch.autograd.grad(loss_g, params, allow_unused=True, retain_graph=True) if loss_g.requires_grad else []
    q = torch.autograd.grad(loss_q, [model.q_head.net[0].weight, model.discriminator.trunk[0].weight])
    return any(x is not None and bool(x.abs().sum() > 0) for x in g), all(bool(x.abs().sum() > 0) for x in q)


def test_the_encoder_loss_trains_q_and_the_trunk_but_gives_g_no_information_gradient():
    torch.manual_seed(0)
    assert _g_and_q_grads(InfoGAN(SPEC)) == (True, True)
    assert _g_and_q_grads(InfoGAN(SPEC, info_objective="encoder_loss")) == (False, True)
    with pytest.raises(ValueError, match="info_objective"):
        InfoGAN(SPEC, info_objective="reconstruction")
