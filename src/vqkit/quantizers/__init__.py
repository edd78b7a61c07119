"""Quantizers: one concept per module, all keeping the contract of :mod:`.base`."""

from .adapters import ChannelsFirst
from .additive import AdditiveVQ
from .base import Quantizer
from .product import ProductVQ
from .residual import ResidualVQ
from .space_filling import SpaceFillingVQ
from .vector import VectorQuantizer

#: Quantizer classes by name, for checkpoints and the command line.
QUANTIZERS: dict[str, type[Quantizer]] = {
    cls.__name__: cls for cls in (
        VectorQuantizer, SpaceFillingVQ, ResidualVQ, ProductVQ, AdditiveVQ
    )
}

__all__ = [
    "QUANTIZERS",
    "AdditiveVQ",
    "ChannelsFirst",
    "ProductVQ",
    "Quantizer",
    "ResidualVQ",
    "SpaceFillingVQ",
    "VectorQuantizer",
]
