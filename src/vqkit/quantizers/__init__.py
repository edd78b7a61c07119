"""Quantizers: one concept per module, all keeping the contract of :mod:`.base`."""

from .adapters import ChannelsFirst
from .base import Quantizer
from .residual import ResidualVQ
from .space_filling import SpaceFillingVQ
from .vector import VectorQuantizer

#: Quantizer classes by name, for checkpoints and the command line.
QUANTIZERS: dict[str, type[Quantizer]] = {
    cls.__name__: cls for cls in (VectorQuantizer, SpaceFillingVQ, ResidualVQ)
}

__all__ = [
    "QUANTIZERS",
    "ChannelsFirst",
    "Quantizer",
    "ResidualVQ",
    "SpaceFillingVQ",
    "VectorQuantizer",
]
