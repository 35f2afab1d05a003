"""LightningModules: one per family of the study's configurations."""

from infogan_pl.models.gan import GAN
from infogan_pl.models.infogan import InfoGAN
from infogan_pl.models.vae import VAE

__all__ = ["GAN", "InfoGAN", "VAE"]
