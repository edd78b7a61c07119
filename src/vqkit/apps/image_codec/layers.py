"""Building blocks shared by the codec networks."""

from __future__ import annotations

from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """``x + conv_k(act(conv_3x3(act(x))))``: a pre-activation residual block that keeps the
    shape ``(B, width, H, W)``.

    Args:
        width: channels in and out.
        kernel: side of the second convolution (1 or 3).
        activation: the nonlinearity's class (``nn.ReLU``, ``nn.GELU``).
    """

    def __init__(self, width: int, kernel: int = 1, activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.body = nn.Sequential(
            activation(), nn.Conv2d(width, width, 3, padding=1), activation(),
            nn.Conv2d(width, width, kernel, padding=kernel // 2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)
