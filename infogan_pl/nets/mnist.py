"""The InfoGAN MNIST networks (Chen et al. 2016, Table 1 / openai/InfoGAN) for 28x28 images."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations

UPSAMPLES = ("transposed", "resize")


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for conv / linear weights, N(1, 0.02) for batch-norm scales, zero biases (DCGAN / InfoGAN)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.GroupNorm | nn.LayerNorm) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class AddCoords(nn.Module):
    """CoordConv (Liu et al. 2018): appends two channels holding each pixel's row and column in [-1, 1], so the
    convolution after it can draw at a position by thresholding coordinates instead of building the position from
    padding. In their GANs it lessened mode collapse: the map from spatial latents to pixels is easier to learn."""

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        rows = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
        cols = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
        return torch.cat([x, rows, cols], dim=1)


def upsample_conv(
    c_in: int, c_out: int, mode: str = "transposed", bias: bool = True, coords: bool = False
) -> nn.Module:
    """A 2x upsampling layer of G: the paper's transposed conv 4x4 stride 2, or resize-convolution (nearest upsample
    + conv 3x3, Odena et al. 2016), which cannot leave the transposed conv's checkerboard pattern. `coords`: the
    layer also sees the pixel coordinates of its input (CoordConv, `AddCoords`)."""
    c_conv = c_in + 2 if coords else c_in
    if mode == "transposed":
        layer = nn.ConvTranspose2d(c_conv, c_out, 4, 2, 1, bias=bias)
    elif mode == "resize":
        layer = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_conv, c_out, 3, 1, 1, bias=bias))
    else:
        raise ValueError(f"model.generator.upsample must be one of {UPSAMPLES}, got {mode!r}.")
    return nn.Sequential(AddCoords(), layer) if coords else layer


def spectral_norm_layers(module: nn.Module) -> nn.Module:
    """Every conv and linear layer of `module` spectrally normalized (Miyato et al. 2018: each weight divided by its
    largest singular value, estimated by one power iteration per training forward pass), in place; returns it."""
    layers = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]
    for layer in layers:
        parametrizations.spectral_norm(layer)
    return module


class Generator(nn.Module):
    """G: (B, input_dim) -> (B, channels, 28, 28) in [-1, 1].

    FC 1024 BN ReLU -> FC 7*7*128 BN ReLU -> upconv 4x4 s2 64 BN ReLU -> upconv 4x4 s2 channels tanh.
    `hidden` is the width of the first FC layer (the paper's 1024). `tanh=False` returns the pre-tanh values (a
    VAE decoder's logits). `upsample`: `transposed` (the paper) or `resize` (nearest upsample + conv 3x3).
    `coord_conv`: each upsampling layer also sees its input's pixel coordinates (`AddCoords`).
    """

    def __init__(
        self,
        input_dim: int,
        channels: int = 1,
        hidden: int = 1024,
        image_size: int = 28,
        tanh: bool = True,
        upsample: str = "transposed",
        coord_conv: bool = False,
    ) -> None:
        super().__init__()
        check_28(image_size)
        if hidden < 1:
            raise ValueError(f"model.generator.hidden must be >= 1, got {hidden}.")
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 7 * 7 * 128, bias=False),
            nn.BatchNorm1d(7 * 7 * 128),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (128, 7, 7)),
            upsample_conv(128, 64, upsample, bias=False, coords=coord_conv),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            upsample_conv(64, channels, upsample, coords=coord_conv),
            nn.Tanh() if tanh else nn.Identity(),
        )
        init_weights(self)

    def forward(self, latent: Tensor) -> Tensor:
        return self.net(latent)


class QOutput(NamedTuple):
    """Q(c | x): logits per categorical code [(B, K_i)], mean (B, n_cont), log-std (B, n_cont) or None (σ = 1)."""

    logits: list[Tensor]
    mean: Tensor
    log_std: Tensor | None


class QHead(nn.Module):
    """Q head on the shared trunk's features: FC 128 BN lReLU -> FC (logits, means, log-stds if learned)."""

    def __init__(
        self,
        categorical: list[int],
        continuous: int,
        learn_sigma: bool = False,
        feature_dim: int = 1024,
        leaky_slope: float = 0.1,
    ) -> None:
        super().__init__()
        self.categorical = [int(k) for k in categorical]
        self.continuous = int(continuous)
        self.learn_sigma = learn_sigma
        out = sum(self.categorical) + self.continuous * (2 if learn_sigma else 1)
        self.net = nn.Sequential(
            nn.Linear(feature_dim, 128, bias=False),
            nn.BatchNorm1d(128),
            nn.LeakyReLU(leaky_slope, inplace=True),
            nn.Linear(128, out),
        )
        init_weights(self)

    def forward(self, features: Tensor) -> QOutput:
        out = self.net(features)
        logits = list(out[:, : sum(self.categorical)].split(self.categorical, dim=1)) if self.categorical else []
        rest = out[:, sum(self.categorical) :]
        mean = rest[:, : self.continuous]
        log_std = rest[:, self.continuous :] if self.learn_sigma else None
        return QOutput(logits, mean, log_std)


def check_28(image_size: int) -> None:
    if image_size != 28:
        raise ValueError(
            f"the MNIST networks take 28x28 images but the data gives {image_size}x{image_size}: "
            "use model=infogan_celeba for CelebA."
        )


def check_slope(leaky_slope: float) -> None:
    if not 0 <= leaky_slope < 1:
        raise ValueError(f"model.discriminator.leaky_slope must be in [0, 1), got {leaky_slope}.")


def norm_layer(kind: str, features: int, conv: bool) -> nn.Module:
    """batch: BatchNorm; layer: LayerNorm over all of a sample's features (GroupNorm(1, C) for conv maps), as
    WGAN-GP needs (its penalty is per sample, so the critic must not mix samples); none: identity."""
    if kind == "batch":
        return nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.GroupNorm(1, features) if conv else nn.LayerNorm(features)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"model.discriminator.norm must be batch, layer or none, got {kind!r}.")


