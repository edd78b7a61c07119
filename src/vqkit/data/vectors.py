"""Read and write a matrix of vectors from ``.npy``, ``.pt`` or ``.csv`` files, with clear errors.

This is how the command line (``vqkit fit / encode / eval``) gets its data: one file holding
``N`` vectors of dimension ``D``. Arrays with more axes keep their leading axes (``(..., D)``);
``flatten=True`` reshapes them to ``(N, D)``.

- ``.npy``: a numeric NumPy array, read with ``allow_pickle=False``.
- ``.pt``: a tensor saved with ``torch.save``, or a dict holding exactly one tensor (or a
  tensor under the key ``"vectors"``), read with ``weights_only=True`` (no pickled code).
- ``.csv``: comma-separated numbers, one vector per line; a first line that is not numeric
  is taken as a header and skipped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from tokenize import TokenError

import numpy as np
import torch
from torch import Tensor

from ..io.atomic import atomic_write
from ..io.paths import input_file
from ..io.torch_file import read_torch_file

SUFFIXES = (".npy", ".pt", ".csv")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"vectors file {path} must end in one of {', '.join(SUFFIXES)}, "
            f"got {suffix or 'none'!r}"
        )
    return suffix


def _check_npy_header(path: Path) -> None:
    """The magic and header of a ``.npy`` file, and its declared size against the file's."""
    fmt = np.lib.format
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path} is not a .npy file (no \\x93NUMPY magic)")
        f.seek(0)
        try:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
        except (ValueError, SyntaxError, TypeError, EOFError, TokenError) as err:
            raise ValueError(f"{path} has a corrupt .npy header: "
                             f"{' '.join(str(err).split())}") from err
        if dtype.hasobject:
            raise ValueError(f"{path} holds Python objects, not numbers")
        needed = math.prod(shape) * dtype.itemsize
        if needed != size - f.tell():
            raise ValueError(f"{path} is truncated or corrupt: its header declares shape "
                             f"{shape} of {dtype} ({needed} bytes), the file holds "
                             f"{size - f.tell()}")


def _read_npy(path: Path) -> Tensor:
    _check_npy_header(path)
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path} holds Python objects, not numbers ({err})") from err
    except (OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npy file: {err}") from err
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path} must hold one array, got {type(array).__name__}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{path} must hold numbers, got dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array))


def _read_pt(path: Path) -> Tensor:
    obj = read_torch_file(path, "tensor file")
    if isinstance(obj, dict):
        if isinstance(obj.get("vectors"), Tensor):
            obj = obj["vectors"]
        else:
            tensors = [v for v in obj.values() if isinstance(v, Tensor)]
            if len(tensors) != 1:
                raise ValueError(
                    f"{path} holds a dict; it must hold one tensor or a 'vectors' entry, "
                    f"got keys {sorted(map(str, obj))}"
                )
            obj = tensors[0]
    if not isinstance(obj, Tensor):
        raise ValueError(f"{path} must hold a tensor, got {type(obj).__name__}")
    if obj.layout != torch.strided:  # sparse or mkldnn: no dense view to read rows from
        raise ValueError(f"{path} holds a tensor of layout {obj.layout}; vqkit reads dense "
                         "(strided) tensors only")
    return obj


def _read_csv(path: Path) -> Tensor:
    # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the first number
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline()
    try:
        [float(v) for v in first.split(",")]
        skip = 0
    except ValueError:
        skip = 1  # a header line
    try:
        array = np.loadtxt(path, delimiter=",", dtype=np.float64, skiprows=skip, ndmin=2,
                           encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a CSV of numbers: {err}") from err
    return torch.from_numpy(array)


def load_vectors(
    path: str | os.PathLike[str], *, dim: int | None = None, flatten: bool = True
) -> Tensor:
    """Read vectors from ``path`` as a float32 tensor.

    Args:
        path: a ``.npy``, ``.pt`` or ``.csv`` file.
        dim: the required size of the last axis (checked when given).
        flatten: reshape ``(..., D)`` to ``(N, D)``.

    Returns:
        ``(N, D)`` float32 (or ``(..., D)`` when ``flatten=False``).

    Raises:
        FileNotFoundError: the file does not exist.
        IsADirectoryError: ``path`` is a directory.
        ValueError: unknown suffix, unreadable file (a ``.npy`` whose magic, header or size
            is wrong; a ``.pt`` tensor that is sparse, not dense), no vectors, wrong ``dim``,
            NaN or Inf; ``path`` is a FIFO, a device or a symbolic-link loop.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.csv")
        >>> _ = open(p, "w").write("a,b\\n1,2\\n3,4\\n")
        >>> load_vectors(p, dim=2).tolist()
        [[1.0, 2.0], [3.0, 4.0]]
    """
    path = input_file(path, "vectors file")
    suffix = _suffix(path)
    reader = {".npy": _read_npy, ".pt": _read_pt, ".csv": _read_csv}[suffix]
    x = reader(path)
    if x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{path} must hold real numbers, got dtype {x.dtype}")
    if x.dim() < 2 or x.numel() == 0:
        raise ValueError(
            f"{path} must hold a non-empty (N, D) array of vectors, got shape {tuple(x.shape)}"
        )
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(
            f"{path} holds vectors of dimension {x.shape[-1]}, but the quantizer needs {dim}"
        )
    x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{path} contains NaN or Inf values")
    return x.reshape(-1, x.shape[-1]) if flatten else x


def save_vectors(x: Tensor, path: str | os.PathLike[str]) -> Path:
    """Write ``x`` to ``path`` (``.npy``, ``.pt`` or ``.csv`` by suffix) atomically.

    ``.npy`` and ``.pt`` keep the values bit-exactly; ``.csv`` writes 9 significant digits,
    enough to read float32 back exactly.

    Raises:
        ValueError: the suffix is not ``.npy``, ``.pt`` or ``.csv``.
        OSError: the file cannot be written (an old file at ``path`` is left intact).

    Example:
        >>> import tempfile, os
        >>> x = torch.randn(3, 4)
        >>> p = save_vectors(x, os.path.join(tempfile.mkdtemp(), "x.csv"))
        >>> torch.equal(load_vectors(p), x)
        True
    """
    path = Path(path)
    suffix = _suffix(path)
    x = x.detach().cpu()

    def write(f) -> None:
        if suffix == ".npy":
            np.save(f, x.numpy())
        elif suffix == ".pt":
            torch.save(x.clone(), f)
        else:
            np.savetxt(f, x.reshape(-1, x.shape[-1]).numpy(), delimiter=",", fmt="%.9g")

    return atomic_write(path, write)
