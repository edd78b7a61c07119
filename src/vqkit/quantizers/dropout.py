"""Quantizer dropout for variable-bitrate residual VQ: which stages each training vector keeps.

Three strategies (PEERS.md §7), each keeping a random depth ``d`` in ``[min_depth, M]``
(the first ``d`` stages; the others get index -1 and contribute nothing):

- :class:`BatchDepth`: one depth for the whole batch (vector-quantize-pytorch);
- :class:`ExampleDepth`: a depth per vector (SoundStream);
- :class:`FractionDepth`: a random depth for a ``fraction`` of the vectors, all M stages for the
  rest (DAC).

Randomness comes from a generator seeded with ``seed`` and the quantizer's step counter (a
buffer advanced once per training forward), so every DDP rank draws the same decisions
without any collective, and a resumed checkpoint continues the same sequence.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..strategy import Strategy, from_config, to_config


class QuantizerDropout(Strategy):
    """Base class: ``depths(n, num_stages, generator) -> (n,)`` int64 depths in [min, M].

    Args:
        min_depth: the fewest stages a vector keeps (>= 1).
        seed: base seed of the decisions (combined with the step counter).
    """

    def __init__(self, min_depth: int = 1, *, seed: int = 0) -> None:
        if isinstance(min_depth, bool) or not isinstance(min_depth, int) or min_depth < 1:
            raise ValueError(f"min_depth must be an int >= 1, got {min_depth!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.min_depth = min_depth
        self.seed = seed

    def generator(self, step: int) -> torch.Generator:
        """The CPU generator of training step ``step`` (identical on every rank)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + step)

    def _draw(self, n: int, num_stages: int, generator: torch.Generator) -> Tensor:
        low = min(self.min_depth, num_stages)
        return torch.randint(low, num_stages + 1, (n,), generator=generator)

    def depths(self, n: int, num_stages: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"min_depth": self.min_depth, "seed": self.seed}


class BatchDepth(QuantizerDropout):
    """One depth, uniform in ``[min_depth, M]``, for the whole batch.

    Example:
        >>> d = BatchDepth(seed=1).depths(5, 4, BatchDepth(seed=1).generator(0))
        >>> bool((d == d[0]).all())
        True
    """

    def depths(self, n, num_stages, generator):
        return self._draw(1, num_stages, generator).expand(n).clone()


class ExampleDepth(QuantizerDropout):
    """A depth per vector, uniform in ``[min_depth, M]`` (SoundStream).

    Example:
        >>> ExampleDepth(min_depth=2).depths(1000, 4, torch.Generator().manual_seed(0)).min().item()
        2
    """

    def depths(self, n, num_stages, generator):
        return self._draw(n, num_stages, generator)


class FractionDepth(QuantizerDropout):
    """A random depth for a ``fraction`` of the vectors; the others keep all stages (DAC).

    Args:
        fraction: probability that a vector gets a random depth (DAC's ``quantizer_dropout``).
        min_depth: the fewest stages a vector keeps.
        seed: base seed.

    Example:
        >>> d = FractionDepth(0.0).depths(6, 4, torch.Generator().manual_seed(0))
        >>> d.tolist()
        [4, 4, 4, 4, 4, 4]
    """

    def __init__(self, fraction: float = 0.5, min_depth: int = 1, *, seed: int = 0) -> None:
        super().__init__(min_depth, seed=seed)
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
        self.fraction = float(fraction)

    def depths(self, n, num_stages, generator):
        drawn = self._draw(n, num_stages, generator)
        chosen = torch.rand(n, generator=generator) < self.fraction
        return torch.where(chosen, drawn, torch.full_like(drawn, num_stages))

    def config(self) -> dict[str, Any]:
        return {"fraction": self.fraction, **super().config()}


DROPOUTS: dict[str, type[QuantizerDropout]] = {
    cls.__name__: cls for cls in (BatchDepth, ExampleDepth, FractionDepth)
}


def dropout_config(dropout: QuantizerDropout | None) -> dict[str, Any] | None:
    """``{"type": name, **arguments}`` or None."""
    return None if dropout is None else to_config(dropout)


def dropout_from_config(config: dict[str, Any] | None) -> QuantizerDropout | None:
    """Rebuild a dropout strategy from :func:`dropout_config`'s output."""
    if config is None:
        return None
    return from_config(config, DROPOUTS, "quantizer dropout")
