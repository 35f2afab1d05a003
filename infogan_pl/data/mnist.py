"""MNIST through torchvision's loader, held as one uint8 tensor and served in whole batches."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets import MNIST

from infogan_pl.data.sampling import BatchDataModule


class ImageTensorDataset(Dataset):
    """`dataset[keys]` -> (images (B, C, H, W) in [-1, 1], factors (B, F) long) from uint8 images (N, C, H, W)."""

    renders_batches = True  # dataset[keys (B,)] -> a whole batch

    def __init__(self, images: Tensor, factors: Tensor, factor_names: list[str]) -> None:
        self.images, self.factors, self.factor_names = images, factors, factor_names
        self._copies: dict[torch.device, ImageTensorDataset] = {}

    def to_device(self, device: torch.device) -> ImageTensorDataset:
        """This data set held on `device` (copied on first use, then reused)."""
        if self.images.device == device:
            return self
        if device not in self._copies:
            self._copies[device] = ImageTensorDataset(
                self.images.to(device), self.factors.to(device), self.factor_names
            )
        return self._copies[device]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, keys: Tensor) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(keys, dtype=torch.long, device=self.images.device) % len(self.images)
        return self.images[index].float().div_(127.5).sub_(1.0), self.factors[index]


IDX_FILES = {  # train split -> (images, labels) as torchvision names them in MNIST/raw
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def check_idx(path: Path, ndim: int) -> int:
    """Validate an IDX file's magic number and size against its header; returns the item count."""
    data = path.read_bytes()
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise RuntimeError(f"{path} is not an MNIST IDX file (wrong magic number): delete it and run `make data`.")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    expected = 4 + 4 * ndim + math.prod(dims)
    if len(data) != expected:
        raise RuntimeError(
            f"{path} is truncated or corrupt ({len(data)} bytes, its header says {expected}): "
            "delete it and run `make data`."
        )
    return dims[0]


def load_mnist(root: str | Path, train: bool, download: bool) -> ImageTensorDataset:
    """torchvision MNIST split as an ImageTensorDataset; a missing or damaged data set raises one actionable line."""
    raw = Path(root) / "MNIST" / "raw"
    images, labels = (raw / name for name in IDX_FILES[train])
    if images.is_file() and labels.is_file():
        n_images, n_labels = check_idx(images, 3), check_idx(labels, 1)
        if n_images != n_labels:
            raise RuntimeError(f"{images} holds {n_images} images but {labels} {n_labels} labels: run `make data`.")
    created = [d for d in (raw, raw.parent, Path(root)) if not d.exists()]  # deepest first
    try:
        ds = MNIST(str(root), train=train, download=download)
    except (RuntimeError, OSError, ValueError) as err:  # also urllib's errors when offline
        for d in created:  # a failed download leaves no empty directories behind
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        how = "it could not be downloaded" if download else "data.download is false"
        raise RuntimeError(
            f"MNIST not found in {raw} and {how} ({type(err).__name__}): run `make data` to import it offline, "
            "or set paths.data_dir to the directory that holds MNIST/raw."
        ) from None
    return ImageTensorDataset(ds.data.unsqueeze(1).contiguous(), ds.targets.long().unsqueeze(1), ["digit"])


class MNISTDataModule(BatchDataModule):
    """MNIST 60k train / 10k test (the test set is used for validation), images in [-1, 1]."""

    task = "mnist"

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        download: bool = True,
        train_size: int | None = None,
        val_size: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        for key, value in (("batch_size", batch_size), ("train_size", train_size), ("val_size", val_size)):
            if value is not None and value <= 0:
                raise ValueError(f"data.{key} must be > 0, got {value}.")
        if train_size is not None and batch_size > train_size:
            raise ValueError(
                f"data.batch_size={batch_size} is larger than the training set ({train_size} samples): "
                "lower data.batch_size or raise data.train_size."
            )
        self.data_dir, self.batch_size, self.download = data_dir, int(batch_size), download
        self.train_size, self.val_size, self.seed, self.num_workers = train_size, val_size, int(seed), num_workers
        self.factor_names = ["digit"]
        self.channels, self.image_size = 1, 28
        self.train_set: ImageTensorDataset | None = None
        self.val_set: ImageTensorDataset | None = None

    def prepare_data(self) -> None:
        """Download MNIST if it is missing and allowed (data.download=true); damaged files are named."""
        for train in (True, False):
            load_mnist(self.data_dir, train=train, download=self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = _first(load_mnist(self.data_dir, True, False), self.train_size)
            self.val_set = _first(load_mnist(self.data_dir, False, False), self.val_size)


def _first(ds: ImageTensorDataset, n: int | None) -> ImageTensorDataset:
    if n is None or n >= len(ds):
        return ds
    return ImageTensorDataset(ds.images[:n], ds.factors[:n], ds.factor_names)
