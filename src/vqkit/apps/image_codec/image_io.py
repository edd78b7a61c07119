"""Image files in and out of the codec: every Pillow mode mapped deliberately, nothing lost
silently.

:func:`read_image` applies the EXIF orientation first, then maps the file's Pillow mode:

=========================================  ===================================================
mode                                       becomes
=========================================  ===================================================
``1``, ``L``, ``LA``                       grey ``(H, W, 1)`` (1-bit: 0 or 255)
``I;16``, ``I;16L``, ``I;16B``, ``I;16N``  grey, 16 bits to 8 by ``round(v / 257)``
``I`` from a PNG file                      the same (PNG samples have at most 16 bits; older
                                           Pillow opens 16-bit grey PNGs as ``I``)
``RGB``, ``RGBA``, ``RGBX``, ``P``,        colour ``(H, W, 3)``, by Pillow's conversion to RGB
``PA``, ``CMYK``, ``YCbCr``
``I`` (not PNG), ``F``, any other mode     refused: 32-bit and float samples have no known
                                           range to scale by
=========================================  ===================================================

An alpha channel (``LA``, ``PA``, ``RGBA``) or a transparency key (a transparent palette entry,
a PNG ``tRNS`` colour) is not part of the pixels: :attr:`SourceImage.translucent` says whether
any pixel was less than fully opaque, and the caller decides (``vqkit image compress`` refuses
such an image unless ``--drop-alpha``).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqkit.io.atomic import atomic_write
from vqkit.io.paths import input_file

from .codec import MAX_SIDE

#: 8-bit modes that Pillow converts to grey ``L`` (with alpha ``LA``) exactly.
GREY_MODES = frozenset({"1", "L", "LA"})
#: Modes that Pillow converts to ``RGB`` (with alpha ``RGBA``).
COLOUR_MODES = frozenset({"P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"})
#: Modes of 16-bit unsigned grey samples.
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
#: Modes with an alpha band.
ALPHA_MODES = frozenset({"LA", "PA", "RGBA"})


@dataclass(frozen=True)
class SourceImage:
    """An image file's pixels as the codec takes them, and what the file held beyond them.

    Attributes:
        pixels: ``(H, W, 1)`` grey or ``(H, W, 3)`` RGB, uint8, EXIF orientation applied.
        mode: the file's Pillow mode (``"I;16"``, ``"RGBA"``, ...), for messages.
        translucent: the file has an alpha channel or a transparency key and some pixel is
            less than fully opaque; ``pixels`` hold the colours without the alpha.
    """

    pixels: np.ndarray
    mode: str
    translucent: bool

    @property
    def grey(self) -> bool:
        """The source is greyscale: ``pixels`` has one channel."""
        return self.pixels.shape[2] == 1


def _from_16_bits(samples: np.ndarray, mode: str) -> np.ndarray:
    """16-bit samples -> ``(H, W, 1)`` uint8 by ``round(v / 257)`` (65535 -> 255)."""
    wide = samples.astype(np.int64)
    if wide.size and (wide.min() < 0 or wide.max() > 65535):
        raise ValueError(f"mode {mode} image has samples in [{wide.min()}, {wide.max()}], "
                         "outside the 16-bit range [0, 65535]")
    return ((wide + 128) // 257).astype(np.uint8)[..., None]


def _pixels(im, file_format: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(pixels (H, W, C) uint8, alpha (H, W) or None)`` of a Pillow image, by its mode."""
    mode, keyed = im.mode, "transparency" in im.info
    if mode in SIXTEEN_BIT_MODES or (mode == "I" and file_format == "PNG"):
        samples = np.asarray(im)
        alpha = np.where(samples == im.info["transparency"], 0, 255) if keyed else None
        return _from_16_bits(samples, mode), alpha
    if mode in GREY_MODES:
        target = "L"
    elif mode in COLOUR_MODES:
        target = "RGB"
    elif mode in ("I", "F"):
        raise ValueError(f"mode {mode} images (32-bit integer or float samples) have no known "
                         "range to scale to 8 bits; save the image with 8 or 16 bits")
    else:
        raise ValueError(f"mode {mode} images are not supported; save the image as RGB or grey")
    if mode in ALPHA_MODES or keyed:
        both = np.asarray(im.convert(target + "A"))
        return both[..., :-1], both[..., -1]
    return np.asarray(im.convert(target)).reshape(im.size[1], im.size[0], -1), None


def read_image(path: str | os.PathLike[str]) -> SourceImage:
    """An image file as the codec takes it: EXIF orientation applied, grey or RGB (module doc).

    The declared size is checked (sides at most :data:`MAX_SIDE`) before the pixels are
    decoded, so a small file declaring 100000 x 100000 pixels allocates nothing.

    Raises:
        ImportError: Pillow is not installed.
        FileNotFoundError: ``path`` is not a file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: Pillow cannot read the file as an image (truncated, corrupt), its sides
            exceed :data:`MAX_SIDE`, its mode is refused (32-bit or float samples, an
            unsupported mode, naming it), or ``path`` is a FIFO, a device or a symbolic-link
            loop.
    """
    from vqkit.data._errors import require_module

    pil = require_module("PIL.Image", "pip install pillow")
    from PIL import ImageOps

    path = input_file(path, "image file")
    try:
        with pil.open(path) as im:
            if max(im.size) > MAX_SIDE:
                raise ValueError(f"{path} declares {im.size[0]} x {im.size[1]} pixels; sides "
                                 f"must be at most {MAX_SIDE}")
            mode, file_format = im.mode, im.format
            try:
                pixels, alpha = _pixels(ImageOps.exif_transpose(im), file_format)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
    except (pil.UnidentifiedImageError, pil.DecompressionBombError, OSError, SyntaxError,
            EOFError) as err:  # Pillow's errors for corrupt, truncated or huge images
        raise ValueError(f"{path} is not an image Pillow can read: "
                         f"{' '.join(str(err).split())}") from err
    translucent = alpha is not None and bool((alpha < 255).any())
    return SourceImage(np.ascontiguousarray(pixels), mode, translucent)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write ``(H, W, C)`` uint8 (C = 1: grey, 3: RGB) atomically; the format follows the
    suffix (PNG if none)."""
    from PIL import Image

    buf = io.BytesIO()
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(buf, format=fmt)
    atomic_write(path, lambda f: f.write(buf.getvalue()))

