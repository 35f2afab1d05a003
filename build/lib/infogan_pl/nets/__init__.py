"""Generator, discriminator trunk and heads."""

from infogan_pl.nets.mnist import Discriminator, Generator, QHead, QOutput, init_weights

__all__ = ["Discriminator", "Generator", "QHead", "QOutput", "init_weights"]
