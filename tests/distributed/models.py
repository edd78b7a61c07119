"""Small models and data shared by the distributed tests and their one-process oracles."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DIM = 8


class Tiny(nn.Module):
    """Linear encoder -> quantizer -> linear decoder; ``forward`` returns the training loss."""

    def __init__(self, quantizer: nn.Module, dim: int = DIM) -> None:
        super().__init__()
        self.enc = nn.Linear(dim, dim)
        self.vq = quantizer
        self.dec = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        out = self.vq(self.enc(x))
        return F.mse_loss(self.dec(out.quantized), x) + out.loss


def clustered(n: int, seed: int, dim: int = DIM, clusters: int = 6) -> Tensor:
    """``(n, dim)`` points around ``clusters`` well-separated centres (seeded)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=g) * 4.0
    which = torch.randint(0, clusters, (n,), generator=g)
    return centres[which] + 0.3 * torch.randn(n, dim, generator=g)


def train(model: nn.Module, batches: list[Tensor], lr: float = 0.05) -> None:
    """Plain SGD over ``batches``, one step each."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    for x in batches:
        opt.zero_grad()
        model(x).backward()
        opt.step()
