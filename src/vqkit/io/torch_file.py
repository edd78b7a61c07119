"""``torch.save`` files -- quantizers, checkpoints, models, caches: one atomic writer, one reader.

Every vqkit file of ``torch.save`` is read by :func:`read_torch_file`, with
``weights_only=True`` (tensors and plain values only, never pickled code), and a missing,
truncated or foreign file raises an error that names the file and the kind of file expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to a temporary file beside ``path``, then rename it over ``path``.

    Raises:
        OSError: the folder cannot be written (the old file, if any, is left intact).
    """
    return atomic_write(path, lambda f: torch.save(obj, f))


def read_torch_file(
    path: str | os.PathLike[str],
    what: str,
    *,
    map_location: str | torch.device = "cpu",
    hint: str = "",
) -> Any:
    """The object in a ``torch.save`` file, loaded safely (``weights_only=True``).

    Args:
        path: the file.
        what: the kind of file expected, for errors (``"vqkit checkpoint"``).
        map_location: the device tensors are loaded onto.
        hint: appended to the missing-file error (how to make such a file).

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: the file is truncated, corrupt, not a ``torch.save`` file, or holds
            something other than tensors and plain values.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.pt")
        >>> _ = atomic_torch_save({"w": torch.ones(2)}, p)
        >>> read_torch_file(p, "test file")["w"].tolist()
        [1.0, 1.0]
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such {what}: {path}" + (f"; {hint}" if hint else ""))
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a directory")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path} is not a readable {what}: {first}") from err
