"""vqkit: vector quantization inside deep neural networks.

Quantizers (``VectorQuantizer`` ...) take channel-last tensors and return a
:class:`QuantizerOutput`. How gradients pass the quantizer is an *estimator* strategy
(``NoiseSubstitution`` = NSVQ, ``StraightThrough``, ``RotationTrick``, ``DiVeQ``,
``DiVeQDetach``); how the codebook learns is a *learning* strategy (``Gradient`` or ``EMA``).
Importing vqkit has no side effects.
"""

from .codebooks import EMA, Codebook, Gradient
from .estimators import (
    DiVeQ,
    DiVeQDetach,
    Estimator,
    NoiseSubstitution,
    RotationTrick,
    StraightThrough,
)
from .maintenance import TileUsed, UsageWeighted, replace_dead_codes_
from .quantizers import ChannelsFirst, Quantizer, VectorQuantizer
from .serialization import load, save
from .types import EstimatorOutput, QuantizerOutput

__version__ = "0.1.0"

__all__ = [
    "EMA",
    "ChannelsFirst",
    "Codebook",
    "DiVeQ",
    "DiVeQDetach",
    "Estimator",
    "EstimatorOutput",
    "Gradient",
    "NoiseSubstitution",
    "Quantizer",
    "QuantizerOutput",
    "RotationTrick",
    "StraightThrough",
    "TileUsed",
    "UsageWeighted",
    "VectorQuantizer",
    "__version__",
    "load",
    "replace_dead_codes_",
    "save",
]
