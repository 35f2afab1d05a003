"""The stabilizers, each a unit: R1, spectral norm, the average of G's weights, resize-convolution, λ warm-up,
the learning rates' linear decay."""

import logging

import pytest
import torch
from torch import nn

from infogan_pl.data import BasicPropDataModule
from infogan_pl.ema import WeightEMA, warmed_decay
from infogan_pl.losses import R1Penalty, warmup_factor
from infogan_pl.models import VAE, InfoGAN
from infogan_pl.nets import Discriminator, Generator
from infogan_pl.nets.conv import ConvDiscriminator, ConvGenerator
from infogan_pl.nets.mnist import AddCoords, spectral_norm_layers
from infogan_pl.progress import planned_iterations
from tests.helpers import SPEC, fit

TINY_NETS = {
    "generator": lambda **kw: Generator(hidden=32, **kw),
    "discriminator": lambda **kw: Discriminator(hidden=32, **kw),
}


def _tiny_d() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 1))


def test_r1_is_half_gamma_times_the_mean_squared_input_gradient_of_each_real_image():
    d, x = _tiny_d(), torch.randn(4, 1, 3, 4)
    real = x.clone().requires_grad_(True)
    penalty = R1Penalty(gamma=3.0)(d(real).squeeze(1), real, iteration=0)
    per_image = []
    for i in range(4):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(d(xi).sum(), xi)
        per_image.append(g.pow(2).sum())
    assert penalty.item() == pytest.approx(1.5 * torch.stack(per_image).mean().item(), rel=1e-6)


def test_r1_gradient_with_respect_to_the_weights_matches_autograd_of_the_explicit_penalty():
    d, x = _tiny_d(), torch.randn(4, 1, 3, 4)
    real = x.clone().requires_grad_(True)
    R1Penalty(gamma=2.0)(d(real).squeeze(1), real, iteration=0).backward()
    ours = [p.grad for p in d.parameters()]
    assert ours[-1] is None  # the output bias moves no input gradient
    d.zero_grad(set_to_none=True)
    w1, b1, w2 = d[1].weight, d[1].bias, d[3].weight  # D(x) = w2 tanh(w1 x + b1) + b2: ∇_x D = w1^T (w2 ⊙ (1 - h²))
    h = torch.tanh(x.flatten(1) @ w1.T + b1)
    grad_x = ((1 - h**2) * w2) @ w1
    explicit = grad_x.pow(2).sum(1).mean()  # γ/2 = 1
    explicit.backward()
    for mine, reference in zip(ours[:-1], [p.grad for p in d.parameters()][:-1], strict=True):
        torch.testing.assert_close(mine, reference)


def test_lazy_r1_applies_every_n_iterations_with_n_times_the_weight_and_gamma_zero_is_off():
    d, x = _tiny_d(), torch.randn(4, 1, 3, 4).requires_grad_(True)
    every = R1Penalty(gamma=1.0, every=4)
    assert [every.due(i) for i in range(5)] == [True, False, False, False, True]
    assert every(d(x).squeeze(1), x, 1).item() == 0.0
    assert every(d(x).squeeze(1), x, 0).item() == pytest.approx(4 * R1Penalty(1.0)(d(x).squeeze(1), x, 0).item())
    assert not R1Penalty(0.0).due(0)
    with pytest.raises(ValueError, match="model.r1_gamma"):
        R1Penalty(-1.0)


def test_r1_trains_the_discriminator_through_the_shared_trunk_under_bf16_autocast(tmp_path):
    model = InfoGAN(SPEC, r1_gamma=10.0, **TINY_NETS)
    data = BasicPropDataModule("line", train_size=96, val_size=32, batch_size=16, noise="foreground")
    fit(model, data, max_steps=4, root=tmp_path, precision="bf16-mixed")
    assert model.iteration == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_spectral_norm_keeps_every_layers_largest_singular_value_near_one_after_power_iterations():
    torch.manual_seed(0)
    d = Discriminator(hidden=64, spectral_norm=True)
    x = torch.randn(16, 1, 28, 28)
    for _ in range(30):  # each training forward pass runs one power iteration
        d(x)
    layers = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == 4  # two convs, the FC layer and the D head
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.02)
    plain = Discriminator(hidden=64)
    assert torch.linalg.matrix_norm(plain.trunk[0].weight.detach().flatten(1), ord=2) < 0.8  # N(0, 0.02) init


