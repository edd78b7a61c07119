"""Quantizer dropout for variable-bitrate residual VQ: which stages each training vector keeps.

Three strategies, each keeping a random depth ``d`` in ``[min_depth, M]``
(the first ``d`` stages; the others get index -1 and contribute nothing):

- :class:`BatchDepth`: one depth for the whole batch (vector-quantize-pytorch,
  [lucidrains2026vqpytorch]);
- :class:`ExampleDepth`: a depth per vector (SoundStream, [zeghidour2021soundstream]);
- :class:`FractionDepth`: a random depth for a ``fraction`` of the vectors, all M stages for the
  rest (DAC, [kumar2023dac]).

Randomness comes from a generator seeded with ``seed`` and the quantizer's step counter (a
buffer advanced once per training forward), so every DDP rank draws the same decisions
without any collective, and a resumed checkpoint continues the same sequence. Compiled code
cannot create a ``torch.Generator`` nor read the counter without a host sync, so while
compiling the draws come from :class:`CounterDraws`, a hash of ``(seed, step, row)``: the same
properties (and distributions), but not the same draws as eager mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..registry import DROPOUTS
from ..strategy import Strategy

_LOW32 = 0xFFFFFFFF


def _mix32(h: Any) -> Any:
    """A 32-bit integer hash (two xor-shift-multiply rounds) of ints or int64 tensors in
    [0, 2**32); the products stay below 2**59, so nothing overflows."""
    h = ((h >> 16) ^ h) * 0x45D9F3B & _LOW32
    h = ((h >> 16) ^ h) * 0x45D9F3B & _LOW32
    return (h >> 16) ^ h


class CounterDraws:
    """Uniform draws computed from a hash of an int64 ``key`` tensor (>= 0), an int ``salt``,
    a call counter and the row index: tensor ops only, so ``torch.compile`` captures them, and
    the key can live on any device (no host sync). Stands in for a ``torch.Generator`` in
    :meth:`QuantizerDropout.depths`.

    Example:
        >>> a = CounterDraws(torch.tensor(7), salt=3).randint(1, 5, 6)
        >>> b = CounterDraws(torch.tensor(7), salt=3).randint(1, 5, 6)
        >>> torch.equal(a, b), 1 <= a.min().item() <= a.max().item() <= 4
        (True, True)
    """

    def __init__(self, key: Tensor, salt: int = 0) -> None:
        self.key = key
        self.salt = int(salt) % 2**64
        self.calls = 0

    def rand(self, n: int) -> Tensor:
        """``(n,)`` float64 draws in [0, 1)."""
        self.calls += 1
        base = _mix32(_mix32((self.salt >> 32) ^ _mix32(self.calls)) ^ (self.salt & _LOW32))
        key = self.key.long()
        h = _mix32(((key >> 32) & _LOW32) ^ base)
        h = _mix32((key & _LOW32) ^ h)
        rows = torch.arange(n, device=key.device)
        return _mix32(_mix32(h ^ rows)).double() / 2.0**32

    def randint(self, low: int, high: int, n: int) -> Tensor:
        """``(n,)`` int64 draws uniform in ``[low, high)``."""
        return low + (self.rand(n) * (high - low)).long()


def _randint(low: int, high: int, n: int, draws: torch.Generator | CounterDraws) -> Tensor:
    if isinstance(draws, CounterDraws):
        return draws.randint(low, high, n)
    return torch.randint(low, high, (n,), generator=draws)


def _rand(n: int, draws: torch.Generator | CounterDraws) -> Tensor:
    if isinstance(draws, CounterDraws):
        return draws.rand(n)
    return torch.rand(n, generator=draws)


class QuantizerDropout(Strategy):
    """Base class: ``depths(n, num_stages, generator) -> (n,)`` int64 depths in [min, M].

    Args:
        min_depth: the fewest stages a vector keeps (>= 1).
        seed: base seed of the decisions (combined with the step counter).

    Raises:
        ValueError: ``min_depth`` is not an int >= 1, or ``seed`` is not an int >= 0.
    """

    registry = DROPOUTS

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

    def counter_draws(self, step: Tensor) -> CounterDraws:
        """The compiled-mode stand-in for :meth:`generator`: ``step`` is the counter buffer
        itself (any device), read by tensor ops rather than ``int()``."""
        return CounterDraws(step, salt=self.seed)

    def _draw(self, n: int, num_stages: int, generator: torch.Generator | CounterDraws) -> Tensor:
        low = min(self.min_depth, num_stages)
        return _randint(low, num_stages + 1, n, generator)

    def depths(
        self, n: int, num_stages: int, generator: torch.Generator | CounterDraws
    ) -> Tensor:
        """How many of the first stages each of ``n`` vectors keeps.

        Args:
            n: the number of vectors.
            num_stages: M, the stages of the quantizer.
            generator: the step's :meth:`generator` (eager) or :meth:`counter_draws`
                (while compiling).

        Returns:
            ``(n,)`` int64 depths in ``[min(min_depth, M), M]``.

        Raises:
            NotImplementedError: the base class; every strategy overrides it.
        """
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"min_depth": self.min_depth, "seed": self.seed}


@DROPOUTS.register
class BatchDepth(QuantizerDropout):
    """One depth, uniform in ``[min_depth, M]``, for the whole batch
    ([lucidrains2026vqpytorch]).

    Args:
        min_depth: the fewest stages a vector keeps (>= 1).
        seed: base seed of the decisions (combined with the step counter).

    Raises:
        ValueError: ``min_depth`` is not an int >= 1, or ``seed`` is not an int >= 0.

    Example:
        >>> d = BatchDepth(seed=1).depths(5, 4, BatchDepth(seed=1).generator(0))
        >>> bool((d == d[0]).all())
        True
    """

    def depths(self, n, num_stages, generator):
        return self._draw(1, num_stages, generator).expand(n).clone()


@DROPOUTS.register
class ExampleDepth(QuantizerDropout):
    """A depth per vector, uniform in ``[min_depth, M]`` (SoundStream,
    [zeghidour2021soundstream]).

    Args:
        min_depth: the fewest stages a vector keeps (>= 1).
        seed: base seed of the decisions (combined with the step counter).

    Raises:
        ValueError: ``min_depth`` is not an int >= 1, or ``seed`` is not an int >= 0.

    Example:
        >>> ExampleDepth(min_depth=2).depths(1000, 4, torch.Generator().manual_seed(0)).min().item()
        2
    """

    def depths(self, n, num_stages, generator):
        return self._draw(n, num_stages, generator)


@DROPOUTS.register
class FractionDepth(QuantizerDropout):
    """A random depth for a ``fraction`` of the vectors; the others keep all stages (DAC,
    [kumar2023dac]).

    Args:
        fraction: probability that a vector gets a random depth (DAC's ``quantizer_dropout``).
        min_depth: the fewest stages a vector keeps.
        seed: base seed.

    Raises:
        ValueError: ``fraction`` is outside ``[0, 1]``, ``min_depth`` is not an int >= 1, or
            ``seed`` is not an int >= 0.

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
        chosen = _rand(n, generator) < self.fraction
        return torch.where(chosen, drawn, torch.full_like(drawn, num_stages))

    def config(self) -> dict[str, Any]:
        return {"fraction": self.fraction, **super().config()}




# -- what residual quantizers share: dropping stages in training, decoding prefixes -------------
def check_dropout(dropout: Any) -> QuantizerDropout | None:
    """``dropout`` if it is None or a :class:`QuantizerDropout`.

    Raises:
        TypeError: ``dropout`` is anything else.
    """
    if dropout is not None and not isinstance(dropout, QuantizerDropout):
        raise TypeError(
            "dropout must be None, BatchDepth(), ExampleDepth() or FractionDepth(), "
            f"got {dropout!r}"
        )
    return dropout


def drop_stages(dropout: QuantizerDropout | None, step: Tensor, indices: Tensor) -> Tensor:
    """Training-time stage dropout: ``indices (N, M)`` with the stages beyond each row's drawn
    depth set to -1. ``step`` is the quantizer's counter buffer, advanced by one here (so every
    rank and a resumed run draw the same depths)."""
    if dropout is None:
        return indices
    if torch.compiler.is_compiling():
        # int(step) would be a host sync and a Generator cannot be created in a graph.
        draws = dropout.counter_draws(step.clone())
    else:
        draws = dropout.generator(int(step))
    step += 1
    num_stages = indices.shape[1]
    depth = dropout.depths(indices.shape[0], num_stages, draws)
    stages = torch.arange(num_stages, device=depth.device)
    dropped = (stages[None, :] >= depth[:, None]).to(indices.device)
    return indices.masked_fill(dropped, -1)


def pad_prefix(indices: Tensor, num_stages: int) -> Tensor:
    """``(N, m)`` indices of the first ``m`` stages -> ``(N, num_stages)``, the rest -1."""
    missing = num_stages - indices.shape[1]
    if not missing:
        return indices
    pad = indices.new_full((indices.shape[0], missing), -1)
    return torch.cat([indices, pad], dim=1)


def check_prefix_shape(indices: Tensor, num_stages: int) -> None:
    """Check that ``indices`` hold a prefix of the stages.

    Raises:
        ValueError: ``indices`` is not ``(..., m)`` with ``1 <= m <= num_stages``.
    """
    if indices.dim() < 1 or not 1 <= indices.shape[-1] <= num_stages:
        raise ValueError(
            f"indices must have shape (..., m) with 1 <= m <= {num_stages} "
            f"(a prefix of the stages), got {tuple(indices.shape)}"
        )
