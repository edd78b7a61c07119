"""``torch.save`` files -- quantizers, checkpoints, models, caches: one atomic writer, one reader.

Every vqkit file of ``torch.save`` is read by :func:`read_torch_file`, with
``weights_only=True`` (tensors and plain values only, never pickled code), and a missing,
truncated or foreign file raises an error that names the file and the kind of file expected.
Integrity: a ``torch.save`` file is a zip archive whose every member carries a CRC-32; they
are all verified before ``torch.load`` parses anything, so a flipped bit in the weights, the
optimizer or the RNG state is refused (files written by any vqkit version keep loading).
Errors never repeat torch's advice to load with ``weights_only=False``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write
from .paths import input_file

_ZIP_MAGIC = b"PK\x03\x04"


def verify_zip(path: Path, what: str) -> None:
    """Check every CRC-32 of the ``torch.save`` zip at ``path`` (a no-op for other files).

    Raises:
        ValueError: the zip structure is corrupt or a member's CRC-32 does not match.
    """
    with open(path, "rb") as f:
        if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            NotImplementedError, RuntimeError) as err:  # zipfile raises these on corrupt input
        raise ValueError(f"{path} is not a readable {what}: corrupt zip "
                         f"({' '.join(str(err).split()) or type(err).__name__})") from err
    if bad is not None:
        raise ValueError(f"{path} is a corrupt {what} (CRC-32 mismatch in {bad})")


def _reason(err: BaseException) -> str:
    text = str(err)
    if "weights_only" in text or "Weights only load failed" in text:
        return "it holds Python objects other than tensors and plain values, which vqkit " \
               "never loads"
    return text.splitlines()[0] if text else type(err).__name__


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
        ValueError: the file is truncated, corrupt (a CRC-32 mismatch), not a ``torch.save``
            file, holds something other than tensors and plain values, or is a FIFO, a device
            or a symbolic-link loop.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.pt")
        >>> _ = atomic_torch_save({"w": torch.ones(2)}, p)
        >>> read_torch_file(p, "test file")["w"].tolist()
        [1.0, 1.0]
    """
    path = input_file(path, what, hint)
    verify_zip(path, what)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{path} is not a readable {what}: {_reason(err)}") from err
