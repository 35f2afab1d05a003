"""DCGAN-style InfoGAN networks for colour images (InfoGAN Table 3, CelebA 32x32; a 64x64 variant adds a layer)."""

from __future__ import annotations

from torch import Tensor, nn

from infogan_pl.nets.mnist import (
    TrunkAndHead,
    check_slope,
    init_weights,
    norm_layer,
    spectral_norm_layers,
    upsample_conv,
)

_SIZES = (32, 64)


def _check_size(image_size: int) -> int:
    if image_size not in _SIZES:
        raise ValueError(f"the conv networks take 32 or 64 px images, got {image_size}x{image_size} (data.image_size).")
    return image_size


class ConvGenerator(nn.Module):
    """G: (B, input_dim) -> (B, channels, S, S) in [-1, 1], S = 32 or 64.

    32: FC 2*2*448 BN ReLU -> upconv 256 BN ReLU -> upconv 128 ReLU -> upconv 64 ReLU -> upconv channels tanh
    (4x4 stride 2 each); 64 inserts one more upconv 64 ReLU before the last. `upsample=resize`: nearest upsample +
    conv 3x3 instead of each upconv. `coord_conv`: each upsampling layer also sees its input's pixel coordinates.
    """

    def __init__(
        self,
        input_dim: int,
        channels: int = 3,
        image_size: int = 32,
        upsample: str = "transposed",
        coord_conv: bool = False,
    ) -> None:
        super().__init__()
        _check_size(image_size)
        ups = [(448, 256, True), (256, 128, False), (128, 64, False)]
        if image_size == 64:
            ups.append((64, 64, False))
        layers: list[nn.Module] = [
            nn.Linear(input_dim, 2 * 2 * 448, bias=False),
            nn.BatchNorm1d(2 * 2 * 448),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (448, 2, 2)),
        ]
        for c_in, c_out, bn in ups:
            layers += [upsample_conv(c_in, c_out, upsample, bias=not bn, coords=coord_conv)]
            layers += [nn.BatchNorm2d(c_out)] if bn else []
            layers += [nn.ReLU(inplace=True)]
        layers += [upsample_conv(64, channels, upsample, coords=coord_conv), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, latent: Tensor) -> Tensor:
        return self.net(latent)


class ConvDiscriminator(TrunkAndHead):
    """Shared trunk + D head. (B, channels, S, S) -> (logit (B,), features (B, 256 * 4 * 4)).

    Trunk: conv 64 lReLU -> conv 128 norm lReLU -> conv 256 norm lReLU (4x4 stride 2; 64x64 adds conv 256 norm
    lReLU); norm is batch norm by default, layer norm (or none) for WGAN-GP. `spectral_norm`: every conv / linear
    layer of the trunk and the D head spectrally normalized.
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 32,
        leaky_slope: float = 0.1,
        norm: str = "batch",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_size(image_size)
        check_slope(leaky_slope)
        convs = [(channels, 64, False), (64, 128, True), (128, 256, True)]
        if image_size == 64:
            convs.append((256, 256, True))
        layers: list[nn.Module] = []
        for c_in, c_out, bn in convs:
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not bn)]
            layers += [norm_layer(norm, c_out, conv=True)] if bn else []
            layers += [nn.LeakyReLU(leaky_slope, inplace=True)]
        layers.append(nn.Flatten())
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = 256 * 4 * 4
        self.head = nn.Linear(self.feature_dim, 1)
        init_weights(self)
        if spectral_norm:
            spectral_norm_layers(self)
