"""Quality metrics of the codec: PSNR and SSIM per image, and a model evaluation.

SSIM follows [wang2004ssim] with scikit-image's ``gaussian_weights=True`` settings: an
11-tap Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, population covariances, the mean
over the valid (un-padded) positions and over channels. The tests check it against
``skimage.metrics.structural_similarity``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from vqkit.functional.metrics import perplexity

from .model import ImageCodecModel


def _check_pair(x: Tensor, y: Tensor) -> None:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("x and y must be torch.Tensors")
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"x and y must be equal (B, C, H, W) shapes, got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")


def psnr_per_image(x: Tensor, y: Tensor, peak: float = 1.0) -> Tensor:
    """``(B,)`` PSNR in dB of each image pair (float64); identical images give ``inf``.

    Shape:
        ``x`` and ``y`` ``(B, C, H, W)`` in units of ``peak`` (1.0 for [0, 1] pixels).

    Raises:
        TypeError: ``x`` or ``y`` is not a tensor.
        ValueError: ``x`` and ``y`` are not equal ``(B, C, H, W)`` shapes.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); y = x + 0.1
        >>> round(float(psnr_per_image(x, y)[0]), 6)
        20.0
    """
    _check_pair(x, y)
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(peak**2 / mse)


def ssim_per_image(x: Tensor, y: Tensor, data_range: float = 1.0, sigma: float = 1.5) -> Tensor:
    """``(B,)`` mean SSIM of each image pair (float64), averaged over channels
    ([wang2004ssim]; the window as in the module docstring).

    Shape:
        ``x`` and ``y`` ``(B, C, H, W)``, pixels in ``[0, data_range]``; ``sigma`` in pixels.

    Raises:
        TypeError: ``x`` or ``y`` is not a tensor.
        ValueError: ``x`` and ``y`` are not equal ``(B, C, H, W)`` shapes, or H or W is
            smaller than the window (``2 * int(3.5 * sigma + 0.5) + 1`` pixels).

    Example:
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim_per_image(x, x).tolist()
        [1.0, 1.0]
    """
    _check_pair(x, y)
    radius = int(3.5 * sigma + 0.5)  # scipy's truncate=3.5, as skimage uses
    if min(x.shape[-2:]) < 2 * radius + 1:
        raise ValueError(
            f"images must be at least {2 * radius + 1} pixels wide, got {tuple(x.shape)}"
        )
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    h, w = x.shape[-2:]

    def band(n: int) -> Tensor:  # (n - 2r, n): row i holds the window of output pixel i
        rows = torch.arange(n - 2 * radius)[:, None]
        cols = torch.arange(n)[None, :]
        offset = cols - rows
        inside = (offset >= 0) & (offset <= 2 * radius)
        return torch.where(inside, g[offset.clamp(0, 2 * radius)], torch.zeros((), dtype=g.dtype))

    bh, bw = band(h), band(w).T

    def blur(z: Tensor) -> Tensor:  # separable, valid positions only; matmul is fast in fp64
        return bh @ z @ bw

    x, y = x.double(), y.double()
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def index_perplexity(indices: Tensor, codebook_size: int) -> float:
    """Mean over codebooks of the index perplexity (the last axis is the codebook when
    ``indices`` comes from a multi-codebook quantizer)."""
    if indices.dim() == 4:
        return sum(perplexity(indices[..., m], codebook_size)
                   for m in range(indices.shape[-1])) / indices.shape[-1]
    return perplexity(indices, codebook_size)


@torch.no_grad()
def evaluate(model: ImageCodecModel, tiles: Tensor, batch_size: int = 256) -> dict[str, Any]:
    """Mean per-tile PSNR and SSIM of ``model``'s reconstruction of ``tiles``, with the index
    perplexity and the payload bits per pixel.

    Example:
        >>> from vqkit.apps.image_codec.config import CodecConfig
        >>> m = ImageCodecModel(CodecConfig(tile=16, hidden=8, latent_dim=4)).eval()
        >>> sorted(evaluate(m, torch.rand(3, 3, 16, 16)))
        ['bits_per_pixel', 'perplexity', 'psnr', 'ssim', 'tiles']
    """
    model.eval()
    psnrs, ssims, indices = [], [], []
    for start in range(0, tiles.shape[0], batch_size):
        x = tiles[start : start + batch_size]
        idx = model.encode(x)
        y = model.decode(idx)
        psnrs.append(psnr_per_image(x, y))
        ssims.append(ssim_per_image(x, y))
        indices.append(idx)
    p = torch.cat(psnrs)
    finite = p[torch.isfinite(p)]
    return {
        "psnr": float(finite.mean()) if finite.numel() else math.inf,
        "ssim": float(torch.cat(ssims).mean()),
        "perplexity": index_perplexity(torch.cat(indices), model.config.quantizer.codebook_size),
        "bits_per_pixel": model.config.bits_per_pixel,
        "tiles": int(tiles.shape[0]),
    }
