"""Reference codecs a user would pick instead: JPEG and WebP (Pillow) on the same test tiles.

Each test photo (cropped to whole tiles) is compressed at a range of quality settings; the rate
is the **file** size in bits over all test pixels, and the quality is the mean per-tile PSNR
and SSIM over exactly the tiles the learned codec is evaluated on. :func:`at_rate` interpolates
a curve at a given bits-per-pixel, the "matched rate" reference point.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from .evaluate import psnr_per_image, ssim_per_image

FORMATS = ("JPEG", "WEBP")
DEFAULT_QUALITIES = (1, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90)


def _roundtrip(image: np.ndarray, fmt: str, quality: int) -> tuple[np.ndarray, int]:
    from vqkit.data._errors import require_module

    pil = require_module("PIL.Image", "pip install pillow")
    buf = io.BytesIO()
    pil.fromarray(image).save(buf, format=fmt, quality=int(quality))
    size = buf.tell()
    buf.seek(0)
    with pil.open(buf) as im:
        return np.asarray(im.convert("RGB")), size


def _tiles(image: np.ndarray, tile: int) -> torch.Tensor:
    h, w = image.shape[0] // tile * tile, image.shape[1] // tile * tile
    t = torch.from_numpy(image[:h, :w].copy()).float().div_(255.0).permute(2, 0, 1)
    t = t.reshape(3, h // tile, tile, w // tile, tile).permute(1, 3, 0, 2, 4)
    return t.reshape(-1, 3, tile, tile)


def rate_distortion(
    photos: Sequence[np.ndarray],
    fmt: str,
    *,
    tile: int = 32,
    qualities: Sequence[int] = DEFAULT_QUALITIES,
) -> list[dict[str, float]]:
    """One ``{"quality", "bits_per_pixel", "psnr", "ssim"}`` point per quality setting.

    Args:
        photos: ``(H, W, 3)`` float images in [0, 1] (cropped here to whole tiles).
        fmt: ``"JPEG"`` or ``"WEBP"``.
        tile: side of the square tiles in pixels.
        qualities: Pillow quality settings (1-95).

    Returns:
        One point per quality: rate in bits per pixel (file bits over all cropped pixels),
        mean per-tile PSNR in dB and mean per-tile SSIM.

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
        ImportError: Pillow is not installed.

    Example:
        >>> img = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
        >>> pts = rate_distortion([img], "JPEG", qualities=(10, 90))
        >>> pts[0]["bits_per_pixel"] < pts[1]["bits_per_pixel"]
        True
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    cropped = []
    for p in photos:
        h, w = p.shape[0] // tile * tile, p.shape[1] // tile * tile
        cropped.append(np.round(p[:h, :w, :3] * 255.0).astype(np.uint8))
    pixels = sum(c.shape[0] * c.shape[1] for c in cropped)
    points = []
    for q in qualities:
        bits, psnrs, ssims = 0, [], []
        for img in cropped:
            dec, size = _roundtrip(img, fmt, q)
            bits += 8 * size
            x, y = _tiles(img, tile), _tiles(dec, tile)
            psnrs.append(psnr_per_image(x, y))
            ssims.append(ssim_per_image(x, y))
        p = torch.cat(psnrs)
        points.append({
            "quality": int(q),
            "bits_per_pixel": bits / pixels,
            "psnr": float(p[torch.isfinite(p)].mean()),
            "ssim": float(torch.cat(ssims).mean()),
        })
    return points


def at_rate(points: Sequence[dict[str, float]], bits_per_pixel: float, key: str = "psnr") -> float:
    """``key`` of a rate-distortion curve linearly interpolated at ``bits_per_pixel``
    (NaN outside the measured range).

    Example:
        >>> pts = [{"bits_per_pixel": 0.5, "psnr": 20.0}, {"bits_per_pixel": 1.0, "psnr": 30.0}]
        >>> at_rate(pts, 0.75)
        25.0
    """
    pts = sorted(points, key=lambda p: p["bits_per_pixel"])
    rates = [p["bits_per_pixel"] for p in pts]
    if not pts or bits_per_pixel < rates[0] or bits_per_pixel > rates[-1]:
        return float("nan")
    return float(np.interp(bits_per_pixel, rates, [p[key] for p in pts]))
