"""Encoder strategies of the multi-codebook quantizers: how the indices of a vector are searched.

- :class:`Greedy`: one codebook after the other, each nearest to what is left (RVQ,
  [vali2025thesis] §2.7.1).
- :class:`BeamSearch`: keep the ``width`` best partial tuples at every step ([vali2023rpavqcode]);
  a width covering every tuple is an exhaustive search.

:class:`~vqkit.ResidualVQ` searches its stages in order; :class:`~vqkit.AdditiveVQ` lets each
tuple take its codebooks in any order (greedy = beam of width 1).
"""

from __future__ import annotations

from typing import Any

from ..registry import ENCODERS
from ..strategy import Strategy


class Encoder(Strategy):
    """Base class of the encoder strategies (plain values only, so they go into configs)."""

    registry = ENCODERS

    @property
    def width(self) -> int:
        """Beam width (1 for greedy)."""
        return 1


@ENCODERS.register(aliases=("greedy",))
class Greedy(Encoder):
    """Pick the nearest codeword of each codebook in turn, to the current residual.

    Example:
        >>> Greedy().width
        1
    """


@ENCODERS.register(aliases=("beam",))
class BeamSearch(Encoder):
    """Keep the ``width`` lowest-error partial tuples at each step.

    Args:
        width: W >= 1, the number of partial tuples kept between steps.

    Raises:
        ValueError: ``width`` is not an int >= 1.

    Example:
        >>> BeamSearch(width=8)
        BeamSearch(width=8)
    """

    def __init__(self, width: int = 8) -> None:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an int >= 1, got {width!r}")
        self._width = width

    @property
    def width(self) -> int:
        return self._width

    def config(self) -> dict[str, Any]:
        return {"width": self._width}


def check_encoder(encoder: Any, default: Encoder) -> Encoder:
    """``encoder``, or ``default`` when it is None.

    Raises:
        TypeError: ``encoder`` is neither None nor an :class:`Encoder`.
    """
    if encoder is None:
        return default
    if not isinstance(encoder, Encoder):
        raise TypeError(f"encoder must be Greedy() or BeamSearch(width), got {encoder!r}")
    return encoder
