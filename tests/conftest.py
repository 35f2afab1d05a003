"""Shared fixtures."""

from pathlib import Path

import pytest
import torch

from infogan_pl.metrics.lenet import mnist_tensors, save_lenet, train_lenet
from tests.celeba_layout import write_celeba
from tests.helpers import write_mnist_idx


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: one thread each, the workers share the cores
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A data dir holding a tiny MNIST (256 train / 128 test) in <dir>/MNIST/raw, a LeNet-5 cached for it (one
    epoch: it labels, but not well) and a 12-image CelebA layout."""
    root = tmp_path_factory.mktemp("data")
    write_mnist_idx(root / "MNIST" / "raw")
    train, test = mnist_tensors(root)
    model, accuracy = train_lenet(train, test, epochs=1)
    save_lenet(model, accuracy, len(test[1]), root)
    write_celeba(root)
    return root
