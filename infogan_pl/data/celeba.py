"""CelebA: torchvision's loader (official splits, 40 attributes) or a plain img_align_celeba/ folder.

Images are centre-cropped (140 px by default), resized to 32 (or 64) and scaled to [-1, 1]. With `preprocess`
(the default) every split is decoded once, by DataLoader workers, into a uint8 tensor file beside the data
(about 600 MB for 200k images at 32x32) that later runs memory-map and serve in whole batches; without it, images
are decoded on the fly by workers into pinned memory.
"""

from __future__ import annotations

import io
import logging
import zlib
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import transforms
from torchvision.datasets import CelebA

from infogan_pl.atomic import atomic_write
from infogan_pl.data.mnist import ImageTensorDataset
from infogan_pl.data.sampling import BatchDataModule, own_generator

log = logging.getLogger(__name__)
CELEBA_FILES = (
    "img_align_celeba/",
    "list_eval_partition.txt",
    "list_attr_celeba.txt",
    "identity_CelebA.txt",
    "list_bbox_celeba.txt",
    "list_landmarks_align_celeba.txt",
)
SPLITS = {"train": 0, "valid": 1, "test": 2}
# The official partition by image number: 1-162770 train, 162771-182637 valid, the rest test.
_VALID_FROM, _TEST_FROM = 162_771, 182_638
_MANUAL_FETCH = (
    "download it by hand from the official CelebA page (Google Drive quotas often stop automatic downloads) "
    "and unpack it there"
)


class _CelebA(CelebA):
    """torchvision's CelebA; `verify_md5=False` checks that the files exist instead of their official checksums
    (for re-encoded or generated copies)."""

    def __init__(self, *args, verify_md5: bool = True, **kwargs) -> None:
        self.verify_md5 = verify_md5
        super().__init__(*args, **kwargs)

    def _check_integrity(self) -> bool:
        if self.verify_md5:
            return super()._check_integrity()
        base = Path(self.root) / self.base_folder
        return all((base / name).exists() for name in CELEBA_FILES)


def _missing_celeba(root: Path) -> RuntimeError:
    base = root / "celeba"
    missing = [f for f in CELEBA_FILES if not (base / f).exists()]
    return RuntimeError(
        f"CelebA not found or corrupted in {base} (missing: {', '.join(missing) or 'none; checksums differ'}). "
        f"Expected {', '.join(CELEBA_FILES)} in {base}: {_MANUAL_FETCH}, or set data.source=image_folder."
    )


class ImageFolderFaces(Dataset):
    """Every image file of a flat folder (e.g. img_align_celeba/), sorted by name; no attributes."""

    def __init__(self, folder: Path, split: str, transform) -> None:
        if not folder.is_dir():
            raise RuntimeError(f"image folder {folder} not found: point data.data_dir at the folder of face images.")
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise RuntimeError(f"image folder {folder} holds no files.")
        self.files = [p for p in files if _split_of(p) == split]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        try:
            with Image.open(self.files[i]) as img:
                image = img.convert("RGB")
        except (UnidentifiedImageError, OSError) as err:
            raise RuntimeError(f"{self.files[i]} is not a readable image ({type(err).__name__}): remove it.") from None
        return self.transform(image), torch.zeros(0, dtype=torch.long)


def _split_of(path: Path) -> str:
    """CelebA's official split for numbered files (000001.jpg); other names: 1 in 20 (by CRC of the name) is
    validation."""
    stem = path.stem
    if stem.isdigit():
        k = int(stem)
        return "train" if k < _VALID_FROM else "valid" if k < _TEST_FROM else "test"
    return "valid" if zlib.crc32(stem.encode()) % 20 == 0 else "train"


