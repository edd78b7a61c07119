"""Training and test tiles for the image codec.

- ``"natural"``: colour photos that install offline (scikit-image, Debian ``opencv-doc`` and
  ``mate-backgrounds``; :mod:`vqkit.data.images`), split **by photo**. Training draws random
  crops from the training photos; the test set is every non-overlapping tile of the held-out
  photos. This is our stand-in for CIFAR-10, which cannot be had offline.
- ``"fashion-mnist"``: the Debian ``dataset-fashion-mnist`` images (grey, 28 x 28).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

DATASETS = ("natural", "fashion-mnist")


class TileSource:
    """Draws training batches ``(B, C, tile, tile)`` in [0, 1] with a torch.Generator."""

    channels: int
    tile: int

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """``batch_size`` tiles ``(batch_size, channels, tile, tile)`` in [0, 1].

        Raises:
            NotImplementedError: a subclass does not implement it.
        """
        raise NotImplementedError


class PhotoCrops(TileSource):
    """Uniformly random ``tile x tile`` crops of a list of ``(H, W, C)`` photos; a photo is
    picked with probability proportional to its number of crop positions.

    Raises:
        ValueError: no photo is at least ``tile x tile``.

    Example:
        >>> import numpy as np
        >>> src = PhotoCrops([np.zeros((40, 50, 3), np.float32)], tile=32)
        >>> src.sample(4, torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(self, photos: Sequence[np.ndarray], tile: int) -> None:
        self.photos = [p for p in photos if p.shape[0] >= tile and p.shape[1] >= tile]
        if not self.photos:
            raise ValueError(f"photos must hold at least one image of at least {tile}x{tile}")
        self.tile = int(tile)
        self.channels = int(self.photos[0].shape[2])
        positions = [(p.shape[0] - tile + 1) * (p.shape[1] - tile + 1) for p in self.photos]
        self.weights = torch.tensor(positions, dtype=torch.float64)

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        which = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        u = torch.rand(batch_size, 2, generator=generator, dtype=torch.float64)
        out = np.empty((batch_size, self.tile, self.tile, self.channels), np.float32)
        for b, (i, (uy, ux)) in enumerate(zip(which.tolist(), u.tolist(), strict=False)):
            p = self.photos[i]
            y = int(uy * (p.shape[0] - self.tile + 1))
            x = int(ux * (p.shape[1] - self.tile + 1))
            out[b] = p[y : y + self.tile, x : x + self.tile]
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


class AugmentedCrops(PhotoCrops):
    """Random crops of photos at several scales, each flipped left-right with probability 1/2.

    Every photo is also resampled (Pillow's Lanczos filter) to each factor of ``scales``
    below 1, and the crops are drawn uniformly over the positions of all the versions, so a
    crop shows the texture of a photo at several sizes, as whole images of other cameras and
    resolutions do.

    Args:
        photos: ``(H, W, C)`` float arrays in [0, 1].
        tile: crop side.
        scales: resampling factors (1 keeps the photo as it is).

    Raises:
        ValueError: a scale is not in ``(0, 1]``, or no version of a photo is ``tile x tile``.
        ImportError: Pillow is not installed.

    Example:
        >>> import numpy as np
        >>> src = AugmentedCrops([np.zeros((40, 50, 3), np.float32)], 16, scales=(1.0, 0.5))
        >>> len(src.photos), src.sample(3, torch.Generator().manual_seed(0)).shape
        (2, torch.Size([3, 3, 16, 16]))
    """

    def __init__(self, photos: Sequence[np.ndarray], tile: int,
                 scales: Sequence[float] = (1.0, 0.75, 0.5)) -> None:
        if not scales or any(not 0 < s <= 1 for s in scales):
            raise ValueError(f"scales must be in (0, 1], got {tuple(scales)}")
        super().__init__([_resampled(p, s) for p in photos for s in scales], tile)

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        crops = super().sample(batch_size, generator)
        flip = torch.rand(batch_size, generator=generator) < 0.5
        crops[flip] = crops[flip].flip(-1)
        return crops


def _resampled(photo: np.ndarray, scale: float) -> np.ndarray:
    """``photo`` resampled by ``scale`` (Lanczos, on its 8-bit values); 1 returns it as is."""
    if scale == 1:
        return photo
    from vqkit.data._errors import require_module

    image = require_module("PIL.Image", "pip install pillow")
    h, w = photo.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    u8 = (np.clip(photo, 0, 1) * 255).round().astype(np.uint8)
    channels = u8.shape[2]
    im = image.fromarray(u8[..., 0] if channels == 1 else u8)
    out = np.asarray(im.resize(size, image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    return out.reshape(size[1], size[0], channels)


class TensorTiles(TileSource):
    """Random rows of a fixed ``(N, C, tile, tile)`` tensor (for example Fashion-MNIST).

    Raises:
        ValueError: ``tiles`` is not ``(N, C, T, T)``.
    """

    def __init__(self, tiles: Tensor) -> None:
        if tiles.dim() != 4 or tiles.shape[2] != tiles.shape[3]:
            raise ValueError(f"tiles must be (N, C, T, T), got {tuple(tiles.shape)}")
        self.tiles = tiles
        self.channels = int(tiles.shape[1])
        self.tile = int(tiles.shape[2])

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        rows = torch.randint(0, self.tiles.shape[0], (batch_size,), generator=generator)
        return self.tiles[rows]


def grid_tiles(photos: Sequence[np.ndarray], tile: int) -> Tensor:
    """Every non-overlapping ``tile x tile`` tile of each photo, ``(N, C, tile, tile)``."""
    from vqkit.data.images import patches

    chunks = [patches(p, tile) for p in photos]
    stacked = np.concatenate([c for c in chunks if len(c)])
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()


_CACHE: dict[tuple[str, int], tuple[TileSource, Tensor]] = {}


def load_dataset(name: str = "natural", tile: int = 32) -> tuple[TileSource, Tensor]:
    """``(train_source, test_tiles)`` of data set ``name`` (cached per process).

    Raises:
        ValueError: unknown ``name``, or ``tile`` not 28 for Fashion-MNIST.
        ImportError / MissingDataError: the package that provides the data is missing.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    key = (name, int(tile))
    if key not in _CACHE:
        if name == "natural":
            from vqkit.data.images import natural_photos, split_photos

            train, test = split_photos(natural_photos())
            _CACHE[key] = (PhotoCrops(train, tile), grid_tiles(test, tile))
        else:
            if tile != 28:
                raise ValueError(f"tile must be 28 for fashion-mnist, got {tile}")
            from vqkit.data.fashion_mnist import load_fashion_mnist

            def as_tiles(split: str) -> Tensor:
                images = torch.from_numpy(load_fashion_mnist(split)[0].copy())
                return images.float().div_(255.0).unsqueeze(1)

            _CACHE[key] = (TensorTiles(as_tiles("train")), as_tiles("test"))
    return _CACHE[key]
