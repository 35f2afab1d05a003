import math

import pytest
import torch

from infogan_pl.data.celeba import CelebADataModule
from infogan_pl.nets.conv import ConvDiscriminator, ConvGenerator
from infogan_pl.train import train
from tests.celeba_layout import write_celeba, write_folder
from tests.helpers import compose_config, tiny_overrides


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory):
    return write_celeba(tmp_path_factory.mktemp("celeba_root"))


@pytest.mark.parametrize("preprocess", [True, False])
def test_torchvision_layout_loads_official_splits_with_40_attributes(celeba_root, preprocess):
    dm = CelebADataModule(str(celeba_root), batch_size=4, verify_md5=False, preprocess=preprocess, num_workers=0)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set)) == (8, 2)
    images, attrs = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.shape == (4, 3, 32, 32) and attrs.shape == (4, 40)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0.1
    assert set(attrs.unique().tolist()) <= {0, 1} and len(dm.factor_names) == 40 and "Eyeglasses" in dm.factor_names


def test_preprocessing_writes_a_uint8_cache_that_later_runs_memory_map(celeba_root):
    dm = CelebADataModule(str(celeba_root), batch_size=4, image_size=64, verify_md5=False, num_workers=0)
    dm.setup()
    cache = celeba_root / "celeba" / "celeba_train_64px_crop140.pt"
    assert cache.is_file() and dm.train_set.images.dtype == torch.uint8 and dm.train_set.images.shape[1:] == (3, 64, 64)
    raw = CelebADataModule(str(celeba_root), image_size=64, verify_md5=False, preprocess=False).raw_split("train")
    assert torch.allclose(dm.train_set[torch.tensor([0])][0][0], raw[0][0], atol=1 / 127.5 + 1e-6)


def test_image_folder_source_splits_numbered_files_like_celeba(tmp_path):
    folder = write_folder(tmp_path / "img_align_celeba")
    dm = CelebADataModule(str(folder), source="image_folder", batch_size=4, preprocess=False, num_workers=0)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set)) == (8, 2)
    images, attrs = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 32, 32) and attrs.shape == (4, 0)


def test_a_non_image_file_in_the_folder_is_named(tmp_path):
    folder = write_folder(tmp_path / "faces", n=4)
    (folder / "000005.jpg").write_text("not a jpeg")
    dm = CelebADataModule(str(folder), source="image_folder", batch_size=2, preprocess=False, num_workers=0)
    dm.setup()
    with pytest.raises(RuntimeError, match="000005.jpg is not a readable image"):
        list(dm.train_dataloader())


def test_missing_celeba_files_are_listed_with_what_to_do(tmp_path):
    (tmp_path / "celeba" / "img_align_celeba").mkdir(parents=True)
    dm = CelebADataModule(str(tmp_path), verify_md5=False, num_workers=0)
    with pytest.raises(RuntimeError) as err:
        dm.setup()
    msg = str(err.value)
    assert "list_eval_partition.txt" in msg and "by hand" in msg and "\n" not in msg


@pytest.mark.parametrize("size", [32, 64])
def test_conv_networks_map_228_inputs_to_colour_images_and_back(size):
    g, d = ConvGenerator(228, 3, size), ConvDiscriminator(3, size)
    x = g(torch.randn(4, 228))
    logit, features = d(x)
    assert x.shape == (4, 3, size, size) and logit.shape == (4,) and features.shape == (4, d.feature_dim)


def test_a_tiny_celeba_infogan_run_trains_and_saves_the_code_attribute_table(tmp_path, celeba_root):
    overrides = tiny_overrides("celeba_infogan", celeba_root)
    value = train(compose_config(overrides, tmp_path))
    assert math.isfinite(value)
    table = (tmp_path / "figures" / "mi_table.csv").read_text().splitlines()
    assert table[0].startswith("code,5_o_Clock_Shadow") and len(table) == 11  # ten codes x 40 attributes
    assert len(list((tmp_path / "traversals").glob("iter*_cat9_samples.png"))) >= 1
