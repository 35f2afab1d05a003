"""Shared fixtures."""

from pathlib import Path

import pytest

from tests.helpers import write_mnist_idx


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A data dir holding a tiny MNIST (256 train / 128 test) in <dir>/MNIST/raw."""
    root = tmp_path_factory.mktemp("data")
    write_mnist_idx(root / "MNIST" / "raw")
    return root
