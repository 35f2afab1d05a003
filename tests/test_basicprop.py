import pytest
import torch

from infogan_pl.data import BasicProp, BasicPropDataModule
from infogan_pl.data.basicprop import classes
from infogan_pl.data.sampling import EpochBatchSampler


def _image(ds: BasicProp, index: int, epoch: int = 0) -> torch.Tensor:
    images, _ = ds[torch.tensor([epoch * len(ds) + index])]
    return images[0, 0]


def _foreground_columns(img: torch.Tensor) -> list[int]:
    return torch.nonzero((img > 0).any(0)).ravel().tolist()


@pytest.mark.parametrize(("cls", "first"), [(0, 3), (3, 9), (9, 21)])
def test_line_class_occupies_four_columns_from_3_plus_2y_over_all_rows(cls, first):
    img = _image(BasicProp("line", size=100), cls)
    assert _foreground_columns(img) == list(range(first, first + 4))
    assert bool((img[:, first : first + 4] == 1).all())  # all 28 rows
    assert int((img == 1).sum()) == 28 * 4 and int((img == -1).sum()) == 28 * 24


def test_line_class_3_occupies_columns_9_to_12():
    assert _foreground_columns(_image(BasicProp("line", size=10), 3)) == [9, 10, 11, 12]


@pytest.mark.parametrize(("i", "j"), [(0, 0), (0, 9), (4, 7), (9, 2), (9, 9)])
def test_rectangles_have_left_and_right_bars_of_heights_3_plus_2k_from_row_3(i, j):
    ds = BasicProp("rectangles", size=100)
    img = _image(ds, 10 * i + j)
    left, right = img[:, 3:13] > 0, img[:, 15:25] > 0
    assert bool(left.all(1)[3 : 3 + 3 + 2 * i].all()) and int(left.any(1).sum()) == 3 + 2 * i
    assert bool(right.all(1)[3 : 3 + 3 + 2 * j].all()) and int(right.any(1).sum()) == 3 + 2 * j
    assert int((img > 0).sum()) == 10 * (3 + 2 * i) + 10 * (3 + 2 * j)
    _, factors = ds[torch.tensor([10 * i + j])]
    assert factors.tolist() == [[i, j]]


def test_every_class_is_balanced_and_factors_match_the_class():
    ds = BasicProp("line", size=1000)
    _, factors = ds[torch.arange(1000)]
    assert torch.bincount(factors[:, 0]).tolist() == [100] * 10


def test_foreground_noise_draws_bar_pixels_from_150_to_239_and_leaves_background_at_0():
    ds = BasicProp("line", size=100, noise="foreground")
    images, _ = ds[torch.arange(100)]
    pixels = torch.round((images + 1) / 2 * 255)
    clean, _ = BasicProp("line", size=100)[torch.arange(100)]
    fg = clean > 0
    assert pixels[fg].min() >= 150 and pixels[fg].max() <= 239
    assert pixels[fg].unique().numel() == 90  # every value of [150, 240) appears
    assert bool((pixels[~fg] == 0).all())


def test_background_noise_draws_pixels_from_0_to_59_and_leaves_the_bar_at_255():
    images, _ = BasicProp("rectangles", size=100, noise="background")[torch.arange(100)]
    clean, _ = BasicProp("rectangles", size=100)[torch.arange(100)]
    pixels, fg = torch.round((images + 1) / 2 * 255), clean > 0
    assert pixels[~fg].min() == 0 and pixels[~fg].max() == 59
    assert bool((pixels[fg] == 255).all())


def test_noise_is_fresh_per_sample_and_epoch_and_reproducible_from_seed_epoch_index():
    ds = BasicProp("line", size=100, noise="both", seed=3)
    a = _image(ds, 7, epoch=0)
    assert torch.equal(a, _image(BasicProp("line", size=100, noise="both", seed=3), 7, epoch=0))
    assert not torch.equal(a, _image(ds, 7, epoch=1))  # new epoch, new noise
    assert not torch.equal(a, _image(ds, 17, epoch=0))  # same class, other sample
    assert not torch.equal(a, _image(BasicProp("line", size=100, noise="both", seed=4), 7, epoch=0))
    batch, _ = ds[torch.tensor([5, 7, 9])]
    assert torch.equal(batch[1, 0], a)  # independent of the batch it is drawn in


