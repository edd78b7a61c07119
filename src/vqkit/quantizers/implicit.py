"""What FSQ, ResidualFSQ, LFQ and BSQ share: an implicit codebook, projections and estimators.

These quantizers have no codewords to store or learn: the code of a vector is computed
(rounded levels, signs), and the index is its number in a fixed enumeration. What they share:

- the input projection ``D -> d`` and output projection ``d -> D`` (``nn.Linear``, with
  bias) when ``dim`` differs from the code's dimension ``d`` ([mentzer2024fsq]: the
  quantizer sits between a projection down and one up); they run in the module's dtype with
  autocast off, and the quantization itself in fp32;
- the estimator check: the gradient passes the rounding / sign straight through
  (:class:`~vqkit.StraightThrough`, the papers' choice) or by noise substitution
  (:class:`~vqkit.NoiseSubstitution`: the rounding error replaced by a random error of the same
  norm, the additive-noise proxy of quantization). The rotation trick and DiVeQ are refused:
  both exist to move a learned codeword and to carry the geometry of a Voronoi cell to the
  input; here nothing is learned at the code, and their gradient is degenerate (the rotation
  trick's gain ``||q|| / ||x||`` is 0 for every input that FSQ rounds to the origin; DiVeQ's
  removes the component along the rounding error, which for a per-channel rounding is the
  channel itself);
- masks applied in place (:attr:`~.base.Quantizer.masks_in_place`): under ``torch.compile`` a
  masked training batch goes through whole, its masked rows zeroed at the input and at the
  estimator, so they give index -1, a zero output, no share of the losses and no weight in the
  entropy penalty (:meth:`ImplicitCodebookQuantizer._estimate`);
- no data-driven initialisation (:meth:`init_codebook_` raises ``NotImplementedError``, as the
  base contract says) and no dead codes (:meth:`replace_dead_codes_` returns 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..estimators import Estimator, NoiseSubstitution, StraightThrough
from .base import Quantizer, loss_over_kept

#: Estimators that make sense through an implicit codebook (see the module docstring).
ACCEPTED_ESTIMATORS: tuple[type[Estimator], ...] = (StraightThrough, NoiseSubstitution)


def check_implicit_estimator(estimator: Any, default: Estimator, owner: str) -> Estimator:
    """``estimator`` (``default`` when None) if it is an accepted estimator type.

    Raises:
        TypeError: not an :class:`~vqkit.Estimator`.
        ValueError: the rotation trick or DiVeQ (the message says why).
    """
    estimator = default if estimator is None else estimator
    if not isinstance(estimator, Estimator):
        raise TypeError(f"estimator must be an Estimator, got {estimator!r}")
    if type(estimator) not in ACCEPTED_ESTIMATORS:
        raise ValueError(
            f"{owner} cannot use {type(estimator).__name__}: an implicit codebook has no "
            "codewords to move, and that estimator's input gradient is degenerate there (the "
            "rotation trick's gain ||q||/||x|| is 0 where the code is the origin; DiVeQ "
            "removes the gradient along the rounding error); use StraightThrough or "
            "NoiseSubstitution"
        )
    return estimator


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1.

    Raises:
        ValueError: ``value`` is not an int >= 1 (the message names ``name``).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class ImplicitCodebookQuantizer(Quantizer):
    """Base class of the quantizers with a computed (implicit) codebook.

    Subclasses call :meth:`_setup` in their constructor. ``project_in`` / ``project_out`` are
    ``nn.Linear`` modules, or None when ``dim`` equals the code dimension.
    """

    project_in: nn.Linear | None
    project_out: nn.Linear | None
    estimator: Estimator
    masks_in_place = True

    def _setup(self, dim: int, code_dim: int) -> None:
        self.dim = check_positive_int(dim, "dim")
        self.code_dim = code_dim
        projected = self.dim != code_dim
        self.project_in = nn.Linear(self.dim, code_dim) if projected else None
        self.project_out = nn.Linear(code_dim, self.dim) if projected else None

    def _to_code_space(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """``(N, D)`` -> fp32 ``(N, d)``: the projected input (autocast off, module dtype).

        Rows where the optional ``keep (N,)`` is False are zeroed first, so a masked row's
        values (never checked against the projection's range) cannot overflow into the batch.
        """
        if keep is not None:
            x = x.where(keep[:, None], 0.0)
        if self.project_in is None:
            return x.float()
        w = self.project_in.weight
        with torch.autocast(device_type=x.device.type, enabled=False):
            return F.linear(x.to(w.dtype), w, self.project_in.bias).float()

    def _from_code_space(self, codes: Tensor) -> Tensor:
        """fp32 ``(N, d)`` -> ``(N, D)`` in the projection's dtype (fp32 without one)."""
        if self.project_out is None:
            return codes
        w = self.project_out.weight
        with torch.autocast(device_type=codes.device.type, enabled=False):
            return F.linear(codes.to(w.dtype), w, self.project_out.bias)

    def _estimate(
        self, values: Tensor, codes: Tensor, keep: Tensor | None
    ) -> tuple[Tensor, Tensor, Mapping[str, Tensor]]:
        """The estimator on ``values`` and their ``codes`` (fp32 ``(N, d)``, level units or
        signs): its output, loss and named losses.

        With a row mask ``keep (N,)`` (the in-place masked path) the masked rows of both are
        zero, so they give a zero output and zero losses, and the losses, means over all N
        rows, become means over the kept rows (:func:`~.base.loss_over_kept`).
        """
        if keep is None:
            out = self.estimator(values, codes, False)
            return out.quantized, out.loss, out.losses
        rows = keep[:, None]
        out = self.estimator(values.where(rows, 0.0), codes.where(rows, 0.0), False)
        return out.quantized, *loss_over_kept(keep, out.loss, out.losses)

    def _decode_rows(self, codes: Tensor, valid: Tensor) -> Tensor:
        """Codes ``(N, d)`` -> outputs, with rows where ``valid`` is False exactly zero."""
        out = self._from_code_space(codes)
        return out.where(valid[:, None], torch.zeros((), dtype=out.dtype, device=out.device))

    def _extra(self) -> str:
        return f"dim={self.dim}, projected={self.project_in is not None}"
