"""Shared fixtures."""

from pathlib import Path

import pytest

from tests.celeba_layout import write_celeba
from tests.helpers import write_mnist_idx


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A data dir holding a tiny MNIST (256 train / 128 test) in <dir>/MNIST/raw and a 12-image CelebA layout."""
    root = tmp_path_factory.mktemp("data")
    write_mnist_idx(root / "MNIST" / "raw")
    write_celeba(root)
    return root
