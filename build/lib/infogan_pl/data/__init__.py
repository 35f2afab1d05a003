"""LightningDataModules and the data sets behind them."""

from infogan_pl.data.basicprop import BasicProp, BasicPropDataModule
from infogan_pl.data.mnist import MNISTDataModule

__all__ = ["BasicProp", "BasicPropDataModule", "MNISTDataModule"]
