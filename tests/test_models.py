import math

import pytest
import torch

from infogan_pl.data import BasicPropDataModule
from infogan_pl.latent import LatentSpec
from infogan_pl.models import GAN, InfoGAN
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
    trainer = fit(model, _data(), max_steps=2, root=tmp_path)
    logged = set(trainer.logged_metrics)
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
    assert expected | {"d/fake_over_real", "noise/std"} <= logged
    assert trainer.logged_metrics["mi/cat0"] <= math.log(10)


def test_step_metrics_are_computed_only_on_the_batches_the_loggers_write(tmp_path, monkeypatch):
    model = InfoGAN(SPEC)
    calls = []
    monkeypatch.setattr(model, "log", lambda name, value, **kw: calls.append((model.iteration, name)))
    fit(model, _data(), max_steps=2 * 12, root=tmp_path, log_every=4)
    assert sorted({it for it, _ in calls}) == [4, 8, 12]  # iterations done when batches 4, 8, 12 are written
    assert {name for _, name in calls} >= {"loss/d", "loss/g", "mi/total"}


def test_a_non_finite_loss_stops_training_at_that_iteration_and_saves_the_last_finite_state(tmp_path, caplog):
    torch.manual_seed(0)
    model = InfoGAN(SPEC)
    model.discriminator.head.register_forward_hook(lambda m, i, out: out * math.nan if model.iteration >= 2 else out)
    trainer = fit(model, _data(), max_steps=100, root=tmp_path)
    assert model.nan_iteration == 2 and trainer.global_step == 4
    assert "Non-finite loss/d (nan) at iteration 2" in model.nan_message
    assert "\n" not in model.nan_message and "Non-finite loss/d" in caplog.text
    path = tmp_path / "checkpoints" / "last_finite.ckpt"
    state = torch.load(path, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    for name, value in model.state_dict().items():
        assert torch.equal(state[name], value), f"{name} moved after the non-finite loss"


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
