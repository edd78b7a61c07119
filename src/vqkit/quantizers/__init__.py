"""Quantizers: one concept per module, all keeping the contract of :mod:`.base`.

Each registers itself in :data:`vqkit.registry.QUANTIZERS` (names for configs and the CLI).
"""

from .adapters import ChannelsFirst
from .additive import AdditiveVQ
from .base import Quantizer
from .build import build_quantizer
from .product import ProductVQ
from .residual import ResidualVQ
from .vector import VectorQuantizer

__all__ = [
    "AdditiveVQ",
    "ChannelsFirst",
    "ProductVQ",
    "Quantizer",
    "ResidualVQ",
    "VectorQuantizer",
    "build_quantizer",
]
