"""The check of the pixels every codec of the package is given."""

from __future__ import annotations

import numpy as np


def check_pixels(image: np.ndarray, channels: int, max_side: int,
                 max_pixels: int | None = None) -> None:
    """Check the pixels a codec is given: ``(H, W, channels)`` uint8, or ``(H, W, 1)`` (grey)
    for a colour model, with sides in ``[1, max_side]`` and at most ``max_pixels`` pixels
    (``None``: no limit).

    Raises:
        TypeError: ``image`` is not a uint8 numpy array.
        ValueError: the shape or the sides are not as above.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"image must be a uint8 numpy array, got {got}")
    if image.ndim != 3 or image.shape[2] not in {1, channels}:
        shapes = f"(H, W, {channels})" + (" or (H, W, 1)" if channels > 1 else
                                          " (the model codes grey images)")
        raise ValueError(f"image must have shape {shapes}, got {image.shape}")
    if not (1 <= image.shape[0] <= max_side and 1 <= image.shape[1] <= max_side):
        raise ValueError(f"image sides must be in [1, {max_side}], got {image.shape[:2]}")
    if max_pixels is not None and image.shape[0] * image.shape[1] > max_pixels:
        raise ValueError(f"image has {image.shape[0] * image.shape[1]} pixels, more than the "
                         f"{max_pixels} this codec codes in one piece; split it")
