"""The growth schedule of a space-filling VQ in [vali2023sfvqcode] ``train.py`` (a plain
description; :func:`vqkit.fit_space_filling` runs it through the training loop).

Start with 4 corner points; for bitrate 2, 3, ..., B: double the points (from bitrate 3 on),
then train ``epochs_per_stage`` epochs with a fresh Adam whose learning rate halves at epochs
int(0.6 E) and int(0.8 E) of the stage (MultiStepLR, gamma 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GrowthPlan:
    """The paper's stages to ``2**bits`` corner points, ``epochs_per_stage`` epochs each.

    Args:
        bits: B >= 2; the curve ends with ``2**bits`` corner points.
        epochs_per_stage: E >= 1 (5 in the paper's code).

    Raises:
        ValueError: ``bits`` not an int >= 2 or ``epochs_per_stage`` not an int >= 1.

    Example:
        >>> plan = GrowthPlan(bits=4, epochs_per_stage=5)
        >>> list(plan.stage_bits), plan.expansions, plan.lr_milestones
        ([2, 3, 4], 2, (3, 4))
    """

    bits: int
    epochs_per_stage: int = 5

    #: Corner points at the start (bitrate 2).
    initial_size = 4
    #: The learning rate's factor at each milestone.
    lr_gamma = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or self.bits < 2:
            raise ValueError(f"bits must be an int >= 2, got {self.bits!r}")
        e = self.epochs_per_stage
        if isinstance(e, bool) or not isinstance(e, int) or e < 1:
            raise ValueError(f"epochs_per_stage must be an int >= 1, got {e!r}")

    @property
    def stage_bits(self) -> range:
        """The bitrate of each stage: 2, 3, ..., ``bits``."""
        return range(2, self.bits + 1)

    @property
    def expansions(self) -> int:
        """How many times the corner points double (between consecutive stages)."""
        return self.bits - 2

    @property
    def lr_milestones(self) -> tuple[int, int]:
        """Epochs of a stage after which the learning rate is multiplied by ``lr_gamma``."""
        return int(0.6 * self.epochs_per_stage), int(0.8 * self.epochs_per_stage)
