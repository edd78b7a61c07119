"""Quantizers: one concept per module, all keeping the contract of :mod:`.base`.

Each registers itself in :data:`vqkit.registry.QUANTIZERS` (names for configs and the CLI).
"""

from .adapters import ChannelsFirst
from .additive import AdditiveVQ
from .base import Quantizer
from .build import build_quantizer
from .fsq import FSQ
from .lfq import BSQ, LFQ
from .product import ProductVQ
from .residual import ResidualVQ
from .residual_fsq import ResidualFSQ
from .vector import VectorQuantizer

__all__ = [
    "BSQ",
    "AdditiveVQ",
    "ChannelsFirst",
    "FSQ",
    "LFQ",
    "ProductVQ",
    "Quantizer",
    "ResidualFSQ",
    "ResidualVQ",
    "VectorQuantizer",
    "build_quantizer",
]
