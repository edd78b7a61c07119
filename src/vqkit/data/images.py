"""Image patches from photographs that install offline, split into train and test by photo.

Sources (reference/DATA.md (a)): the photographs bundled in the scikit-image wheel
(``pip install scikit-image``), plus, when installed, Debian ``opencv-doc`` samples and
``mate-backgrounds`` nature photographs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._errors import require_module

#: scikit-image photographs (natural scenes; the synthetic and text images are left out).
SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field",
    "immunohistochemistry", "moon", "grass", "gravel", "brick", "coins", "horse", "retina",
    "cell", "clock",
)
#: Default split by photo: the test photos never contribute training patches.
SKIMAGE_TEST_PHOTOS: tuple[str, ...] = ("camera", "coffee", "gravel", "coins")


def skimage_photo(name: str, grey: bool = True) -> np.ndarray:
    """One bundled scikit-image photo as float32 in [0, 1], ``(H, W)`` or ``(H, W, 3)``."""
    data = require_module("skimage.data", "pip install scikit-image")
    if name not in SKIMAGE_PHOTOS:
        raise ValueError(f"unknown photo {name!r}; known: {', '.join(SKIMAGE_PHOTOS)}")
    img = np.asarray(getattr(data, name)(), dtype=np.float32)
    if img.max() > 1.0:
        img = img / 255.0
    if img.ndim == 3:
        img = img[..., :3]
        if grey:
            img = img @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    elif not grey:
        img = np.repeat(img[..., None], 3, axis=-1)
    return img.astype(np.float32)


def patches(image: np.ndarray, size: int, stride: int | None = None) -> np.ndarray:
    """Non-overlapping (or ``stride``-spaced) ``size x size`` patches, ``(N, size, size[, C])``."""
    stride = size if stride is None else stride
    h, w = image.shape[:2]
    if h < size or w < size:
        return np.empty((0, size, size, *image.shape[2:]), dtype=image.dtype)
    rows = range(0, h - size + 1, stride)
    cols = range(0, w - size + 1, stride)
    return np.stack([image[r : r + size, c : c + size] for r in rows for c in cols])


def skimage_patches(
    size: int = 32,
    *,
    grey: bool = True,
    stride: int | None = None,
    test_photos: Sequence[str] = SKIMAGE_TEST_PHOTOS,
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test patches of the scikit-image photos, split by photo.

    Returns:
        ``(train, test)`` float32 arrays ``(N, size, size)`` (grey) or ``(N, size, size, 3)``.
    """
    unknown = set(test_photos) - set(SKIMAGE_PHOTOS)
    if unknown:
        raise ValueError(f"test_photos contains unknown photos {sorted(unknown)}")
    train, test = [], []
    for name in SKIMAGE_PHOTOS:
        p = patches(skimage_photo(name, grey), size, stride)
        (test if name in test_photos else train).append(p)
    return np.concatenate(train), np.concatenate(test)
