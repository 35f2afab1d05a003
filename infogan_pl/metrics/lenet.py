"""A LeNet-5 MNIST classifier trained by the project: labels generated digits and is FID's feature space.

No download: it is trained once on the MNIST in the data dir (`make data` does it after the import, or
`python -m infogan_pl.metrics.lenet --data-dir data`) and cached as <data_dir>/lenet_mnist.pt (a plain state dict,
loaded with weights_only=True) with <data_dir>/lenet_mnist.json holding its SHA-256 and test accuracy. A run never
trains it: without the cached classifier it skips the metrics that need it and says so in one line.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from infogan_pl.atomic import atomic_write

log = logging.getLogger(__name__)
WEIGHTS, META = "lenet_mnist.pt", "lenet_mnist.json"
TARGET_ACCURACY = 0.99


class LeNet5(nn.Module):
    """(B, 1, 28, 28) in [-1, 1] -> logits (B, 10); `features` gives the 84-d penultimate activations.

    LeNet-5's layout (conv 5x5, pool, conv 5x5, pool, FC, FC 84, FC 10) with Caffe's wider 20 / 50 convolutions,
    which reach 99% on MNIST where the 6 / 16 original stops just below.
    """

    num_features = 84  # read by torchmetrics' FID for a custom feature extractor
    version = "lenet5-20-50-v1"  # cached weights of another version are retrained

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 20, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(50 * 5 * 5, 500), nn.ReLU(), nn.Linear(500, 84), nn.ReLU())
        self.out = nn.Linear(84, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))


class LeNetFeatures(nn.Module):
    """FID feature extractor: images (B, 1, 28, 28) in [-1, 1] -> (B, 84) float."""

    num_features = LeNet5.num_features

    def __init__(self, lenet: LeNet5) -> None:
        super().__init__()
        self.lenet = lenet.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.lenet.features(x.float())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = sum(
        int((model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum())
        for i in range(0, len(images), batch)
    )
    return correct / len(images)


def train_lenet(
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    epochs: int = 8,
    seed: int = 0,
    progress=None,
    device: str | torch.device = "cpu",
) -> tuple[LeNet5, float]:
    """Train LeNet-5 with Adam on (images in [-1, 1], labels); returns the model (on the CPU) and its test accuracy.

    progress(epoch, epochs, seconds so far) is called after each epoch (`make data` prints it with an estimate)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LeNet5().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 2), gamma=0.3)
    images, labels = train[0].to(device), train[1].to(device)
    test = (test[0].to(device), test[1].to(device))
    start = time.perf_counter()
    with torch.enable_grad():
        for epoch in range(epochs):
            model.train()
            for idx in torch.randperm(len(images), generator=gen).split(128):
                loss = F.cross_entropy(model(images[idx]), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
            if progress is not None:
                progress(epoch + 1, epochs, time.perf_counter() - start)
    acc = accuracy(model, *test)
    return model.cpu().eval(), acc


def mnist_tensors(data_dir: str | Path) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """((train images in [-1, 1], digits), (test images, digits)) of the MNIST in `data_dir`."""
    from infogan_pl.data.mnist import load_mnist

    def tensors(ds):
        return ds.images.float() / 127.5 - 1, ds.factors[:, 0]

    return tensors(load_mnist(data_dir, True, False)), tensors(load_mnist(data_dir, False, False))


def _print_progress(epoch: int, epochs: int, seconds: float) -> None:
    eta = seconds / epoch * (epochs - epoch)
    print(f"LeNet-5 epoch {epoch}/{epochs}: {seconds:.0f} s so far, about {eta:.0f} s to go", flush=True)


def save_lenet(model: LeNet5, accuracy: float, test_images: int, data_dir: str | Path) -> None:
    """Cache the classifier in data_dir: weights, then the metadata that names their checksum (each written whole or
    not at all: a torn weights file fails the checksum, so it is retrained, never read)."""
    data_dir = Path(data_dir)
    weights = data_dir / WEIGHTS
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write(weights, buffer.getbuffer())
    meta = {"test_accuracy": accuracy, "sha256": _sha256(weights), "test_images": test_images, "version": model.version}
    atomic_write(data_dir / META, json.dumps(meta, indent=2))


def load_lenet(data_dir: str | Path, train_if_missing: bool = True, progress=None) -> tuple[LeNet5, dict]:
    """The cached classifier and its metadata; trains and caches it when asked. A checksum mismatch is an error."""
    data_dir = Path(data_dir)
    weights, meta_path = data_dir / WEIGHTS, data_dir / META
    stale = meta_path.is_file() and json.loads(meta_path.read_text()).get("version") != LeNet5.version
    if not weights.is_file() or not meta_path.is_file() or stale:
        if not train_if_missing:
            raise FileNotFoundError(
                f"{weights} not found: run `make data` or `python -m infogan_pl.metrics.lenet --data-dir {data_dir}`"
            )
        log.info(
            "Training the LeNet-5 MNIST classifier for evaluation, once (8 epochs; about 6 minutes on 2 CPU cores); "
            "cached in %s",
            weights,
        )
        train, test = mnist_tensors(data_dir)
        model, acc = train_lenet(train, test, progress=progress, device="cuda" if torch.cuda.is_available() else "cpu")
        save_lenet(model, acc, len(test[1]), data_dir)
        if acc < TARGET_ACCURACY:
            log.warning("LeNet-5 test accuracy %.4f is below %.2f: is this the real MNIST?", acc, TARGET_ACCURACY)
    meta = json.loads(meta_path.read_text())
    if _sha256(weights) != meta["sha256"]:
        raise RuntimeError(f"{weights} does not match the checksum in {meta_path}: delete both to retrain it.")
    model = LeNet5()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval(), meta


class LeNetLabeller:
    """The labeller of generated MNIST digits: the cached LeNet-5 of `data_dir` labels them and its 84-d features
    are FID's space. Loaded at the start of a run, never trained there (`make data` trains it)."""

    can_be_invalid = False  # every image gets a digit

    def __init__(self, data_dir: str = "data") -> None:
        self.data_dir = Path(data_dir)
        self.model: LeNet5 | None = None

    def setup(self) -> str | None:
        """Load the cached classifier; a one-line note of what is skipped when it is missing, else None."""
        if self.model is not None:
            return None
        try:
            self.model, meta = load_lenet(self.data_dir, train_if_missing=False)
        except FileNotFoundError:
            return (
                f"no LeNet-5 in {self.data_dir} ({WEIGHTS}): metric/gen_acc, metric/gen_purity, "
                f"metric/gen_distinct and metric/fid_lenet "
                f"are skipped; run `make data` (or `python -m infogan_pl.metrics.lenet --data-dir {self.data_dir}`) "
                "once to enable them"
            )
        if meta["test_accuracy"] < TARGET_ACCURACY:
            log.warning(
                "the LeNet-5 in %s scores %.4f < %.2f: is it the real MNIST?",
                self.data_dir,
                meta["test_accuracy"],
                TARGET_ACCURACY,
            )
        return None

    @torch.no_grad()
    def label(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Digits (B, 1) predicted by LeNet-5; every image is valid."""
        lenet = self.model.to(images.device)
        digits = torch.cat([lenet(chunk.float()).argmax(1) for chunk in images.split(1000)])
        return digits[:, None], torch.ones(len(images), dtype=torch.bool, device=images.device)

    def fid_features(self) -> LeNetFeatures | None:
        return LeNetFeatures(self.model) if self.model is not None else None


def fid(features: nn.Module, real: Tensor, fake: Tensor, batch: int = 1000) -> float:
    """Fréchet distance between real and fake images (N, C, H, W) in the feature space of `features`."""
    metric = FrechetInceptionDistance(feature=features, normalize=False).to(real.device)
    with torch.no_grad():
        for i in range(0, len(real), batch):
            metric.update(real[i : i + batch], real=True)
        for i in range(0, len(fake), batch):
            metric.update(fake[i : i + batch], real=False)
    return float(metric.compute())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and cache the LeNet-5 used for FID and digit labels.")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        _, meta = load_lenet(args.data_dir, progress=_print_progress)
    except (RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"LeNet-5 in {Path(args.data_dir) / WEIGHTS}: test accuracy {meta['test_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