class CelebADataModule(BatchDataModule):
    """CelebA faces in [-1, 1], (3, S, S). Each item: (image, attributes (40,) in {0, 1}, or empty for a folder)."""

    def __init__(
        self,
        data_dir: str = "data",
        source: str = "torchvision",
        image_size: int = 32,
        crop: int = 140,
        batch_size: int = 128,
        download: bool = False,
        verify_md5: bool = True,
        preprocess: bool = True,
        num_workers: int = 4,
        pin_memory: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if source not in ("torchvision", "image_folder"):
            raise ValueError(f"data.source must be 'torchvision' or 'image_folder', got {source!r}.")
        self.data_dir, self.source, self.image_size, self.crop = Path(data_dir), source, int(image_size), int(crop)
        self.batch_size, self.download, self.verify_md5, self.preprocess = (
            int(batch_size),
            download,
            verify_md5,
            preprocess,
        )
        self.num_workers, self.pin_memory, self.seed = int(num_workers), pin_memory, int(seed)
        self.channels = 3
        self.factor_names: list[str] = []
        self.factors_are_generative = False
        self.factors_are_attributes = source == "torchvision"
        self.transform = transforms.Compose(
            [
                transforms.CenterCrop(self.crop),
                transforms.Resize(self.image_size, antialias=True),
                transforms.ToTensor(),
                transforms.Normalize((0.5,) * 3, (0.5,) * 3),
            ]
        )
        self.train_set = self.val_set = None

    # ------------------------------------------------------------------ sources
    def raw_split(self, split: str) -> Dataset:
        """The split decoded image by image: torchvision's CelebA or the image folder."""
        if self.source == "image_folder":
            return ImageFolderFaces(self.data_dir, split, self.transform)
        try:
            ds = _CelebA(
                str(self.data_dir),
                split=split,
                target_type="attr",
                transform=self.transform,
                download=self.download,
                verify_md5=self.verify_md5,
            )
        except (RuntimeError, OSError):
            raise _missing_celeba(self.data_dir) from None
        self.factor_names = list(ds.attr_names[:40])
        return ds

    def prepare_data(self) -> None:
        if self.source == "torchvision" and self.download:
            try:
                _CelebA(str(self.data_dir), split="train", download=True, verify_md5=self.verify_md5)
            except Exception:  # gdown / quota errors come in many types
                raise _missing_celeba(self.data_dir) from None

    def _cache_path(self, split: str) -> Path:
        base = self.data_dir / "celeba" if self.source == "torchvision" else self.data_dir.parent
        name = self.data_dir.name if self.source == "image_folder" else "celeba"
        return base / f"{name}_{split}_{self.image_size}px_crop{self.crop}.pt"

    def _preprocessed(self, split: str) -> ImageTensorDataset:
        """uint8 images (N, 3, S, S) and attributes, decoded once by workers and cached; memory-mapped afterwards."""
        path = self._cache_path(split)
        if not path.is_file():
            raw = self.raw_split(split)
            log.info("Decoding CelebA %s (%d images) into %s, once", split, len(raw), path)
            loader = DataLoader(raw, batch_size=512, num_workers=self.num_workers)
            images, attrs = [], []
            for x, a in loader:
                images.append(((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))
                attrs.append(a.long())
            data = {"images": torch.cat(images), "attrs": torch.cat(attrs), "names": list(self.factor_names)}
            buffer = io.BytesIO()
            torch.save(data, buffer)
            atomic_write(path, buffer.getbuffer(), "CelebA cache")
        data = torch.load(path, mmap=True, weights_only=True)
        self.factor_names = list(data["names"])
        return ImageTensorDataset(data["images"], data["attrs"], self.factor_names)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.preprocess:
            self.train_set, self.val_set = self._preprocessed("train"), self._preprocessed("valid")
        else:
            self.train_set, self.val_set = self.raw_split("train"), self.raw_split("valid")

    # ------------------------------------------------------------------ loaders
    def _per_image_loader(self, ds: Dataset, shuffle: bool) -> DataLoader:
        world = self.trainer.world_size if self.trainer else 1
        sampler = None
        if world > 1:
            sampler = DistributedSampler(ds, world, self.trainer.global_rank, shuffle=shuffle, seed=self.seed)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            drop_last=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            generator=own_generator(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        if self.preprocess:
            return super().train_dataloader()
        return self._per_image_loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        if self.preprocess:
            return super().val_dataloader()
        return self._per_image_loader(self.val_set, False)
