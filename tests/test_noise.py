import pytest
import torch

from infogan_pl.noise import InstanceNoise


def test_constant_linear_and_exponential_schedules():
    assert InstanceNoise(0.2).std_at(10_000) == 0.2
    linear = InstanceNoise(0.4, schedule="linear", decay_steps=100)
    assert [linear.std_at(s) for s in (0, 50, 100, 500)] == pytest.approx([0.4, 0.2, 0.0, 0.0])
    exp = InstanceNoise(0.4, schedule="exponential", half_life=10)
    assert [exp.std_at(s) for s in (0, 10, 20)] == pytest.approx([0.4, 0.2, 0.1])


def test_zero_std_is_the_identity():
    x = torch.rand(2, 1, 4, 4)
    assert InstanceNoise(0.0)(x, 0) is x


def test_noise_is_fresh_every_call_with_the_scheduled_std():
    noise = InstanceNoise(0.5)
    x = torch.zeros(64, 1, 28, 28)
    a, b = noise(x, 0), noise(x, 0)
    assert not torch.equal(a, b)
    assert a.std().item() == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize(("where", "fg_noisy", "bg_noisy"), [("foreground", True, False), ("background", False, True)])
def test_noise_can_be_restricted_to_foreground_or_background(where, fg_noisy, bg_noisy):
    x = -torch.ones(1, 1, 28, 28)
    x[..., 5:10] = 1.0
    y = InstanceNoise(0.3, where=where)(x, 0)
    fg, bg = x > 0, x <= 0
    assert bool((y[fg] != x[fg]).any()) == fg_noisy
    assert bool((y[bg] != x[bg]).any()) == bg_noisy


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"std": -0.1}, "std"), ({"schedule": "cosine"}, "schedule"), ({"where": "edges"}, "where")],
)
def test_bad_noise_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InstanceNoise(**kwargs)
