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
