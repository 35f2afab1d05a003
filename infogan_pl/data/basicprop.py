"""BasicProp (Evtimova & Drozdov): 28x28 bars whose position / heights are known ground-truth factors.

line: class y is a vertical bar 4 px wide over all 28 rows at columns 3+2y .. 6+2y.
rectangles: two 10 px wide bars starting at row 3, left at columns 3-12, right at columns 15-24, heights
3 + 2k (k = 0..9); factors (left height index, right height index), 100 classes.
BasicProp++ (translation, diameter_ratio, colour, alternating_shapes; data/basicprop_pp.py) adds continuous
factors and colour on the same machinery: a finite grid of classes, drawn on the device with the study's noise.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from infogan_pl.data.basicprop_pp import PP_VARIANTS, pp_classes
from infogan_pl.data.sampling import BatchDataModule

VARIANTS = ("line", "rectangles", *PP_VARIANTS)
NOISE_MODES = ("none", "foreground", "background", "both")
FOREGROUND_NOISE = (150, 240)  # the study's foreground pixels: uniform integers in [150, 240), then /255
BACKGROUND_NOISE = (0, 60)  # the study's background pixels: uniform integers in [0, 60), then /255
_M32 = 0xFFFFFFFF


def line_masks() -> Tensor:
    """(10, 28, 28) bool: foreground of each line class (the class templates of the decoder too)."""
    masks = torch.zeros(10, 28, 28, dtype=torch.bool)
    for y in range(10):
        masks[y, :, 3 + 2 * y : 7 + 2 * y] = True
    return masks


def rectangle_masks() -> tuple[Tensor, Tensor]:
    """Left and right bar foregrounds, each (10, 28, 28) bool, indexed by height index k (height 3 + 2k)."""
    left = torch.zeros(10, 28, 28, dtype=torch.bool)
    right = torch.zeros(10, 28, 28, dtype=torch.bool)
    for k in range(10):
        h = 3 + 2 * k
        left[k, 3 : 3 + h, 3:13] = True
        right[k, 3 : 3 + h, 15:25] = True
    return left, right


def class_factors(variant: str, cls: Tensor) -> Tensor:
    """Factors (B, F) long of classes (B,): line (position,), rectangles (left height index, right height index)."""
    return cls[:, None] if variant == "line" else torch.stack([cls // 10, cls % 10], dim=1)


def class_masks(variant: str) -> tuple[Tensor, Tensor]:
    """Every class of line or rectangles: foregrounds (C, 28, 28) bool and factors (C, F) long."""
    if variant == "line":
        masks = line_masks()
    else:
        left, right = rectangle_masks()
        masks = (left[:, None] | right[None, :]).reshape(100, 28, 28)
    return masks, class_factors(variant, torch.arange(len(masks)))


def classes(variant: str) -> tuple[Tensor, Tensor, list[str], list[str]]:
    """Every class of a variant: images (C, channels, 28, 28) float in [0, 255], factors (C, F) (long when all are
    categorical, else float), factor names and kinds. What the data draws and what the decoder matches against
    come from here."""
    if variant not in VARIANTS:
        raise ValueError(f"data.variant must be one of {VARIANTS}, got {variant!r}.")
    if variant in PP_VARIANTS:
        return pp_classes(variant)
    masks, factors = class_masks(variant)
    names = ["position"] if variant == "line" else ["left_height", "right_height"]
    return masks[:, None].float() * 255, factors, names, ["categorical"] * len(names)


def _mul32(x: Tensor, c: int) -> Tensor:
    """(x * c) mod 2^32 for int64 x in [0, 2^32) without int64 overflow."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def hash32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (lowbias32) of int64 tensors: counter-based randomness, vectorized, on any device."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


