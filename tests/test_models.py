import math

import pytest
import torch

from infogan_pl.data import BasicPropDataModule
from infogan_pl.latent import LatentSpec
from infogan_pl.models import GAN, InfoGAN
from infogan_pl.noise import InstanceNoise
from tests.helpers import SPEC, StepRecorder, fit


def _data():
    return BasicPropDataModule("line", train_size=64, val_size=32, batch_size=16, noise="foreground")


def _names(model, prefix):
    return {n for n, _ in model.named_parameters() if n.startswith(prefix)}


def test_infogan_d_q_step_updates_only_d_and_q_and_g_step_updates_only_g(tmp_path):
    torch.manual_seed(0)
    model = InfoGAN(SPEC)
    recorder = StepRecorder()
    fit(model, _data(), max_steps=2, root=tmp_path, callbacks=[recorder])
    records = recorder.records
    assert [network for network, _ in records] == ["d", "g"]
    d_q_step, g_step = (changed for _, changed in records)
    d_and_q = _names(model, "discriminator.") | _names(model, "q_head.")
    assert (
        d_q_step <= d_and_q and d_q_step & _names(model, "q_head.") and d_q_step & _names(model, "discriminator.trunk")
    )
    assert "discriminator.head.weight" in d_q_step
    assert g_step <= _names(model, "generator.") and g_step


def test_gan_has_no_q_head_and_alternates_d_then_g(tmp_path):
    torch.manual_seed(0)
    model = GAN(LatentSpec(z_dim=8, categorical=[], continuous=0))
    recorder = StepRecorder()
    fit(model, _data(), max_steps=4, root=tmp_path, callbacks=[recorder])
    steps = recorder.records
    assert [network for network, _ in steps] == ["d", "g", "d", "g"]
    records = [changed for _, changed in steps]
    assert [bool(r <= _names(model, "discriminator.")) for r in records] == [True, False, True, False]
    assert all(r <= _names(model, "generator.") for r in records[1::2])
    assert model.iteration == 2


def _grads_after(loss, *modules):
    loss.backward()
    return [any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters()) for m in modules]


def _fake_features(model):
    latent_input, codes = model.sample(16)
    _, features = model.discriminator(model.generator(latent_input))
    return features, codes


def test_information_term_trains_trunk_by_default():
    torch.manual_seed(0)
    model = InfoGAN(SPEC, lambda_info=1.0)
    features, codes = _fake_features(model)
    loss, _ = model.q_loss(features, codes)
    assert _grads_after(loss, model.q_head, model.discriminator.trunk) == [True, True]


def test_information_term_can_be_kept_off_the_trunk():
    torch.manual_seed(0)
    model = InfoGAN(SPEC, lambda_info=1.0, mi_trains_trunk=False)
    features, codes = _fake_features(model)
    loss, _ = model.q_loss(features, codes)
    assert _grads_after(loss, model.q_head, model.discriminator.trunk, model.generator) == [
        True,
        False,
        False,
    ]


def test_information_term_reaches_the_generator_in_the_g_step():
    torch.manual_seed(0)
    model = InfoGAN(SPEC, lambda_info=1.0)
    features, codes = _fake_features(model)
    assert _grads_after(model.generator_info_loss(features, codes), model.generator) == [True]


def test_lambda_zero_probe_trains_q_on_detached_features_and_gives_g_no_gradient():
    torch.manual_seed(0)
    model = InfoGAN(SPEC, lambda_info=0.0)
    features, codes = _fake_features(model)
    loss_q, mi = model.q_loss(features, codes)
    assert loss_q.item() == pytest.approx(-mi["total"].item())  # weight 1: the probe still learns
    g_loss = model.generator_info_loss(features, codes)
    assert g_loss.item() == 0 and not g_loss.requires_grad
    assert _grads_after(loss_q, model.q_head, model.discriminator.trunk, model.generator) == [
        True,
        False,
        False,
    ]