def test_spectral_norm_wraps_the_colour_discriminator_and_works_without_batch_norm():
    d = ConvDiscriminator(spectral_norm=True, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    assert sum(hasattr(m, "parametrizations") for m in d.modules()) == 4
    assert d(torch.randn(2, 3, 32, 32))[0].shape == (2,)
    assert spectral_norm_layers(nn.Sequential(nn.ReLU())) is not None  # nothing to wrap: unchanged


def test_resize_convolution_generators_draw_the_right_size_without_transposed_convolutions():
    g = Generator(input_dim=74, upsample="resize")
    assert g(torch.randn(3, 74)).shape == (3, 1, 28, 28)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert any(isinstance(m, nn.Upsample) for m in g.modules())
    assert ConvGenerator(input_dim=10, upsample="resize")(torch.randn(2, 10)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="model.generator.upsample"):
        Generator(input_dim=74, upsample="bilinear")


def test_coord_conv_gives_each_upsampling_layer_the_pixel_coordinates_of_its_input():
    x = torch.zeros(2, 5, 7, 9)
    out = AddCoords()(x)
    assert out.shape == (2, 7, 7, 9) and torch.equal(out[:, :5], x)
    rows, cols = out[0, 5], out[0, 6]
    assert torch.equal(rows[:, 0], torch.linspace(-1, 1, 7)) and torch.equal(rows[0], torch.full((9,), -1.0))
    assert torch.equal(cols[0], torch.linspace(-1, 1, 9)) and torch.equal(cols[:, 0], torch.full((7,), -1.0))
    for upsample in ("transposed", "resize"):
        g = Generator(input_dim=74, upsample=upsample, coord_conv=True)
        assert g(torch.randn(3, 74)).shape == (3, 1, 28, 28)
        assert sum(isinstance(m, AddCoords) for m in g.modules()) == 2  # before each of the two upsamplings
    assert ConvGenerator(input_dim=10, coord_conv=True)(torch.randn(2, 10)).shape == (2, 3, 32, 32)
    assert not any(isinstance(m, AddCoords) for m in Generator(input_dim=74).modules())  # off: the paper's G


def test_the_average_copies_before_start_and_then_moves_by_one_minus_the_warmed_up_decay():
    live = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = WeightEMA(live, decay=0.9, start=2)
    assert not any(p.requires_grad for p in ema.parameters())
    with torch.no_grad():
        live[0].weight.add_(1.0)
    live(torch.randn(4, 3))  # moves the batch-norm statistics
    ema.update(live, iteration=1)  # before start: a copy
    assert torch.equal(ema.shadow[0].weight, live[0].weight)
    assert torch.equal(ema.shadow[1].running_mean, live[1].running_mean)
    before = ema.shadow[0].weight.clone()
    with torch.no_grad():
        live[0].weight.add_(1.0)
    ema.update(live, iteration=2)  # the first average step: beta = min(0.9, 1/10)
    torch.testing.assert_close(ema.shadow[0].weight, 0.1 * before + 0.9 * live[0].weight)
    assert [warmed_decay(0.999, n) for n in (0, 8, 1000)] == [0.1, 0.5, 1001 / 1010]
    assert warmed_decay(0.999, 10_000) == 0.999 and warmed_decay(0.9, 80) == 0.9
    with pytest.raises(ValueError, match="model.g_ema_decay"):
        WeightEMA(live, decay=1.0)


def _ema_model():
    torch.manual_seed(0)
    return InfoGAN(SPEC, g_ema_decay=0.9, g_ema_start=1, **TINY_NETS)


def _line_data():
    return BasicPropDataModule("line", train_size=96, val_size=32, batch_size=16, noise="foreground")


def test_the_average_of_g_is_what_the_model_generates_with_and_it_resumes_bitwise(tmp_path):
    straight = _ema_model()
    fit(straight, _line_data(), max_steps=8, root=tmp_path / "a")
    z = torch.randn(5, SPEC.input_dim)
    straight.eval()
    assert torch.equal(straight.generate(z), straight.g_ema.shadow(z))
    assert not torch.equal(straight.generate(z), straight.generator(z))

    # the shadow is part of the model's state: checkpoints hold it (tests/test_resume.py resumes a run with every
    # stabilizer on and compares its final state bitwise with the uninterrupted run's)
    assert {k for k in straight.state_dict() if k.startswith("g_ema.shadow.")}
    copy = _ema_model()
    copy.load_state_dict(straight.state_dict())
    for (name, a), b in zip(straight.g_ema.state_dict().items(), copy.g_ema.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_lambda_warmup_ramps_linearly_then_holds():
    assert [warmup_factor(i, 4) for i in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0
    model = InfoGAN(SPEC, lambda_info=2.0, lambda_warmup=10)
    model._iteration = 4
    assert model.info_weight == pytest.approx(1.0)
    model._iteration = 50
    assert model.info_weight == 2.0
    with pytest.raises(ValueError, match="model.lambda_warmup"):
        InfoGAN(SPEC, lambda_warmup=-1)


def test_the_vae_ramps_its_information_weight_too():
    from infogan_pl.latent import LatentSpec

    spec = LatentSpec(z_dim=4, z_prior="normal", categorical=[], continuous=0)
    ramped, full = (VAE(spec, lambda_info=1.0, lambda_warmup=w, seed=0, **TINY_NETS) for w in (1000, 0))
    full.load_state_dict(ramped.state_dict())
    for model in (ramped, full):  # a bound of -1000 nats, as at initialization
        model.information = lambda z, with_grad_on: {"regularized": torch.tensor(-1000.0)}
    batch = (torch.rand(8, 1, 28, 28) * 2 - 1, torch.zeros(8, 1))
    low, high = (m.training_step(batch, 0).item() for m in (ramped, full))
    assert high - low == pytest.approx(1000.0 * (1 - 1 / 1000), rel=1e-4)  # iteration 0 of 1000: λ / 1000


def _recording_rates(**kwargs) -> tuple[InfoGAN, list[list[float]]]:
    """A tiny InfoGAN that records its optimizers' learning rates (D's, G's) after every iteration."""
    torch.manual_seed(0)
    model, seen = InfoGAN(SPEC, lr_d=2e-4, lr_g=1e-3, **TINY_NETS, **kwargs), []
    model.on_train_batch_end = lambda *args: seen.append([o.param_groups[0]["lr"] for o in model.optimizers()])
    return model, seen


def test_the_learning_rates_decay_linearly_to_their_end_factor_over_the_planned_iterations(tmp_path):
    model, seen = _recording_rates(lr_end_factor=0.1)
    fit(model, _line_data(), max_steps=8, root=tmp_path)  # 8 optimizer steps: 4 iterations of a D and a G step
    assert planned_iterations(model.trainer, model) == 4
    # stepped after each iteration: 1 - 0.9 * k / 4 of each rate after the k-th, the end factor after the last
    assert len(seen) == 4
    for k, (lr_d, lr_g) in enumerate(seen, start=1):
        factor = 1 - 0.9 * k / 4
        assert (lr_d, lr_g) == (pytest.approx(2e-4 * factor), pytest.approx(1e-3 * factor)), k
    # the rates reached are training metrics (metrics.csv, W&B): lr/d (D's and Q's optimizer), lr/g
    assert (model.step_metrics["lr/d"], model.step_metrics["lr/g"]) == (pytest.approx(2e-5), pytest.approx(1e-4))
    # the schedule's position is in the checkpoint: a run resumed at iteration 2 goes on where it stopped
    from lightning.pytorch.callbacks import ModelCheckpoint

    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)
    straight, _ = _recording_rates(lr_end_factor=0.1)
    fit(straight, _line_data(), 8, tmp_path / "a", callbacks=[saver], enable_checkpointing=True)
    resumed, seen_after = _recording_rates(lr_end_factor=0.1)
    fit(resumed, _line_data(), 8, tmp_path / "b", ckpt_path=str(tmp_path / "ckpt" / "epoch=0-step=4.ckpt"))
    assert seen_after == seen[2:]
    # a budget in epochs: the schedule spans their batches (96 images / 16 = 6 a pass), planned before any is loaded
    by_epochs, seen_epochs = _recording_rates(lr_end_factor=0.1)
    fit(by_epochs, _line_data(), max_steps=-1, root=tmp_path / "e", max_epochs=1)
    assert len(seen_epochs) == 6 and seen_epochs[-1] == [pytest.approx(2e-5), pytest.approx(1e-4)]
    constant, seen_constant = _recording_rates()  # off (1, the default): constant rates, no scheduler
    fit(constant, _line_data(), max_steps=4, root=tmp_path / "c")
    assert seen_constant == [[2e-4, 1e-3]] * 2 and not constant.lr_schedulers()
    assert "lr/d" not in constant.step_metrics
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="model.lr_end_factor"):
            InfoGAN(SPEC, lr_end_factor=bad)
    with pytest.raises(ValueError, match=r"set one \(recipe.lr_end_factor=1 turns the decay off\)"):
        InfoGAN(SPEC, lr_end_factor=0.5, scheduler=torch.optim.lr_scheduler.ConstantLR)
    with pytest.raises(ValueError, match="model.scheduler must be null or a partial"):
        InfoGAN(SPEC, scheduler="foo")


def test_the_decay_can_wait_at_constant_rates_until_lr_decay_start_and_resumes_across_it(tmp_path, caplog):
    model, seen = _recording_rates(lr_end_factor=0.1, lr_decay_start=2)
    fit(model, _line_data(), max_steps=12, root=tmp_path)  # 6 iterations: 2 at constant rates, then 4 of decay
    factors = [1, 1, 1 - 0.9 / 4, 1 - 0.9 * 2 / 4, 1 - 0.9 * 3 / 4, 0.1]
    assert seen == [[pytest.approx(2e-4 * f), pytest.approx(1e-3 * f)] for f in factors]
    # a checkpoint inside the constant stretch resumes into the same decay (the schedule's position is saved)
    from lightning.pytorch.callbacks import ModelCheckpoint

    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    straight, _ = _recording_rates(lr_end_factor=0.1, lr_decay_start=2)
    fit(straight, _line_data(), 12, tmp_path / "a", callbacks=[saver], enable_checkpointing=True)
    resumed, seen_after = _recording_rates(lr_end_factor=0.1, lr_decay_start=2)
    fit(resumed, _line_data(), 12, tmp_path / "b", ckpt_path=str(tmp_path / "ckpt" / "epoch=0-step=2.ckpt"))
    assert seen_after == seen[1:]
    with pytest.raises(ValueError, match="model.lr_decay_start must be >= 0"):
        InfoGAN(SPEC, lr_end_factor=0.1, lr_decay_start=-1)
    # a run that ends before the decay would start (a preset's short smoke test) trains at constant rates
    late, seen_late = _recording_rates(lr_end_factor=0.1, lr_decay_start=6)
    with caplog.at_level(logging.WARNING, logger="infogan_pl.models.gan"):
        fit(late, _line_data(), max_steps=12, root=tmp_path / "late")
    assert seen_late == [[2e-4, 1e-3]] * 6
    assert "model.lr_decay_start=6 is past this run's 6 iterations: the learning rates stay constant" in caplog.text


def test_every_recipe_is_named_in_the_help_and_the_readme():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    help_text = (root / "conf" / "hydra" / "default.yaml").read_text()
    readme = (root / "README.md").read_text()
    for recipe in sorted(p.stem for p in (root / "conf" / "recipe").glob("*.yaml")):
        assert recipe in help_text, f"--help does not name recipe {recipe}"
        named = f"recipe={recipe}`" in readme or f"conf/recipe/{recipe}.yaml" in readme
        assert named, f"the README does not name recipe={recipe}"


def test_the_recipes_compose_per_data_set_and_recipe_study_on_the_command_line_wins_over_a_preset(tmp_path):
    from infogan_pl.config import compose

    def stabilizers(*overrides):
        cfg = compose("config", list(overrides))
        return cfg.model.discriminator.norm, cfg.noise.std, cfg.model.g_ema_decay

    assert stabilizers("experiment=basicprop_line") == ("batch", 0.1, 0.0)
    assert stabilizers("experiment=basicprop_rect") == ("layer", 0.1, 0.999)
    assert stabilizers("experiment=basicprop_rect_slow_d") == ("layer", 0.1, 0.999)
    assert stabilizers("experiment=basicprop_rect_two_cat") == ("batch", 0.1, 0.999)
    assert stabilizers("experiment=basicprop_pp_diameter_ratio") == ("layer", 0.1, 0.0)
    assert stabilizers("experiment=basicprop_pp_alternating_shapes") == ("layer", 0.1, 0.999)
    assert stabilizers("experiment=basicprop_pp_translation") == ("layer", 0.1, 0.999)
    translation = compose("config", ["experiment=basicprop_pp_translation"])
    assert translation.model.generator.coord_conv and translation.latent.z_dim == 0
    assert translation.model.lr_end_factor == 0.05
    assert compose("config", ["experiment=basicprop_pp_translation", "recipe=study"]).model.lr_end_factor == 1
    shapes = compose("config", ["experiment=basicprop_pp_alternating_shapes_invariant"])  # the base preset + t
    assert (shapes.model.consistency, shapes.model.moved_fake, shapes.model.augment.scale) == (1, 1, 0.4)
    assert shapes.model.discriminator.norm == "layer" and list(shapes.latent.categorical) == [4]
    assert (shapes.model.lr_end_factor, shapes.model.lr_decay_start) == (0.05, 500)  # the base preset's recipe
    two_cat = compose("config", ["experiment=basicprop_rect_two_cat"])
    assert two_cat.model.generator.coord_conv and two_cat.latent.continuous == 0
    assert (two_cat.model.lr_end_factor, two_cat.model.lr_decay_start) == (0.05, 500)  # constant, then decaying
    assert not compose("config", ["experiment=basicprop_rect_two_cat", "recipe=study"]).model.generator.coord_conv
    presets = ("basicprop_line", "basicprop_rect", "basicprop_rect_two_cat", "basicprop_pp_alternating_shapes")
    presets += ("basicprop_pp_translation",)
    for preset in presets:
        assert stabilizers(f"experiment={preset}", "recipe=study") == ("batch", 0.0, 0.0)
    assert compose("config", ["experiment=mnist_vae_mi"]).model.lambda_warmup == 500
    assert compose("config", ["experiment=mnist_vae_mi", "recipe=study"]).model.lambda_warmup == 0
