"""The codecs a user already has, on whole images: JPEG, WebP and AVIF through Pillow.

Each is run as a user would: a whole file per image at a range of quality settings, with the
settings its documentation recommends for the smallest files (JPEG with optimised Huffman
tables, ``optimize=True``; WebP with ``method=6``, the slowest and best; AVIF with Pillow's
defaults, libavif's speed 6). The rate of a file is its size in bits over the image's pixels;
:func:`whole_image_quality` gives the quality the codec comparison reports for any decoded
image: its squared error and SSIM ([wang2004ssim], scikit-image's
``structural_similarity`` with the paper's Gaussian window, [vanderwalt2014skimage]).
"""

from __future__ import annotations

import io

import numpy as np

from vqkit.data._errors import require_module

#: Pillow's save options per format (the documented best-compression settings).
SAVE_OPTIONS = {
    "JPEG": {"optimize": True},
    "WEBP": {"method": 6},
    "AVIF": {},
}
FORMATS = tuple(SAVE_OPTIONS)
#: Quality settings swept (Pillow's 0-100 scale; JPEG takes 1-95).
QUALITIES = (2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95)


def available(fmt: str) -> bool:
    """Whether this Pillow can write ``fmt`` (AVIF needs Pillow >= 11.2 built with libavif).

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
        ImportError: Pillow is not installed.
    """
    if fmt not in SAVE_OPTIONS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    features = require_module("PIL.features", "pip install pillow")
    return bool(features.check({"JPEG": "jpg", "WEBP": "webp", "AVIF": "avif"}[fmt]))


def roundtrip(image: np.ndarray, fmt: str, quality: int) -> tuple[np.ndarray, int]:
    """``(decoded image, file bytes)`` of ``image`` saved as ``fmt`` at ``quality``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        fmt: ``"JPEG"``, ``"WEBP"`` or ``"AVIF"``.
        quality: Pillow's quality setting.

    Raises:
        ValueError: ``fmt`` is unknown, or this Pillow cannot write it.
        ImportError: Pillow is not installed.

    Example:
        >>> img = np.zeros((16, 16, 3), np.uint8)
        >>> out, size = roundtrip(img, "JPEG", 90)
        >>> out.shape, size > 0
        ((16, 16, 3), True)
    """
    if not available(fmt):
        raise ValueError(f"this Pillow cannot write {fmt}")
    pil = require_module("PIL.Image", "pip install pillow")
    buf = io.BytesIO()
    pil.fromarray(image).save(buf, format=fmt, quality=int(quality), **SAVE_OPTIONS[fmt])
    size = buf.tell()
    buf.seek(0)
    with pil.open(buf) as im:
        return np.asarray(im.convert("RGB")), size


def whole_image_quality(reference: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """``{"mse", "ssim"}`` of a decoded image against its reference (8-bit scale).

    ``mse`` is the mean squared error over every pixel and channel (in 8-bit levels squared);
    ``ssim`` is scikit-image's with [wang2004ssim]'s window (``gaussian_weights=True``,
    sigma 1.5, population covariances), averaged over the channels; grey images are
    ``(H, W, 1)``.

    Raises:
        ValueError: the images differ in shape or are not ``(H, W, C)`` uint8.
        ImportError: scikit-image is not installed.

    Example:
        >>> a = np.zeros((16, 16, 3), np.uint8)
        >>> b = a.copy(); b[0, 0, 0] = 16
        >>> whole_image_quality(a, b)["mse"]
        0.3333333333333333
    """
    for name, img in (("reference", reference), ("decoded", decoded)):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3:
            raise ValueError(f"{name} must be an (H, W, C) uint8 array")
    if reference.shape != decoded.shape:
        raise ValueError(f"shapes differ: {reference.shape} and {decoded.shape}")
    metrics = require_module("skimage.metrics", "pip install scikit-image")
    err = reference.astype(np.float64) - decoded.astype(np.float64)
    ssim = metrics.structural_similarity(
        reference, decoded, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False)
    return {"mse": float(np.mean(err * err)), "ssim": float(ssim)}
