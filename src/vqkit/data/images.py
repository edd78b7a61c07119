"""Image patches from photographs that install offline, split into train and test by photo.

Sources: the photographs bundled in the scikit-image wheel ([vanderwalt2014skimage];
``pip install scikit-image``), plus, when installed, Debian ``opencv-doc`` samples and
``mate-backgrounds`` nature photographs ([debian2023images]).
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
    """One bundled scikit-image photo as float32 in [0, 1], ``(H, W)`` or ``(H, W, 3)``.

    Raises:
        ImportError: scikit-image is not installed.
        ValueError: ``name`` is not one of :data:`SKIMAGE_PHOTOS`.
    """
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

    Raises:
        ValueError: ``test_photos`` names a photo not in :data:`SKIMAGE_PHOTOS`.
        ImportError: scikit-image is not installed.
    """
    unknown = set(test_photos) - set(SKIMAGE_PHOTOS)
    if unknown:
        raise ValueError(f"test_photos contains unknown photos {sorted(unknown)}")
    train, test = [], []
    for name in SKIMAGE_PHOTOS:
        p = patches(skimage_photo(name, grey), size, stride)
        (test if name in test_photos else train).append(p)
    return np.concatenate(train), np.concatenate(test)


# -- colour photographs from three offline sources (scikit-image, opencv-doc, mate-backgrounds) --

#: Debian ``opencv-doc`` sample directory and the natural colour photos used from it.
OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
OPENCV_PHOTOS: tuple[str, ...] = (
    "aloeL.jpg", "apple.jpg", "baboon.jpg", "building.jpg", "butterfly.jpg", "fruits.jpg",
    "graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg",
    "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg",
)
#: Debian ``mate-backgrounds`` nature photographs.
MATE_NATURE = "/usr/share/backgrounds/mate/nature"
MATE_PHOTOS: tuple[str, ...] = (
    "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
    "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg",
)
#: Photos held out for testing (never a training patch), named ``source:name``.
NATURAL_TEST_PHOTOS: tuple[str, ...] = (
    "skimage:camera", "skimage:coffee", "opencv:baboon.jpg", "opencv:fruits.jpg",
    "opencv:building.jpg", "mate:LadyBird.jpg", "mate:Storm.jpg",
)


def read_photo(path: str, max_side: int = 768) -> np.ndarray:
    """An image file as float32 RGB ``(H, W, 3)`` in [0, 1], box-downscaled by an integer
    factor until its longer side is at most ``max_side`` (downscaled photos have CIFAR-like
    detail per pixel).

    Raises:
        ImportError: Pillow is not installed.
    """
    image_mod = require_module("PIL.Image", "pip install pillow")
    with image_mod.open(path) as im:
        im = im.convert("RGB")
        factor = -(-max(im.size) // max_side)
        if factor > 1:
            im = im.reduce(factor)
        return np.asarray(im, dtype=np.float32) / 255.0


def natural_photos(max_side: int = 768) -> dict[str, np.ndarray]:
    """All available colour photos as ``{"source:name": (H, W, 3) float32}``.

    scikit-image's photos are required; the opencv-doc and mate-backgrounds photos are used
    when their Debian packages are installed (a missing package logs nothing and is skipped,
    so check the keys when the exact set matters).

    Raises:
        ImportError: scikit-image (or, for the Debian photos, Pillow) is not installed.
    """
    import os

    photos = {f"skimage:{n}": skimage_photo(n, grey=False) for n in SKIMAGE_PHOTOS}
    for source, root, names in (("opencv", OPENCV_DATA, OPENCV_PHOTOS),
                                ("mate", MATE_NATURE, MATE_PHOTOS)):
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path):
                photos[f"{source}:{name}"] = read_photo(path, max_side)
    return photos


def split_photos(
    photos: dict[str, np.ndarray], test_photos: Sequence[str] = NATURAL_TEST_PHOTOS
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split photos into ``(train, test)`` lists by name; test names must be present.

    Raises:
        ValueError: a name of ``test_photos`` is not a key of ``photos``.
    """
    missing = sorted(set(test_photos) - set(photos))
    if missing:
        raise ValueError(f"test_photos {missing} are not among the loaded photos")
    train = [img for name, img in photos.items() if name not in test_photos]
    test = [photos[name] for name in test_photos]
    return train, test