def test_training_logs_losses_mi_per_code_and_discriminator_probabilities(tmp_path):
    torch.manual_seed(0)
    model = InfoGAN(SPEC)
    fit(model, _data(), max_steps=2, root=tmp_path)
    logged = set(model.step_metrics)
    expected = {
        "loss/d",
        "loss/g",
        "loss/q",
        "mi/cat0",
        "mi/cont0",
        "mi/cont1",
        "mi/total",
        "d/real",
        "d/fake",
    }
    assert expected | {"d/fake_over_real", "noise/std", "mi/cont0_mse", "mi/cont0_opt", "iteration"} <= logged
    mse = model.step_metrics["mi/cont0_mse"]  # the σ-optimal bound is ln 2 - ½ ln(2πe·MSE)
    assert model.step_metrics["mi/cont0_opt"] == pytest.approx(
        math.log(2) - 0.5 * math.log(2 * math.pi * math.e * mse), rel=1e-4
    )


def test_step_metrics_are_computed_only_on_the_batches_the_loggers_write(tmp_path, monkeypatch):
    model = InfoGAN(SPEC)
    calls = []
    monkeypatch.setattr(model, "log", lambda name, value, **kw: calls.append((model.iteration, name)))
    fit(model, _data(), max_steps=2 * 12, root=tmp_path, log_every=4)
    assert sorted({it for it, _ in calls}) == [4, 8, 12]  # iterations done when batches 4, 8, 12 are written
    assert {name for _, name in calls} >= {"loss/d", "loss/g", "mi/total"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"lambda_info": -1.0}, "lambda_info"), ({"lr_q": 0.0}, "lr_q"), ({"lr_d": -1e-4}, "lr")],
)
def test_bad_model_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InfoGAN(SPEC, **kwargs)


def test_infogan_without_codes_is_refused():
    with pytest.raises(ValueError, match="needs latent codes"):
        InfoGAN(LatentSpec(z_dim=8, categorical=[], continuous=0))


def test_lambda_zero_leaves_d_and_g_bitwise_unchanged_by_lr_q_over_a_whole_trajectory(tmp_path):
    """The probe's isolation: Q's learning rate changes Q, and nothing D or G do, step after step."""
    models = []
    for lr_q in (2e-4, 5e-3):
        torch.manual_seed(0)
        model = InfoGAN(SPEC, lambda_info=0.0, lr_q=lr_q)
        fit(model, _data(), max_steps=2 * 12, root=tmp_path / str(lr_q))
        models.append(dict(model.named_parameters()))
    a, b = models
    assert all(torch.equal(a[n], b[n]) for n in a if n.startswith(("generator.", "discriminator.")))
    assert not all(torch.equal(a[n], b[n]) for n in a if n.startswith("q_head."))


def test_instance_noise_reaches_real_and_generated_images_in_both_steps(tmp_path):
    seen = []

    class Spy(InstanceNoise):
        def __call__(self, x, step, generator=None):
            seen.append((step, x.requires_grad, x.grad_fn is not None))
            return super().__call__(x, step, generator)

    torch.manual_seed(0)
    model = InfoGAN(SPEC, noise=Spy(std=0.1))
    fit(model, _data(), max_steps=2, root=tmp_path)
    # D step: real (no graph), fake.detach() (no graph); G step: fake (through G's graph)
    assert [(s, graph) for s, _, graph in seen] == [(0, False), (0, False), (0, True)]


def test_the_step_metrics_reach_the_loggers_at_the_written_iterations(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(0)
    model = InfoGAN(SPEC)
    logger = CSVLogger(tmp_path, name="csv", version="")
    fit(model, _data(), max_steps=2 * 8, root=tmp_path, log_every=4, logger=logger)
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    header, steps = rows[0].split(","), [int(r.split(",")[rows[0].split(",").index("step")]) for r in rows[1:]]
    assert steps == [3, 7] and {"loss/d", "mi/cat0", "d/fake_over_real", "iteration"} <= set(header)
    assert model.step_metrics["iteration"] == 8.0
