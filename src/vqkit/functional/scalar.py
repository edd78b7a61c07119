"""Finite scalar quantization as pure tensor functions ([mentzer2024fsq] App. A.1).

Channel ``i`` with ``L_i`` levels is bounded to ``(-L_i/2, L_i/2)`` and rounded to one of
``L_i`` integers ``k_i``; the code is ``k_i / floor(L_i/2)`` (in ``[-1, 1]``) and the index is
the mixed-radix number of the digits ``k_i + floor(L_i/2)`` with the first channel least
significant. Levels are int64 tensors ``(d,)``; nothing here builds the ``prod(L)``-entry
implicit codebook.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: The paper's margin that keeps the bounded value inside the outer levels.
FSQ_EPS = 1e-3


def fsq_bound(z: Tensor, levels: Tensor) -> Tensor:
    """``tanh(z + shift) * half_l - offset`` ([mentzer2024fsq] App. A.1).

    ``half_l = (L - 1)(1 - eps)/2``; even ``L`` are shifted by half a level (``offset = 1/2``,
    ``shift = tan(offset / half_l)``, the paper's code), so rounding gives ``L`` integers in
    ``[-floor(L/2), L - 1 - floor(L/2)]`` for odd and even ``L``.

    Shape:
        z: ``(..., d)`` floating; levels: ``(d,)`` integers; returns ``z``'s shape and dtype.
    """
    lv = levels.to(z.dtype)
    half_l = (lv - 1) * (1 - FSQ_EPS) / 2
    offset = (levels % 2 == 0).to(z.dtype) * 0.5
    shift = torch.tan(offset / half_l)
    return torch.addcmul(-offset, torch.tanh(z + shift), half_l)  # one temporary fewer


def half_widths(levels: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """``floor(L / 2)`` per channel: the code of integer level ``k`` is ``k / floor(L/2)``."""
    return (levels // 2).to(dtype)


def mixed_radix_basis(levels: Tensor) -> Tensor:
    """``(1, L_1, L_1 L_2, ...)``: the place value of each channel's digit (int64)."""
    ones = torch.ones(1, dtype=torch.long, device=levels.device)
    return torch.cumprod(torch.cat([ones, levels[:-1].long()]), dim=0)


def fsq_codes_to_indices(integers: Tensor, levels: Tensor, size: int | None = None) -> Tensor:
    """Mixed-radix index of rounded levels ``k (..., d)`` (floating or integer) -> ``(...)``.

    The sum of digits times place values is one matrix-vector product (autocast off), in
    fp32 while every partial sum is below ``2^24`` (exact), in fp64 below ``2^53``, else in
    int64. ``size``
    is ``prod(levels)`` if the caller knows it (saves a device-to-host read).
    """
    basis = mixed_radix_basis(levels)
    if size is None:
        size = int(levels.prod())
    if size > 2**53:
        return ((integers.long() + levels // 2) * basis).sum(dim=-1)
    dtype = torch.float32 if size <= 2**24 else torch.float64
    # sum_i (k_i + floor(L_i/2)) b_i = k . b + floor(L/2) . b: no (N, d) temporary
    offset = ((levels // 2) * basis).sum()
    with torch.autocast(device_type=integers.device.type, enabled=False):  # exact, not bf16
        return (integers.to(dtype) @ basis.to(dtype)).long() + offset


def fsq_indices_to_integers(indices: Tensor, levels: Tensor) -> Tensor:
    """Inverse of :func:`fsq_codes_to_indices`: ``(...)`` int64 -> integer levels ``k (..., d)``."""
    digits = (indices.unsqueeze(-1) // mixed_radix_basis(levels)) % levels
    return digits - levels // 2
