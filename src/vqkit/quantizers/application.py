"""Where a multi-codebook quantizer applies its estimator: to the composite vector or per stage.

- :class:`OnComposite` (the default of [vali2023rpavq]): the codewords are selected by a
  hard search, the composite ``x_hat`` (sum or concatenation of differentiable lookups) is
  built, and ONE estimator call on ``(x, x_hat)`` gives the output, so gradients reach every
  selected codeword through the one error (NSVQ: ``x + ||x - x_hat|| v/||v||``).
- :class:`PerStage` (SoundStream / EnCodec): the estimator runs once per codebook on the
  codebook's target ``t_m`` (its residual for residual VQ, ``x`` minus the other codewords for
  additive VQ, its sub-vector for product VQ) and codeword ``c_m``; the losses are summed over
  stages. The forward value is the hard ``x_hat``; each stage contributes only its gradient
  (averaged over the active stages of a sum, so the input's gradient keeps unit scale).

Passing an :class:`~vqkit.Estimator` where a quantizer expects one means ``OnComposite(it)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..estimators import Estimator, NoiseSubstitution
from ..registry import APPLICATIONS, ESTIMATORS
from ..strategy import Strategy, from_config, to_config
from ..types import EstimatorOutput


class EstimatorApplication(Strategy):
    """Base class: holds the estimator; ``per_stage`` says which combination rule applies.

    Args:
        estimator: the :class:`~vqkit.Estimator` to apply (None: ``NoiseSubstitution()``).

    Raises:
        TypeError: ``estimator`` is neither None nor an :class:`~vqkit.Estimator`.
    """

    per_stage = False
    registry = APPLICATIONS

    def __init__(self, estimator: Estimator | None = None) -> None:
        estimator = NoiseSubstitution() if estimator is None else estimator
        if not isinstance(estimator, Estimator):
            raise TypeError(f"estimator must be an Estimator, got {estimator!r}")
        self.estimator = estimator

    def config(self) -> dict[str, Any]:
        return {"estimator": to_config(self.estimator)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EstimatorApplication:
        return cls(from_config(config["estimator"], ESTIMATORS))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.estimator!r})"


@APPLICATIONS.register
class OnComposite(EstimatorApplication):
    """One estimator call on the composite vector ([vali2023rpavq]).

    Args:
        estimator: the :class:`~vqkit.Estimator` to apply (None: ``NoiseSubstitution()``).

    Raises:
        TypeError: ``estimator`` is neither None nor an :class:`~vqkit.Estimator`.

    Example:
        >>> from vqkit import StraightThrough
        >>> OnComposite(StraightThrough())
        OnComposite(StraightThrough(beta=0.25))
    """

    def apply(self, x: Tensor, q: Tensor, by_gradient: bool) -> EstimatorOutput:
        return self.estimator(x.float(), q.float(), by_gradient)


@APPLICATIONS.register
class PerStage(EstimatorApplication):
    """The estimator per codebook, losses summed over stages (SoundStream / EnCodec,
    [zeghidour2021soundstream], [defossez2022encodec]).

    Args:
        estimator: the :class:`~vqkit.Estimator` to apply (None: ``NoiseSubstitution()``).

    Raises:
        TypeError: ``estimator`` is neither None nor an :class:`~vqkit.Estimator`.

    Example:
        >>> from vqkit import StraightThrough
        >>> PerStage(StraightThrough()).per_stage
        True
    """

    per_stage = True

    def apply_stages(
        self,
        targets: Sequence[Tensor],
        parts: Sequence[Tensor],
        valid: Tensor,
        by_gradient: bool,
    ) -> tuple[list[Tensor], Tensor, dict[str, Tensor]]:
        """Per-stage surrogates ``(N, d_m)`` (zero rows where invalid), total loss, losses.

        Args:
            targets: ``t_m`` per stage, differentiable with respect to the input.
            parts: selected codewords ``c_m`` per stage (zero rows where invalid).
            valid: ``(N, M)`` bool, the stages each vector uses.

        While compiling, :meth:`_apply_stages_fixed` runs instead (fixed shapes).
        """
        if torch.compiler.is_compiling():
            return self._apply_stages_fixed(targets, parts, valid, by_gradient)
        surrogates: list[Tensor] = []
        loss = targets[0].new_zeros((), dtype=torch.float32)
        losses: dict[str, Tensor] = {}
        for m, (t, c) in enumerate(zip(targets, parts, strict=True)):
            keep = valid[:, m]
            s = t.new_zeros(t.shape, dtype=torch.float32)
            if bool(keep.any()):
                out = self.estimator(t[keep].float(), c[keep].float(), by_gradient)
                s = s.index_put((keep,), out.quantized.float())
                loss = loss + out.loss
                for name, value in out.losses.items():
                    losses[name] = losses.get(name, 0.0) + value
            surrogates.append(s)
        return surrogates, loss, losses

    def _apply_stages_fixed(
        self,
        targets: Sequence[Tensor],
        parts: Sequence[Tensor],
        valid: Tensor,
        by_gradient: bool,
    ) -> tuple[list[Tensor], Tensor, dict[str, Tensor]]:
        """:meth:`apply_stages` without selecting the valid rows (a data-dependent shape).

        The estimator sees every row; an invalid row's target is replaced by its (zero)
        codeword, so it has no error, no loss and no gradient, and each stage's losses, means
        over all N rows, are rescaled to means over its valid rows. What differs from eager
        mode: the noise of NSVQ / DiVeQ is drawn for N rows instead of the valid ones, losses
        are rounded differently (last bits), and every loss name is present even when a stage
        has no valid row (value 0). Assumes, as every estimator of vqkit does, that losses are
        means over rows of terms that vanish when target and codeword coincide.
        """
        surrogates: list[Tensor] = []
        loss = targets[0].new_zeros((), dtype=torch.float32)
        losses: dict[str, Tensor] = {}
        rows = valid.shape[0]
        for m, (t, c) in enumerate(zip(targets, parts, strict=True)):
            keep = valid[:, m, None]
            scale = rows / valid[:, m].sum().clamp_min(1).to(torch.float32)
            out = self.estimator(torch.where(keep, t, c).float(), c.float(), by_gradient)
            surrogates.append(torch.where(keep, out.quantized.float(), 0.0))
            loss = loss + out.loss * scale
            for name, value in out.losses.items():
                losses[name] = losses.get(name, 0.0) + value * scale
        return surrogates, loss, losses


def as_application(estimator: Any) -> EstimatorApplication:
    """``OnComposite(estimator)`` for an Estimator or None; an application unchanged.

    Raises:
        TypeError: ``estimator`` is neither None, an :class:`~vqkit.Estimator` nor an
            :class:`EstimatorApplication`.
    """
    if isinstance(estimator, EstimatorApplication):
        return estimator
    if estimator is None or isinstance(estimator, Estimator):
        return OnComposite(estimator)
    raise TypeError(
        "estimator must be an Estimator, OnComposite(estimator) or PerStage(estimator), "
        f"got {estimator!r}"
    )


def application_from_config(config: Mapping[str, Any]) -> EstimatorApplication:
    """Rebuild from :func:`~vqkit.strategy.to_config` of an application; the config of a
    bare estimator means ``OnComposite(estimator)``, as passing the estimator itself does."""
    if config.get("type") in APPLICATIONS:
        return from_config(config, APPLICATIONS)
    return OnComposite(from_config(config, ESTIMATORS))
