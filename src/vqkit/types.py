"""Frozen dataclasses returned by the quantizers and estimators.

Shape glossary used across vqkit: ``N`` vectors, ``D`` = ``dim``, ``K`` = ``codebook_size``,
``M`` = ``num_codebooks``; ``...`` stands for any leading (batch, time, space) axes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

#: A progress callback: ``progress(done, total, info)`` after each unit of work, ``done`` of
#: ``total`` units; ``info`` holds what a progress bar may show (e.g. ``{"loss": 0.1}``). The
#: core reports long work through it and imports no progress-bar package;
#: :class:`vqkit.progress.bar_callback` draws one with tqdm.
Progress = Callable[[int, int, dict[str, Any]], None]


@dataclass(frozen=True)
class QuantizerOutput:
    """What every quantizer's ``forward`` returns, whatever its options.

    Attributes:
        quantized: ``(..., D)``, same dtype as the input. In training mode the estimator decides
            what it is (NSVQ returns ``x + ||x - q|| v/||v||``); in eval mode it is the hard
            reconstruction, equal to ``decode(encode(x))``.
        indices: int64, ``(...)`` for one codebook or ``(..., M)`` for several; ``-1`` marks
            masked or dropped entries. Space-filling VQ returns float curve positions instead.
        loss: scalar, the weighted sum of the auxiliary losses; add it to the task loss.
        losses: the unweighted named parts of ``loss`` (for logging); empty when there are none.
    """

    quantized: Tensor
    indices: Tensor
    loss: Tensor
    losses: Mapping[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class EstimatorOutput:
    """What an estimator returns: the training output and its auxiliary losses.

    Attributes:
        quantized: ``(N, D)`` training surrogate carrying the estimator's gradient.
        loss: scalar, weighted sum of ``losses``.
        losses: unweighted named parts.
    """

    quantized: Tensor
    loss: Tensor
    losses: Mapping[str, Tensor] = field(default_factory=dict)
