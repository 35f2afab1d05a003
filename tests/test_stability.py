"""Adversarial losses, the gradient penalty and the D/G balance."""

import pytest
import torch
from torch import nn

from infogan_pl.data import BasicPropDataModule
from infogan_pl.losses import Hinge, Minimax, NonSaturating, WassersteinGP, gradient_penalty
from infogan_pl.models import InfoGAN
from infogan_pl.nets import Discriminator
from tests.helpers import SPEC, StepRecorder, fit

REAL, FAKE = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 0.5])


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).backward()
    return x.grad


@pytest.mark.parametrize(
    ("loss", "d_value", "g_value"),
    [
        (Minimax(), None, -torch.nn.functional.softplus(FAKE).mean().item()),
        (NonSaturating(), None, torch.nn.functional.softplus(-FAKE).mean().item()),
        (Hinge(), (0 + 0) / 2 + (0 + 1.5) / 2, 0.25),
        (WassersteinGP(), FAKE.mean().item() - REAL.mean().item(), 0.25),
    ],
    ids=["minimax", "non_saturating", "hinge", "wgan_gp"],
)
def test_loss_values_and_gradient_signs(loss, d_value, g_value):
    bce = torch.nn.functional.softplus(-REAL).mean() + torch.nn.functional.softplus(FAKE).mean()
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d_value if d_value is not None else bce.item())
    assert loss.g_loss(FAKE).item() == pytest.approx(g_value)
    # D lowers its loss by raising real scores and lowering fake ones; G by raising fake scores
    assert (_grad(lambda r: loss.d_loss(r, FAKE), REAL) <= 0).all()
    assert (_grad(lambda f: loss.d_loss(REAL, f), FAKE) >= 0).all() and _grad(
        lambda f: loss.d_loss(REAL, f), FAKE
    ).sum() > 0
    assert (_grad(loss.g_loss, FAKE) < 0).all()


def test_minimax_saturates_where_non_saturating_does_not():
    confident_fake = torch.tensor([-10.0])  # D is sure G(z) is fake
    assert abs(_grad(Minimax().g_loss, confident_fake).item()) < 1e-4
    assert abs(_grad(NonSaturating().g_loss, confident_fake).item()) > 0.9


def test_one_sided_label_smoothing_moves_only_the_real_target():
    smoothed = NonSaturating(label_smoothing=0.1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(REAL, torch.full_like(REAL, 0.9))
    expected = expected + torch.nn.functional.softplus(FAKE).mean()
    assert smoothed.d_loss(REAL, FAKE).item() == pytest.approx(expected.item())


def test_gradient_penalty_is_zero_for_a_unit_slope_linear_critic_and_differentiable():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(784, 1, bias=False))
    with torch.no_grad():
        critic[1].weight /= critic[1].weight.norm()  # 1-Lipschitz with unit slope: ||grad|| = 1 everywhere
    real, fake = torch.randn(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    assert gradient_penalty(lambda x: critic(x).squeeze(1), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        critic[1].weight *= 3
    penalty = gradient_penalty(lambda x: critic(x).squeeze(1), real, fake)
    assert penalty.item() == pytest.approx(4.0, rel=1e-5)  # (3 - 1)^2
    penalty.backward()  # needs create_graph: the penalty depends on the critic's weights through the gradient
    assert critic[1].weight.grad is not None and critic[1].weight.grad.abs().sum() > 0


def test_layer_norm_critic_has_no_batch_norm():
    d = Discriminator(norm="layer")
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in d.modules())
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(d(x)[0][:1], d(x[:1])[0], atol=1e-6)  # each sample's score is its own (no batch mixing)


def _data():
    return BasicPropDataModule("line", train_size=96, val_size=32, batch_size=16, noise="foreground")


def test_d_steps_per_g_step_takes_k_critic_steps_then_one_generator_step(tmp_path):
    torch.manual_seed(0)
    model = InfoGAN(SPEC, loss=WassersteinGP(), d_steps_per_g=3)
    recorder = StepRecorder()
    fit(model, _data(), max_steps=8, root=tmp_path, callbacks=[recorder])  # 6 critic + 2 generator steps
    records = recorder.records
    assert [network for network, _ in records] == ["d", "d", "d", "g", "d", "d", "d", "g"] and model.iteration == 6


def test_optimizer_per_network_from_config(tmp_path):
    from functools import partial

    model = InfoGAN(SPEC, optimizer_d=partial(torch.optim.SGD, momentum=0.9), lr_d=0.01)
    opt_d, opt_g = model.configure_optimizers()
    assert isinstance(opt_d, torch.optim.SGD) and opt_d.param_groups[0]["lr"] == 0.01
    assert isinstance(opt_g, torch.optim.Adam) and opt_g.param_groups[0]["betas"] == (0.5, 0.999)
