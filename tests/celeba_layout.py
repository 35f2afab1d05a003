"""Generated CelebA layouts: torchvision's (images + every text file it reads) and a plain image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ATTRS = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]
# image number -> split: 8 train, 2 valid, 2 test, numbered like the official files (000001.jpg ...)
NUMBERS = [1, 2, 3, 4, 5, 6, 7, 8, 162771, 162772, 182638, 182639]


def _face(rng: np.random.Generator) -> Image.Image:
    blocks = Image.fromarray(rng.integers(0, 256, (7, 6, 3), dtype=np.uint8))  # smooth, so a resize keeps contrast
    return blocks.resize((178, 218), Image.BILINEAR)  # CelebA's aligned size


def write_celeba(root: Path, seed: int = 0) -> Path:
    """root/celeba/ in torchvision's layout; returns root."""
    rng = np.random.default_rng(seed)
    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    names = [f"{k:06d}.jpg" for k in NUMBERS]
    for name in names:
        _face(rng).save(base / "img_align_celeba" / name, quality=90)
    split = {n: 0 if k < 162771 else 1 if k < 182638 else 2 for n, k in zip(names, NUMBERS, strict=True)}
    attrs = rng.choice([-1, 1], size=(len(names), 40))
    (base / "list_eval_partition.txt").write_text("".join(f"{n} {split[n]}\n" for n in names))
    (base / "identity_CelebA.txt").write_text("".join(f"{n} {i + 1}\n" for i, n in enumerate(names)))
    (base / "list_attr_celeba.txt").write_text(
        f"{len(names)}\n"
        + " ".join(ATTRS)
        + " \n"
        + "".join(f"{n} " + " ".join(f"{a:2d}" for a in row) + "\n" for n, row in zip(names, attrs, strict=True))
    )
    (base / "list_bbox_celeba.txt").write_text(
        f"{len(names)}\nimage_id x_1 y_1 width height\n" + "".join(f"{n} 95 71 226 313\n" for n in names)
    )
    marks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (base / "list_landmarks_align_celeba.txt").write_text(
        f"{len(names)}\n{marks}\n" + "".join(f"{n} 69 109 106 113 77 142 73 152 108 154\n" for n in names)
    )
    return root


def write_folder(folder: Path, n: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for k in NUMBERS[:n]:
        _face(rng).save(folder / f"{k:06d}.jpg", quality=90)
    return folder
