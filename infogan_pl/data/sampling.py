"""Whole-batch sampling shared by the DataModules: one index tensor per batch, reproducible from (seed, epoch)."""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochBatchSampler(Sampler[Tensor]):
    """Yields batches of keys `epoch * size + index` as long tensors (B,).

    The key carries the epoch so a dataset can draw per-sample randomness from (seed, epoch, index). The order is
    a permutation seeded by (seed, epoch) when shuffling; each of `world_size` ranks takes its own slice of it
    (same number of batches on every rank). Lightning calls `set_epoch` at the start of every training epoch.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}.")
        per_rank = size // world_size
        if (per_rank < batch_size and drop_last) or per_rank == 0:
            raise ValueError(
                f"The data set has {size} samples ({per_rank} per process), fewer than one batch of {batch_size}: "
                "lower data.batch_size or enlarge the data set."
            )
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        self.per_rank = per_rank
        self.epoch = 0
        self.skip = 0  # batches of the current epoch already trained on (set when resuming mid-epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.per_rank // self.batch_size
        return -(-self.per_rank // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        epoch = self.epoch if self.shuffle else 0
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.size, generator=gen)
        else:
            order = torch.arange(self.size)
        order = order[self.rank :: self.world_size][: self.per_rank]
        keys = order + epoch * self.size
        skip, self.skip = self.skip, 0
        for start in range(skip * self.batch_size, len(self) * self.batch_size, self.batch_size):
            yield keys[start : start + self.batch_size]


class ResumableLoader(DataLoader):
    """A DataLoader over whole-batch keys that Lightning can resume mid-epoch (its `state_dict` interface).

    The position saved is the number of batches of the current epoch the trainer has processed (`position()`), not
    the number drawn: Lightning draws one batch ahead.
    """

    def __init__(self, dataset: Dataset, sampler: EpochBatchSampler, position, num_workers: int = 0, pin_memory=False):
        super().__init__(dataset, **_batch_loader_kwargs(sampler, num_workers, pin_memory))
        self.position = position

    def state_dict(self) -> dict:
        return {"epoch": self.sampler.epoch, "batches_done": int(self.position())}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.set_epoch(state["epoch"])
        self.sampler.skip = state["batches_done"] % max(len(self.sampler), 1)


def batch_loader(dataset: Dataset, sampler: EpochBatchSampler, num_workers: int = 0, pin_memory: bool = False):
    """A DataLoader over key batches (no resume state: validation always starts at the beginning)."""
    return DataLoader(dataset, **_batch_loader_kwargs(sampler, num_workers, pin_memory))


def _batch_loader_kwargs(sampler: EpochBatchSampler, num_workers: int, pin_memory: bool) -> dict:
    """The sampler yields whole key batches, so the DataLoader does no batching of its own."""
    return {
        "batch_size": None,
        "sampler": sampler,
        "num_workers": num_workers,
        "pin_memory": pin_memory,
        "persistent_workers": num_workers > 0,
        "generator": own_generator(sampler.seed),
    }


def own_generator(seed: int) -> torch.Generator:
    """A DataLoader's own generator: without one, every new iterator draws from the global torch RNG (its worker
    base seed), so creating an iterator at a resume would shift every later random draw of the run."""
    return torch.Generator().manual_seed(seed)


class KeyBatches(Dataset):
    """What the loaders iterate: batches of keys only. The images are rendered after the keys reach the training
    device (`BatchDataModule.on_after_batch_transfer`), so data never crosses from host to device."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, keys: Tensor) -> Tensor:
        return keys


class BatchDataModule(L.LightningDataModule):
    """Serves `train_set` / `val_set` (datasets indexed by key batches) in whole batches, sharded per rank.

    Loaders yield key batches (B,); the batch is rendered from them on the training device: BasicProp is drawn
    there, MNIST / CelebA are held there as one uint8 tensor (moved once). Subclasses set train_set, val_set,
    batch_size, seed, num_workers, factor_names, channels and image_size, and say what their factors are.
    """

    train_set: Dataset
    val_set: Dataset
    batch_size: int
    seed: int
    num_workers: int = 0
    channels: int = 1
    image_size: int = 28
    factor_names: list[str]
    factor_kinds: list[str] | None = None  # per factor "categorical" / "continuous"; None: all categorical
    factors_are_generative: bool = False  # the factors are exactly what generated each image: MIG applies
    factors_are_attributes: bool = False  # binary attributes (CelebA), not classes: code x attribute MI table only
    task: str | None = None  # what a run on this data must learn (metrics/success.py): line, rectangles, mnist, ...

    def check(self, world_size: int = 1) -> None:
        """Before training: the data is present and sound and one batch fits each of `world_size` processes;
        raises one actionable line. Downloads when the DataModule is allowed to."""
        self.prepare_data()
        self.setup("fit")
        EpochBatchSampler(len(self.train_set), self.batch_size, world_size=world_size)

    def _sampler(self, size: int, shuffle: bool) -> EpochBatchSampler:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return EpochBatchSampler(
            size, self.batch_size, shuffle=shuffle, seed=self.seed, drop_last=shuffle, rank=rank, world_size=world
        )

    def train_dataloader(self) -> DataLoader:
        keys = KeyBatches(len(self.train_set))
        return ResumableLoader(keys, self._sampler(len(self.train_set), True), self._position, self.num_workers)

    def _position(self) -> int:
        """Batches of the current epoch the trainer has processed (what a checkpoint must resume after)."""
        if self.trainer is None:
            return 0
        return self.trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def val_dataloader(self) -> DataLoader:
        return batch_loader(KeyBatches(len(self.val_set)), self._sampler(len(self.val_set), False), self.num_workers)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Render a key batch (B,) on its device into (images, factors); other batches pass through."""
        if not isinstance(batch, Tensor):
            return batch
        dataset = self.val_set if self.trainer is not None and not self.trainer.training else self.train_set
        return on_device(dataset, batch.device)[batch]


def take(dataset: Dataset, n: int, seed: int | None = None) -> tuple[Tensor, Tensor]:
    """n items of a data set as (images, factors) batches, whether it renders key batches or not: the first n, or
    with `seed` a seeded uniform draw without replacement (a reference sample of the whole set: MNIST's test set
    is ordered, its first 5,000 digits written by Census employees, cleaner than the students' last 5,000)."""
    n = min(n, len(dataset))
    index = torch.arange(n)
    if seed is not None and n < len(dataset):
        index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    if getattr(dataset, "renders_batches", False):
        return dataset[index]
    items = [dataset[int(i)] for i in index]
    return torch.stack([x for x, _ in items]), torch.stack([torch.as_tensor(f) for _, f in items])


def on_device(dataset: Dataset, device: torch.device) -> Dataset:
    """The data set with its tensors on `device` (moved once and kept); BasicProp renders wherever its keys are."""
    if hasattr(dataset, "to_device"):
        return dataset.to_device(device)
    return dataset
