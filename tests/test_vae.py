"""The VAE with mutual information on half its code (the seeds' poster)."""

from functools import partial

import pytest
import torch

from infogan_pl.data import BasicPropDataModule
from infogan_pl.latent import LatentSpec
from infogan_pl.models import VAE
from infogan_pl.nets import Discriminator, Generator
from tests.helpers import fit

SPEC = LatentSpec(z_dim=6, z_prior="normal", categorical=[], continuous=0)
NETS = {"generator": partial(Generator, hidden=64), "discriminator": partial(Discriminator, hidden=64)}


def _data():
    return BasicPropDataModule("line", train_size=96, val_size=32, batch_size=16, noise="foreground")


def _vae(**kwargs):
    torch.manual_seed(0)
    return VAE(SPEC, **NETS, **kwargs)


def test_the_mi_bound_trains_the_encoder_and_the_decoder_on_the_regularized_half_only():
    model = _vae(lambda_info=1.0)
    z, _ = model.sample(32)
    info = model.information(z, ["regularized"])
    info["regularized"].backward()
    grads = {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters()}
    assert any(grads[n] for n in grads if n.startswith("encoder.")) and grads["to_code.weight"]
    assert any(grads[n] for n in grads if n.startswith("generator."))  # through x' = decoder(z)
    assert model.mi_dims == [0, 1, 2] and model.free_dims == [3, 4, 5]
    assert not info["unregularized"].requires_grad  # measured, never trained


def test_lambda_zero_is_the_plain_vae_bitwise_whether_or_not_the_bound_is_measured(tmp_path):
    measured, silent = _vae(), _vae()
    fit(measured, _data(), max_steps=6, root=tmp_path / "a", log_every=1)  # the bound measured every step
    fit(silent, _data(), max_steps=6, root=tmp_path / "b", log_every=1000)
    for (name, a), b in zip(measured.state_dict().items(), silent.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert measured.iteration == 6


def test_the_per_dimension_kl_sums_to_the_kl_and_is_zero_at_the_prior():
    model = _vae()
    images, _ = _data().train_set[torch.arange(16)]
    q = model.encode(images)
    kl = model.kl_per_dim(q)
    mean, var = q.mean, (2 * q.log_std).exp()
    closed = (0.5 * (mean.pow(2) + var - 1 - var.log())).sum(dim=1).mean()
    assert kl.shape == (6,) and float(kl.sum()) == pytest.approx(float(closed), rel=1e-5)
    prior = type(q)([], torch.zeros(4, 6), torch.zeros(4, 6))
    assert float(model.kl_per_dim(prior).abs().max()) == 0


def test_training_logs_the_elbo_terms_per_dimension_kl_and_the_bound_of_each_half(tmp_path):
    model = _vae(lambda_info=1.0, likelihood="gaussian")
    trainer = fit(model, _data(), max_steps=2, root=tmp_path)
    logged = set(trainer.logged_metrics)
    assert {"loss/recon", "loss/kl", "mi/regularized", "mi/unregularized", "kl/z0", "kl/z5", "mi/z0"} <= logged


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"mi_dims": [7]}, "mi_dims"), ({"likelihood": "poisson"}, "likelihood"), ({"lambda_info": -1}, "lambda_info")],
)
def test_bad_vae_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _vae(**kwargs)


def test_the_vae_code_must_be_a_normal_z():
    with pytest.raises(ValueError, match="z_prior normal"):
        VAE(LatentSpec(z_dim=4, categorical=[10], continuous=0), **NETS)


def test_a_collapsed_posterior_has_no_active_dimension_and_a_used_one_counts():
    from infogan_pl.metrics.codes import posterior_metrics

    model = _vae().eval()
    images = torch.rand(20, 1, 28, 28) * 2 - 1
    with torch.no_grad():  # q(z|x) = N(0, 1) whatever x: the posterior is the prior, KL 0 everywhere
        model.to_code.weight.zero_()
        model.to_code.bias.zero_()
    collapsed = posterior_metrics(model, images)
    assert collapsed["metric/active_dims"] == 0 and collapsed["metric/recon"] > 0
    with torch.no_grad():  # dimension 0's mean at 1: KL ½ nat, above the 0.1 threshold
        model.to_code.bias[0] = 1.0
    assert posterior_metrics(model, images)["metric/active_dims"] == 1
