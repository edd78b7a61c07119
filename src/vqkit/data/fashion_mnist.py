"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` ([xiao2017fashionmnist])."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ._errors import MissingDataError

ROOT = Path("/usr/share/datasets/fashion-mnist")
INSTALL = "apt-get install dataset-fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")


def read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file, checking its header against its size.

    Returns:
        uint8 array of the shape the header gives.

    Raises:
        ValueError: the file is not a readable gzipped unsigned-byte IDX file, or its
            payload is not the size its header says.
    """
    try:
        with gzip.open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable gzipped IDX file: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise ValueError(
            f"{path} is truncated: header says {dims}, holds {len(raw) - offset} bytes"
        )
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def load_fashion_mnist(split: str = "train", root: Path = ROOT) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` of ``split`` = ``"train"`` or ``"test"``.

    Raises:
        ValueError: ``split`` is not ``"train"`` or ``"test"``, or a file is corrupt (as
            :func:`read_idx`).
        MissingDataError: the files are not under ``root`` (the message names the Debian
            package).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    images = Path(root) / f"{prefix}-images-idx3-ubyte.gz"
    labels = Path(root) / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise MissingDataError(f"Fashion-MNIST not found under {root}: install it with `{INSTALL}`")
    return read_idx(images), read_idx(labels)
