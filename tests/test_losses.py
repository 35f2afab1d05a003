import math
from functools import partial

import pytest
import torch

from infogan_pl.data import BasicProp
from infogan_pl.latent import Codes, LatentSpec
from infogan_pl.losses import discriminator_loss, generator_loss, mutual_information_lower_bound
from infogan_pl.models import InfoGAN
from infogan_pl.nets import Discriminator, Generator, QHead, QOutput


def _codes(cat, cont=None):
    cat = torch.as_tensor(cat).reshape(-1, 1)
    cont = torch.zeros(len(cat), 0) if cont is None else torch.as_tensor(cont, dtype=torch.float32)
    return Codes(cat, cont)


def test_perfect_categorical_q_gives_ln_k():
    target = torch.arange(10).repeat(5)
    logits = torch.full((50, 10), -1e4).scatter(1, target[:, None], 1e4)  # huge logits: no softmax before CE
    mi = mutual_information_lower_bound(QOutput([logits], torch.zeros(50, 0), None), _codes(target))
    assert mi["cat0"].item() == pytest.approx(math.log(10))
    assert mi["total"].item() == pytest.approx(math.log(10))


def test_uniform_categorical_q_gives_zero():
    target = torch.arange(10)
    mi = mutual_information_lower_bound(QOutput([torch.zeros(10, 10)], torch.zeros(10, 0), None), _codes(target))
    assert mi["cat0"].item() == pytest.approx(0.0, abs=1e-6)


def test_continuous_term_is_ln2_plus_gaussian_log_likelihood_with_fixed_sigma():
    c = torch.tensor([[0.5], [-0.5]])
    q = QOutput([], torch.tensor([[0.5], [0.5]]), None)
    mi = mutual_information_lower_bound(q, Codes(torch.zeros(2, 0, dtype=torch.long), c))
    expected = math.log(2) - 0.5 * math.log(2 * math.pi) - 0.5 * (0 + 1.0) / 2
    assert mi["cont0"].item() == pytest.approx(expected)


def test_learned_sigma_is_used_and_clamped():
    c = torch.zeros(4, 1)
    tight = QOutput([], torch.zeros(4, 1), torch.full((4, 1), -1.0))
    collapsed = QOutput([], torch.zeros(4, 1), torch.full((4, 1), -50.0))
    codes = Codes(torch.zeros(4, 0, dtype=torch.long), c)
    assert mutual_information_lower_bound(tight, codes)["cont0"].item() == pytest.approx(
        math.log(2) - 0.5 * math.log(2 * math.pi) + 1.0
    )
    assert math.isfinite(mutual_information_lower_bound(collapsed, codes)["cont0"].item())


def test_total_sums_every_code():
    spec = LatentSpec(z_dim=0, categorical=[10, 3], continuous=2)
    _, codes = spec.sample(8)
    q = QHead([10, 3], 2)(torch.randn(8, 1024))
    mi = mutual_information_lower_bound(q, codes)
    assert set(mi) == {"cat0", "cat1", "cont0", "cont1", "total"}
    assert mi["total"].item() == pytest.approx(sum(mi[k].item() for k in spec.code_names), rel=1e-5)


def test_information_gradient_reaches_generator_and_q_head():
    torch.manual_seed(0)
    spec = LatentSpec(z_dim=4, categorical=[10], continuous=2)
    g, d, q = Generator(spec.input_dim), Discriminator(), QHead([10], 2, learn_sigma=True)
    x, codes = spec.sample(8)
    _, features = d(g(x))
    mutual_information_lower_bound(q(features), codes)["total"].backward()
    for name, net in (("G", g), ("Q", q)):
        grads = [p.grad for p in net.parameters()]
        assert all(gr is not None for gr in grads), f"{name} got no gradient: the term is detached"
        assert sum(gr.abs().sum() for gr in grads) > 0, f"{name} got a zero gradient"


def test_adversarial_losses_use_float_targets_on_logits():
    logits = torch.tensor([0.0, 0.0])
    assert discriminator_loss(logits, logits).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(torch.tensor([10.0])).item() == pytest.approx(math.log1p(math.exp(-10)))


def _trained_q_bound(encodes_c: bool, steps: int = 150) -> float:
    """L_I after training D's trunk and Q (fixed G: a BasicProp line whose position is c, or a random position)."""
    torch.manual_seed(0)
    spec = LatentSpec(z_dim=4, categorical=[10], continuous=0)
    model = InfoGAN(spec, generator=partial(Generator, hidden=8), discriminator=partial(Discriminator, hidden=64))
    lines = BasicProp("line", size=10)
    opt = torch.optim.Adam([*model.discriminator.parameters(), *model.q_head.parameters()], lr=2e-3)
    for _ in range(steps):
        _, codes = spec.sample(64)
        classes = codes.categorical[:, 0] if encodes_c else torch.randint(10, (64,))
        _, features = model.discriminator(lines[classes][0])
        loss, mi = model.q_loss(features, codes)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(mi["cat0"].detach())


def test_end_to_end_the_bound_reaches_ln_k_when_g_encodes_c_and_stays_near_zero_when_it_does_not():
    assert _trained_q_bound(encodes_c=True) > math.log(10) - 0.1
    assert _trained_q_bound(encodes_c=False) < 0.1
