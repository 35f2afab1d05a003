import math

import pytest
import torch

from infogan_pl.latent import SWEEP_DRAWS, Codes, LatentSpec


def test_infogan_mnist_spec_has_input_dim_74_and_named_codes():
    spec = LatentSpec(z_dim=62, categorical=[10], continuous=2)
    assert spec.input_dim == 74
    assert spec.code_names == ["cat0", "cont0", "cont1"]


def test_entropies_are_ln_k_for_categorical_and_ln_2_for_uniform_codes():
    h = LatentSpec(z_dim=0, categorical=[10, 4], continuous=1).entropies()
    assert h == pytest.approx({"cat0": math.log(10), "cat1": math.log(4), "cont0": math.log(2)})


def test_sample_concatenates_z_one_hot_codes_and_continuous_codes():
    spec = LatentSpec(z_dim=5, categorical=[3, 4], continuous=2)
    x, codes = spec.sample(1000)
    assert x.shape == (1000, 5 + 3 + 4 + 2)
    assert codes.categorical.dtype == torch.long and codes.categorical.shape == (1000, 2)
    assert torch.equal(x[:, 5:8].argmax(1), codes.categorical[:, 0])
    assert torch.equal(x[:, 8:12].argmax(1), codes.categorical[:, 1])
    assert torch.equal(x[:, 5:12].sum(1), torch.full((1000,), 2.0))
    assert torch.equal(x[:, 12:], codes.continuous)
    assert codes.continuous.min() >= -1 and codes.continuous.max() <= 1
    assert codes.continuous.std() > 0.5  # U(-1, 1) has std 0.577, not N(0, 1)'s and not a constant


@pytest.mark.parametrize(
    ("prior", "check"), [("uniform", lambda z: z.abs().max() <= 1), ("normal", lambda z: z.abs().max() > 2)]
)
def test_z_prior_is_uniform_or_normal(prior, check):
    z, _ = LatentSpec(z_dim=8, z_prior=prior, categorical=[], continuous=0).sample(2000)
    assert check(z)


def test_traversal_rows_are_categorical_values_columns_sweep_a_continuous_code_with_z_fixed():
    spec = LatentSpec(z_dim=3, categorical=[10], continuous=2)
    grid = spec.traversal(cat_index=0, cont_index=1, steps=5, span=2.0).reshape(10, 5, -1)
    assert torch.equal(grid[:, :, 3:13].argmax(-1), torch.arange(10)[:, None].expand(10, 5))
    assert torch.allclose(grid[0, :, 14], torch.linspace(-2, 2, 5))
    assert torch.equal(grid[..., :3], grid[0, 0, :3].expand(10, 5, 3))  # z fixed
    assert torch.equal(grid[..., 13], torch.zeros(10, 5))  # the other code held at 0


def test_traversal_without_a_categorical_code_sweeps_the_continuous_code_along_rows_of_their_own_z():
    grid = LatentSpec(z_dim=3, categorical=[], continuous=2).traversal(cat_index=0, cont_index=1, steps=5)
    grid = grid.reshape(SWEEP_DRAWS, 5, -1)
    assert torch.allclose(grid[..., 4], torch.linspace(-2, 2, 5).expand(SWEEP_DRAWS, 5))  # cont1 swept per row
    assert torch.equal(grid[:, :, :4], grid[:, :1, :4].expand(SWEEP_DRAWS, 5, 4))  # z and cont0 fixed along a row
    assert len({tuple(row) for row in grid[:, 0, :3].tolist()}) == SWEEP_DRAWS  # and its own z in every row
    assert len(set(grid[:, 0, 3].tolist())) == SWEEP_DRAWS  # and its own draw of the other code
    # without z the rows still differ: the other code is drawn per row (it was held at 0: six identical rows)
    no_z = LatentSpec(z_dim=0, categorical=[], continuous=2).traversal(cat_index=0, cont_index=0, steps=5)
    assert len({tuple(row) for row in no_z.reshape(SWEEP_DRAWS, 5, -1)[:, 0].tolist()}) == SWEEP_DRAWS


def test_traversal_without_continuous_codes_varies_z_across_columns():
    grid = LatentSpec(z_dim=4, categorical=[10], continuous=0).traversal(cont_index=None, steps=6).reshape(10, 6, -1)
    assert not torch.equal(grid[0, 0, :4], grid[0, 1, :4])
    assert torch.equal(grid[0, :, :4], grid[9, :, :4])


def test_traversal_of_a_vanilla_gan_draws_every_cell_anew():
    # no code to sweep: the samples figure was one row of draws; now SWEEP_DRAWS rows, every cell its own z
    grid = LatentSpec(z_dim=4, categorical=[], continuous=0).traversal(cont_index=None, steps=6)
    assert grid.shape == (SWEEP_DRAWS * 6, 4)
    assert len({tuple(row) for row in grid.tolist()}) == SWEEP_DRAWS * 6


def test_assemble_inverts_sample():
    spec = LatentSpec(z_dim=2, categorical=[3], continuous=1)
    z = torch.zeros(2, 2)
    x = spec.assemble(z, Codes(torch.tensor([[2], [0]]), torch.tensor([[0.5], [-0.5]])))
    assert x.tolist() == [[0, 0, 0, 0, 1, 0.5], [0, 0, 1, 0, 0, -0.5]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"z_dim": 0, "categorical": [], "continuous": 0}, "empty"),
        ({"categorical": [1]}, ">= 2"),
        ({"z_dim": -1}, ">= 0"),
        ({"z_prior": "laplace"}, "z_prior"),
    ],
)
def test_invalid_specs_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LatentSpec(**kwargs)
