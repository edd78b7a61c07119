"""vqkit: vector quantization inside deep neural networks.

Quantizers (``VectorQuantizer`` ...) take channel-last tensors and return a
:class:`QuantizerOutput`. How gradients pass the quantizer is an *estimator* strategy
(``NoiseSubstitution`` = NSVQ, ``StraightThrough``, ``RotationTrick``, ``DiVeQ``,
``DiVeQDetach``); how the codebook learns is a *learning* strategy (``Gradient`` or ``EMA``);
how its codewords are made is a *parameterisation* (``Direct``, ``SimVQ``, ``Cosine``,
``Factorised``).
Importing vqkit has no side effects and imports the core only (torch and numpy):
``fit_space_filling``, which runs the training loop, is imported on first access.
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
from .functional.bitstream import pack_indices, unpack_indices
from .io.serialization import load, save
from .maintenance import TileUsed, UsageWeighted, replace_dead_codes_
from .parameterisations import Cosine, Direct, Factorised, SimVQ
from .quantizers import BSQ, FSQ, LFQ, ChannelsFirst, Quantizer, ResidualFSQ, VectorQuantizer
from .quantizers.additive import AdditiveVQ
from .quantizers.application import OnComposite, PerStage
from .quantizers.data_init import DataInit
from .quantizers.dropout import BatchDepth, ExampleDepth, FractionDepth
from .quantizers.encoders import BeamSearch, Greedy
from .quantizers.product import ProductVQ
from .quantizers.residual import ResidualVQ
from .regularisers import EntropyPenalty
from .replacement import CodeReplacer
from .space_filling import (
    CurveCodebook,
    ExactProjection,
    MSEFit,
    SFDiVeQ,
    SpaceFillingVQ,
    TwoSegmentProjection,
)
from .types import EstimatorOutput, QuantizerOutput

__version__ = "0.1.0"

__all__ = [
    "AdditiveVQ",
    "BSQ",
    "BatchDepth",
    "BeamSearch",
    "EMA",
    "ChannelsFirst",
    "CodeReplacer",
    "Codebook",
    "Cosine",
    "DataInit",
    "CurveCodebook",
    "DiVeQ",
    "Direct",
    "DiVeQDetach",
    "EntropyPenalty",
    "Estimator",
    "EstimatorOutput",
    "ExactProjection",
    "ExampleDepth",
    "FSQ",
    "Factorised",
    "FractionDepth",
    "Gradient",
    "Greedy",
    "LFQ",
    "MSEFit",
    "NoiseSubstitution",
    "OnComposite",
    "PerStage",
    "ProductVQ",
    "Quantizer",
    "QuantizerOutput",
    "ResidualFSQ",
    "ResidualVQ",
    "RotationTrick",
    "SFDiVeQ",
    "SimVQ",
    "SpaceFillingVQ",
    "StraightThrough",
    "TileUsed",
    "TwoSegmentProjection",
    "UsageWeighted",
    "VectorQuantizer",
    "__version__",
    "fit_space_filling",
    "load",
    "pack_indices",
    "replace_dead_codes_",
    "save",
    "unpack_indices",
]



# Public names that live above the core, imported on first access so that `import vqkit`
# loads neither the training layer nor its dependencies.
_LAZY = ("fit_space_filling",)


def __getattr__(name: str):
    if name == "fit_space_filling":
        from .training.space_filling import fit_space_filling

        return fit_space_filling
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