class BasicProp(Dataset):
    """Renders whole batches: `dataset[keys]` with keys (B,) = epoch * size + index -> (images, factors).

    images: (B, channels, 28, 28) float in [-1, 1]; factors: (B, F), e.g. (B, 1) position (line) or (B, 2) left /
    right height index (rectangles). Sample `index` has class `index % n_classes` (balanced). The study's data-level
    noise is drawn per sample and per pixel from a hash of (seed, epoch, index, pixel): fresh every epoch and
    reproducible. Foreground noise replaces a grey pixel by a value in [150, 240) and scales a coloured one by it
    (/ 240); background noise sets every channel of a background pixel to a value in [0, 60).
    """

    renders_batches = True  # dataset[keys (B,)] -> a whole batch

    def __init__(self, variant: str = "line", size: int = 100_000, noise: str = "none", seed: int = 0) -> None:
        if noise not in NOISE_MODES:
            raise ValueError(f"data.noise must be one of {NOISE_MODES}, got {noise!r}.")
        self.variant, self.size, self.noise, self.seed = variant, int(size), noise, int(seed)
        self.images, self.class_factors, self.factor_names, self.factor_kinds = classes(variant)
        self._on_device: dict[torch.device, tuple[Tensor, Tensor]] = {}
        self.n_classes, self.channels = self.images.shape[0], self.images.shape[1]

    def __len__(self) -> int:
        return self.size

    def _classes(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """The class images and factors on `device`, copied there once (the host copies stay)."""
        if device not in self._on_device:
            self._on_device[device] = (self.images.to(device), self.class_factors.to(device))
        return self._on_device[device]

    def factors(self, index: Tensor) -> Tensor:
        """Ground-truth factors (B, F) of sample indices (B,)."""
        return self._classes(index.device)[1][index % self.n_classes]

    def __getitem__(self, keys: Tensor) -> tuple[Tensor, Tensor]:
        keys = torch.as_tensor(keys, dtype=torch.long).reshape(-1)
        epoch, index = keys // self.size, keys % self.size
        images, factors = self._classes(keys.device)
        pixels = images[index % self.n_classes]  # (B, channels, 28, 28) in [0, 255]
        fg = (pixels > 0).any(dim=1, keepdim=True)  # (B, 1, 28, 28)
        if self.noise != "none":
            sample = hash32(hash32(hash32(index) ^ hash32(epoch + 0x51ED27)) + self.seed * 0x9E3779B1)
            pix = torch.arange(28 * 28, device=keys.device).reshape(1, 1, 28, 28)
            u = hash32(sample[:, None, None, None] + _mul32(pix, 0x85EBCA6B))  # (B, 1, 28, 28) in [0, 2^32)
            if self.noise in ("foreground", "both"):
                lo, hi = FOREGROUND_NOISE
                value = (lo + u % (hi - lo)).to(torch.float32)
                pixels = torch.where(fg, value if self.channels == 1 else pixels * value / hi, pixels)
            if self.noise in ("background", "both"):
                lo, hi = BACKGROUND_NOISE
                pixels = torch.where(fg, pixels, (lo + u % (hi - lo)).to(torch.float32))
        return pixels / 255.0 * 2.0 - 1.0, factors[index % self.n_classes]


class BasicPropDataModule(BatchDataModule):
    """BasicProp line or rectangles; train and validation sets are disjoint streams of the same generator."""

    factors_are_generative = True  # each image is drawn from exactly its factors: MIG applies

    def __init__(
        self,
        variant: str = "line",
        train_size: int = 100_000,
        val_size: int = 10_000,
        batch_size: int = 64,
        noise: str = "none",
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        for key, value in (("batch_size", batch_size), ("train_size", train_size), ("val_size", val_size)):
            if value <= 0:
                raise ValueError(f"data.{key} must be > 0, got {value}.")
        if batch_size > train_size:
            raise ValueError(
                f"data.batch_size={batch_size} is larger than the training set ({train_size} samples): "
                "lower data.batch_size or raise data.train_size."
            )
        self.train_set = BasicProp(variant, train_size, noise, seed)
        # The validation stream uses another seed, so its noise never repeats a training image's.
        self.val_set = BasicProp(variant, val_size, noise, seed + 7919)
        self.batch_size, self.seed, self.num_workers = int(batch_size), int(seed), int(num_workers)
        self.variant = self.task = variant
        self.factor_names, self.factor_kinds = self.train_set.factor_names, self.train_set.factor_kinds
        self.channels, self.image_size = self.train_set.channels, 28