class TrunkAndHead(nn.Module):
    """A discriminator as the models use it: `trunk` (shared with Q) -> features, `head` -> one logit."""

    trunk: nn.Module
    head: nn.Module
    feature_dim: int

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (logit (B,), features (B, feature_dim))."""
        h = self.trunk(x)
        return self.head(h).squeeze(1), h


class Discriminator(TrunkAndHead):
    """Shared trunk + D head (one logit). (B, channels, 28, 28) -> features (B, 1024) -> logit (B,).

    Trunk: conv 4x4 s2 64 lReLU -> conv 4x4 s2 128 norm lReLU -> FC 1024 norm lReLU (norm: batch by default).
    `hidden` is the width of the FC layer, i.e. of the features Q reads (the paper's 1024). `spectral_norm`: every
    conv / linear layer of the trunk and the D head spectrally normalized (the Q head is not D's).
    """

    def __init__(
        self,
        channels: int = 1,
        leaky_slope: float = 0.1,
        norm: str = "batch",
        hidden: int = 1024,
        image_size: int = 28,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        check_28(image_size)
        check_slope(leaky_slope)
        if hidden < 1:
            raise ValueError(f"model.discriminator.hidden must be >= 1, got {hidden}.")
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1),
            nn.LeakyReLU(leaky_slope, inplace=True),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False),
            norm_layer(norm, 128, conv=True),
            nn.LeakyReLU(leaky_slope, inplace=True),
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, hidden, bias=False),
            norm_layer(norm, hidden, conv=False),
            nn.LeakyReLU(leaky_slope, inplace=True),
        )
        self.head = nn.Linear(hidden, 1)
        self.feature_dim = hidden
        init_weights(self)
        if spectral_norm:
            spectral_norm_layers(self)
