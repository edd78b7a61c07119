"""Space-filling vector quantization ([vali2023sfvq]) and PORCUPINE ([vali2024porcupine]).

One package for the concept: the piecewise-linear curve codebook and its projections
(:mod:`.curve`), the curve's training estimators (:mod:`.estimators`), the quantizer
(:mod:`.quantizer`), the paper's growth schedule (:mod:`.growth`, a plain description that
:func:`vqkit.fit_space_filling` runs through the training loop) and occurrence normalisation
(:mod:`.normalisation`). Core code: torch only.
"""

from .curve import CurveCodebook, ExactProjection, Projection, TwoSegmentProjection
from .estimators import MSEFit, SegmentEstimator, SFDiVeQ
from .growth import GrowthPlan
from .normalisation import occurrence_normalise, resample_curve
from .quantizer import SpaceFillingVQ

__all__ = [
    "CurveCodebook",
    "ExactProjection",
    "GrowthPlan",
    "MSEFit",
    "Projection",
    "SFDiVeQ",
    "SegmentEstimator",
    "SpaceFillingVQ",
    "TwoSegmentProjection",
    "occurrence_normalise",
    "resample_curve",
]
