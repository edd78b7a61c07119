"""What one training step computes: the objective's :class:`StepResult`, and the objective of
a quantizer trained alone on its reconstruction error.

An objective is any callable ``objective(model, batch) -> StepResult``; ``batch`` is whatever
the batch source gives (a tensor, a tuple of tensors). The Trainer backpropagates ``loss``
and keeps meters of the optional parts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from torch import Tensor, nn

from ..quantizers import Quantizer


class StepResult(NamedTuple):
    """One step's loss and what the meters record of it.

    Attributes:
        loss: the scalar to backpropagate (its value is the ``loss`` meter).
        sq_err: ``(B,)`` squared error per vector (the ``mse`` meter, summed over ranks), or
            None.
        indices: the step's code indices (the ``usage`` and ``perplexity`` meters), or None.
        metrics: further named scalars, averaged over ranks (e.g. a model's reconstruction
            MSE beside its total loss).
    """

    loss: Tensor
    sq_err: Tensor | None = None
    indices: Tensor | None = None
    metrics: Mapping[str, float] | None = None


Objective = Callable[[nn.Module, Any], StepResult]


def reconstruction_objective(quantizer: Quantizer, x: Tensor) -> StepResult:
    """Loss, per-vector squared error and indices of quantizing ``x`` in training mode.

    The loss is ``mean((quantized - x)^2) + out.loss``: with NSVQ the first term is exactly the
    quantization error and trains the codebook through the noise substitution; with STE-style
    estimators the forward value is the codeword and ``out.loss`` (codebook + commitment)
    trains it; EMA codebooks learn inside forward.
    """
    out = quantizer(x)
    err = (out.quantized.float() - x.float()).pow(2)
    return StepResult(err.mean() + out.loss, err.detach().sum(dim=-1), out.indices)


def summed_error_objective(quantizer: Quantizer, x: Tensor) -> StepResult:
    """``mean ||x - quantized||^2 + out.loss`` (squared error summed over the vector's
    components, averaged over the batch): the loss of NSVQ's reference ``train.py``
    ([vali2022nsvqcode]); with NSVQ it equals the quantization error itself."""
    out = quantizer(x)
    err = (out.quantized - x).pow(2).sum(dim=-1)
    return StepResult(err.mean() + out.loss, err.detach(), out.indices)
