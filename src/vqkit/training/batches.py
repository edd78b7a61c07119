"""Where a :class:`~vqkit.training.loop.Trainer` gets its batches: one small class per kind.

Every source answers ``batch(step)`` (``step`` = the 0-based index of the batch in the run),
says how many batches make an epoch (``epoch_length``; None when there are no epochs) and
names the generators it draws from (``generators``), which the Trainer saves in checkpoints.

- :class:`RandomRows`: random rows of a tensor, with replacement (``torch.randint``).
- :class:`Epochs`: epochs over a tensor in fixed order, or shuffled at each epoch start.
- :class:`Sampler`: a function ``sample(batch, generator)`` (fresh data, crops of a corpus).
- :class:`Iterate`: the batches of any iterable, in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor


def _check_rows(data: Tensor, batch: int) -> None:
    if not isinstance(data, Tensor) or data.dim() < 1 or data.shape[0] < 1:
        raise ValueError(f"data must be a non-empty tensor of rows, got {data!r:.80}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")


class RandomRows:
    """``batch`` rows of ``data`` drawn uniformly with replacement at every step.

    Args:
        data: ``(N, ...)`` tensor.
        batch: rows per step.
        generator: draws the rows.
        device: where the batches go (None: stay on ``data``'s device).

    Raises:
        ValueError: empty ``data`` or ``batch < 1``.

    Example:
        >>> src = RandomRows(torch.arange(10.0)[:, None], 4, torch.Generator().manual_seed(0))
        >>> tuple(src.batch(0).shape), src.epoch_length
        ((4, 1), None)
    """

    epoch_length = None

    def __init__(self, data: Tensor, batch: int, generator: torch.Generator,
                 device: torch.device | str | None = None) -> None:
        _check_rows(data, batch)
        self.data, self.size, self.generator, self.device = data, batch, generator, device
        self.generators = {"batches": generator}

    def batch(self, step: int) -> Tensor:
        rows = torch.randint(0, self.data.shape[0], (self.size,), generator=self.generator)
        x = self.data[rows]
        return x if self.device is None else x.to(self.device)


class Epochs:
    """Epochs over the rows of ``data`` in batches of ``batch`` (the last may be smaller).

    Args:
        data: ``(N, ...)`` tensor.
        batch: rows per step.
        shuffle: draws a permutation at the start of every epoch; None: the rows in order.

    Raises:
        ValueError: empty ``data``, ``batch < 1``, or (shuffled) a batch asked for in the
            middle of an epoch whose permutation was not drawn, e.g. after resuming there.

    Example:
        >>> src = Epochs(torch.arange(5.0), 2)
        >>> src.epoch_length, [src.batch(s).tolist() for s in range(4)]
        (3, [[0.0, 1.0], [2.0, 3.0], [4.0], [0.0, 1.0]])
    """

    def __init__(self, data: Tensor, batch: int, shuffle: torch.Generator | None = None) -> None:
        _check_rows(data, batch)
        self.data, self.size, self.shuffle = data, batch, shuffle
        self.epoch_length = math.ceil(data.shape[0] / batch)
        self.generators = {} if shuffle is None else {"batches": shuffle}
        self._order: Tensor | None = None

    def batch(self, step: int) -> Tensor:
        """Batch ``step % epoch_length`` of the current epoch (``(batch, ...)`` rows of
        ``data``; the last of an epoch may have fewer).

        Raises:
            ValueError: (shuffled) ``step`` is inside an epoch whose permutation was not
                drawn, e.g. after resuming there.
        """
        position = step % self.epoch_length
        start = position * self.size
        if self.shuffle is None:
            return self.data[start : start + self.size]
        if position == 0:
            self._order = torch.randperm(self.data.shape[0], generator=self.shuffle)
        if self._order is None:
            raise ValueError(f"a shuffled epoch cannot start at batch {position} of "
                             f"{self.epoch_length}: resume at an epoch boundary")
        return self.data[self._order[start : start + self.size]]


class Sampler:
    """``sample(batch, generator)`` at every step: fresh draws or crops of a corpus.

    Raises:
        ValueError: ``batch`` is not an int ``>= 1``.

    Example:
        >>> src = Sampler(lambda n, g: torch.randn(n, 3, generator=g), 8,
        ...               torch.Generator().manual_seed(0))
        >>> tuple(src.batch(0).shape)
        (8, 3)
    """

    epoch_length = None

    def __init__(self, sample: Callable[[int, torch.Generator], Any], batch: int,
                 generator: torch.Generator) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an int >= 1, got {batch!r}")
        self.sample, self.size, self.generator = sample, batch, generator
        self.generators = {"batches": generator}

    def batch(self, step: int) -> Any:
        return self.sample(self.size, self.generator)


class Iterate:
    """The items of ``batches`` in order (whatever they are: tensors, tuples of tensors).

    Raises:
        ValueError: the iterable is exhausted before the run ends.

    Example:
        >>> Iterate([1, 2]).batch(0)
        1
    """

    epoch_length = None

    def __init__(self, batches: Iterable[Any]) -> None:
        self._it = iter(batches)
        self.generators: dict[str, torch.Generator] = {}

    def batch(self, step: int) -> Any:
        """The next item of the iterable (``step`` only names it in the error).

        Raises:
            ValueError: the iterable is exhausted.
        """
        try:
            return next(self._it)
        except StopIteration:
            raise ValueError(f"the iterable of batches ended at step {step}") from None
