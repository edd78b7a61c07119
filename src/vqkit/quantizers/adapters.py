"""ChannelsFirst: run any quantizer on channels-first tensors such as images ``(B, C, H, W)``."""

from __future__ import annotations

from torch import Tensor, nn

from ..types import QuantizerOutput
from .base import Quantizer


class ChannelsFirst(nn.Module):
    """Adapt a channel-last quantizer to ``(B, C, ...)`` inputs.

    ``quantized`` comes back channels-first; ``indices`` keep the quantizer's layout
    ``(B, ..., *index_shape)``, and ``mask`` is ``(B, ...)``.

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
        self.quantizer = quantizer

    @staticmethod
    def _last(x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise ValueError(f"x must be (B, C, ...), got shape {tuple(x.shape)}")
        return x.movedim(1, -1)

    def forward(self, x: Tensor, *, mask: Tensor | None = None) -> QuantizerOutput:
        out = self.quantizer(self._last(x), mask=mask)
        return QuantizerOutput(out.quantized.movedim(-1, 1), out.indices, out.loss, out.losses)

    def encode(self, x: Tensor) -> Tensor:
        return self.quantizer.encode(self._last(x))

    def decode(self, indices: Tensor) -> Tensor:
        return self.quantizer.decode(indices).movedim(-1, 1)
