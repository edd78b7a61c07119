"""Quantizers that wrap another one.

- :class:`Wrapper`: the base of every quantizer around another quantizer: its dimensions,
  index layout, hooks, codebooks and maintenance are the wrapped quantizer's;
- :class:`ChannelsFirst`: run any quantizer on channels-first tensors such as images
  ``(B, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..maintenance import ReplacementRule
from ..registry import QUANTIZERS
from ..types import QuantizerOutput
from .base import Quantizer, quantizer_from_config, quantizer_to_config


class Wrapper(Quantizer):
    """Base of the quantizers around another quantizer (:attr:`wrapped`).

    The dimensions, index layout and dtype, the hooks on flat ``(N, D)`` rows, the codebooks
    (:attr:`codebook_sizes`, :attr:`initialises_from_data`) and the maintenance
    (:meth:`init_codebook_`, :meth:`replace_dead_codes_`) are the wrapped quantizer's; a
    subclass overrides what it changes. Subclasses keep the wrapped quantizer under their own
    attribute name (its ``state_dict`` prefix) and return it from :attr:`wrapped`.
    """

    @property
    def wrapped(self) -> Quantizer:
        """The quantizer inside.

        Raises:
            NotImplementedError: a subclass that does not say where it keeps it.
        """
        raise NotImplementedError

    def _adopt(self, quantizer: Any, name: str) -> Quantizer:
        """Check ``quantizer`` and take its dimensions and index layout.

        Raises:
            TypeError: ``quantizer`` is not a :class:`~vqkit.quantizers.base.Quantizer`.
        """
        if not isinstance(quantizer, Quantizer):
            raise TypeError(f"{name} must be a Quantizer, got {type(quantizer).__name__}")
        self.dim = quantizer.dim
        self.index_shape = quantizer.index_shape
        self.index_dtype = quantizer.index_dtype
        return quantizer

    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        return self.wrapped._train_forward(x, keep)

    def _encode(self, x: Tensor) -> Tensor:
        return self.wrapped._encode(x)

    def _decode(self, indices: Tensor) -> Tensor:
        return self.wrapped._decode(indices)

    def _check_indices(self, indices: Tensor) -> None:
        self.wrapped._check_indices(indices)

    @property
    def initialises_from_data(self) -> bool:
        return self.wrapped.initialises_from_data

    # The wrapped quantizer owns any lazy data initialisation (its ``data_init`` and
    # ``initialised`` buffer); a wrapper that runs its hooks on the same rows runs its check.
    def _initialise_lazily_(self, flat: Tensor, keep: Tensor | None) -> None:
        self.wrapped._initialise_lazily_(flat, keep)

    def _check_initialised(self) -> None:
        self.wrapped._check_initialised()

    def init_codebook_(
        self, samples: Tensor, *, generator: torch.Generator | None = None, **options: Any
    ) -> None:
        """The wrapped quantizer's initialisation (``**options`` such as ``iters=`` and
        ``progress=`` go to it).

        Raises:
            TypeError / ValueError / NotImplementedError: as the wrapped quantizer's.
        """
        self.wrapped.init_codebook_(samples, generator=generator, **options)

    def replace_dead_codes_(
        self,
        threshold: float = 0.01,
        *,
        rule: ReplacementRule | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> int:
        """The wrapped quantizer's replacement (``**options`` such as ``pooled=`` go to it)."""
        return self.wrapped.replace_dead_codes_(threshold, rule=rule, generator=generator,
                                                **options)

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return self.wrapped.codebook_sizes


@QUANTIZERS.register
class ChannelsFirst(Wrapper):
    """Adapt a channel-last quantizer to ``(B, C, ...)`` inputs.

    ``quantized`` comes back channels-first; ``indices`` keep the quantizer's layout
    ``(B, ..., *index_shape)``, and ``mask`` is ``(B, ...)``. Everything else is the wrapped
    quantizer's: ``dim``, ``index_shape``, the training / eval behaviour, :attr:`codebook_sizes`,
    :meth:`replace_dead_codes_`, and its state (``state_dict`` keys start with ``quantizer.``).
    :func:`vqkit.save` stores the wrapped quantizer's type and config in this one's.

    Args:
        quantizer: the channel-last quantizer (C = its ``dim``).

    Raises:
        TypeError: ``quantizer`` is not a :class:`~vqkit.quantizers.base.Quantizer`.

    Example:
        >>> import torch
        >>> from vqkit import VectorQuantizer
        >>> q = ChannelsFirst(VectorQuantizer(dim=3, codebook_size=16))
        >>> out = q(torch.randn(2, 3, 5, 7))
        >>> out.quantized.shape, out.indices.shape
        (torch.Size([2, 3, 5, 7]), torch.Size([2, 5, 7]))
    """

    def __init__(self, quantizer: Quantizer) -> None:
        super().__init__()
        self.quantizer = self._adopt(quantizer, "quantizer")

    @property
    def wrapped(self) -> Quantizer:
        return self.quantizer

    @staticmethod
    def _last(x: Tensor, name: str = "x") -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2:
            raise ValueError(f"{name} must be (B, C, ...), got shape {tuple(x.shape)}")
        return x.movedim(1, -1)

    # -- the contract, on channels-first tensors ------------------------------------------------
    def forward(self, x: Tensor, *, mask: Tensor | None = None) -> QuantizerOutput:
        """Quantize the channel vectors of ``x``.

        Shape:
            x: ``(B, C, ...)``; mask: ``(B, ...)``; ``quantized`` ``(B, C, ...)``,
            ``indices`` ``(B, ..., *index_shape)``.

        Raises:
            TypeError: ``x`` is not a floating tensor, or ``mask`` is not a bool tensor.
            ValueError: ``x`` is not ``(B, C, ...)`` with C = ``dim`` or contains NaN/Inf,
                or ``mask`` is not ``(B, ...)``.
        """
        out = self.quantizer(self._last(x), mask=mask)
        return QuantizerOutput(out.quantized.movedim(-1, 1), out.indices, out.loss, out.losses)

    def encode(self, x: Tensor) -> Tensor:
        """Indices of the channel vectors of ``x (B, C, ...)``: ``(B, ..., *index_shape)``.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` is not ``(B, C, ...)`` with C = ``dim`` or contains NaN/Inf.
        """
        return self.quantizer.encode(self._last(x))

    def decode(self, indices: Tensor) -> Tensor:
        """Channels-first reconstruction ``(B, C, ...)`` from ``(B, ..., *index_shape)``.

        Raises:
            TypeError / ValueError: as the wrapped quantizer's :meth:`decode` (indices that
                are not an integer tensor of its index shape, with values in range).
        """
        return self.quantizer.decode(indices).movedim(-1, 1)

    # Flat (N, C) rows are the same in both layouts: the hooks are the wrapped quantizer's
    # (Wrapper's); initialisation takes channels-first samples.
    def init_codebook_(
        self, samples: Tensor, *, generator: torch.Generator | None = None, **options: Any
    ) -> None:
        """The wrapped quantizer's initialisation on the channel vectors of ``samples``
        (``(B, C, ...)``; an ``(N, C)`` matrix is already channels-first)."""
        super().init_codebook_(self._last(samples, "samples"), generator=generator, **options)

    def config(self) -> dict[str, Any]:
        return {"quantizer": quantizer_to_config(self.quantizer)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ChannelsFirst:
        return cls(quantizer_from_config(config["quantizer"]))