def test_sampler_is_reproducible_reshuffles_per_epoch_and_shards_ranks_disjointly():
    s = EpochBatchSampler(100, 10, shuffle=True, seed=1)
    first = torch.cat(list(s))
    assert torch.equal(first, torch.cat(list(EpochBatchSampler(100, 10, shuffle=True, seed=1))))
    s.set_epoch(1)
    second = torch.cat(list(s))
    assert sorted((second - 100).tolist()) == list(range(100)) and not torch.equal(second - 100, first)
    ranks = [torch.cat(list(EpochBatchSampler(100, 10, seed=1, rank=r, world_size=2))) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 50 and not set(ranks[0].tolist()) & set(ranks[1].tolist())


def test_a_data_set_smaller_than_one_batch_is_refused():
    with pytest.raises(ValueError, match="lower data.batch_size"):
        EpochBatchSampler(10, 64)


def test_datamodule_serves_key_batches_rendered_after_transfer_with_disjoint_validation_noise():
    dm = BasicPropDataModule("line", train_size=128, val_size=64, batch_size=32, noise="foreground")
    keys = next(iter(dm.train_dataloader()))
    assert keys.shape == (32,) and keys.dtype == torch.long  # only keys cross to the device
    images, factors = dm.on_after_batch_transfer(keys, 0)
    assert images.shape == (32, 1, 28, 28) and factors.shape == (32, 1) and factors.dtype == torch.long
    assert images.min() >= -1 and images.max() <= 1
    assert len(dm.train_dataloader()) == 4 and len(dm.val_dataloader()) == 2
    val, _ = dm.val_set[next(iter(dm.val_dataloader()))]
    assert not torch.equal(val[0], dm.train_set[torch.tensor([0])][0][0])


@pytest.mark.parametrize(("kwargs", "message"), [({"variant": "circles"}, "variant"), ({"noise": "pink"}, "noise")])
def test_bad_basicprop_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BasicProp(**kwargs)


# ---------------------------------------------------------------------------------------------------- BasicProp++
def _class(variant, index):
    images, factors, _, _ = classes(variant)
    return images[index], factors[index]


def test_translation_class_x3_y5_is_an_8_px_square_with_its_top_left_corner_at_row_5_column_3():
    image, factors = _class("translation", 5 * 21 + 3)
    rows, cols = torch.nonzero(image[0] > 0, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 12, 3, 10)
    assert factors.tolist() == pytest.approx([3 / 20, 5 / 20])


def test_diameter_ratio_discs_are_d1_3_plus_k_and_d2_11_minus_k_pixels_across():
    for k in range(9):
        image, factors = _class("diameter_ratio", k)
        fg = image[0] > 0
        left, right = fg[:, :14], fg[:, 14:]
        assert int(left.any(dim=0).sum()) == 3 + k and int(right.any(dim=0).sum()) == 11 - k
        assert float(factors[0]) == pytest.approx((3 + k) / 14)


def test_colour_classes_are_a_palette_colour_times_the_brightness_on_a_disc():
    images, factors, names, kinds = classes("colour")
    assert (
        images.shape == (96, 3, 28, 28) and names == ["colour", "brightness"] and kinds == ["categorical", "continuous"]
    )
    image, (colour, brightness) = images[2 * 16 + 15], factors[2 * 16 + 15]  # blue, full brightness
    centre = image[:, 14, 14]
    assert centre.tolist() == [0.0, 0.0, 255.0] and int(colour) == 2 and float(brightness) == 1.0
    assert float(images[2 * 16][2, 14, 14]) == pytest.approx(127.5)  # brightness 0.5


def test_alternating_shapes_draw_a_bar_rectangle_disc_and_cross_of_sizes_8_to_22():
    for kind in range(4):
        sizes = [int((_class("alternating_shapes", kind * 8 + s)[0][0] > 0).sum()) for s in range(8)]
        assert sizes == sorted(sizes) and len(set(sizes)) == 8  # each size step adds pixels
    bar, _ = _class("alternating_shapes", 0 * 8 + 7)
    rows, cols = torch.nonzero(bar[0] > 0, as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 22 and int(cols.max() - cols.min() + 1) == 4
    cross, factors = _class("alternating_shapes", 3 * 8 + 0)
    assert bool(cross[0, 14, 14] > 0) and not bool(cross[0, 10, 10] > 0) and factors.tolist() == [3.0, 0.0]


@pytest.mark.parametrize("variant", ["translation", "diameter_ratio", "colour", "alternating_shapes"])
def test_every_basicprop_pp_variant_renders_its_classes_with_the_studys_noise(variant):
    dm = BasicPropDataModule(variant, train_size=256, val_size=64, batch_size=16, noise="both")
    images, factors = dm.train_set[torch.arange(64)]
    assert images.shape[1] == (3 if variant == "colour" else 1) and dm.channels == images.shape[1]
    assert float(images.min()) >= -1 and float(images.max()) <= 1 and factors.dtype == torch.float32
    assert len(dm.factor_kinds) == factors.shape[1] and "continuous" in dm.factor_kinds
