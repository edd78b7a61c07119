"""Codes files (``.vqc``): the packed indices of a batch of vectors, tied to their quantizer.

A codes file is the :class:`vqkit.io.container.ContainerFormat` :data:`CODES` (full layout in
``docs/formats.md``)::

    magic        8 bytes   b"\\x93VQKIT\\r\\n"
    version      u32       1
    header       u32 length + JSON: shape, dim, index_shape, codebook_sizes, index_kind,
                           packing, quantizer type and digest (the fingerprint), payload_len
    payload      bytes     the packed indices
    checksum     32 bytes  SHA-256 of every byte before it

Integer indices are packed by :func:`vqkit.functional.bitstream.pack_indices`:
``ceil(log2 K_m)`` bits for column ``m``, vector after vector, least significant bit first;
curve positions of space-filling VQ are stored as float64, exactly as ``encode`` returns them.
The quantizer digest (:func:`vqkit.io.fingerprint.quantizer_digest`) is a SHA-256 over the
quantizer's type, config and state tensors, so a codes file is never decoded with the wrong
quantizer. Files are written atomically and every read is checked: a corrupt, truncated or
foreign file raises ``ValueError`` saying what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..functional.bitstream import pack_indices, unpack_indices
from ..quantizers import Quantizer
from .container import SHA256, ContainerFormat, JsonHeader
from .fingerprint import quantizer_digest

CODES = ContainerFormat(
    name="vqkit codes file",
    magic=b"\x93VQKIT\r\n",
    version_code="I",
    headers={1: JsonHeader()},
    digest=SHA256,
    fingerprint=("quantizer", "digest"),
    model="quantizer",
    payload_length="payload_len",
)
MAGIC = CODES.magic
PACKINGS = ("bits-lsb", "float64")


@dataclass(frozen=True)
class CodesFile:
    """What a codes file holds: indices ``(*shape, *index_shape)`` and their header."""

    indices: Tensor
    shape: tuple[int, ...]
    dim: int
    index_shape: tuple[int, ...]
    codebook_sizes: list[int]
    quantizer_type: str
    quantizer_digest: str
    packing: str
    payload_bytes: int

    def header(self) -> dict[str, Any]:
        """The JSON header of the file (keys of ``docs/formats.md``)."""
        return {
            "shape": list(self.shape),
            "dim": self.dim,
            "index_shape": list(self.index_shape),
            "codebook_sizes": list(self.codebook_sizes),
            "index_kind": "float64" if self.packing == "float64" else "int64",
            "packing": self.packing,
            "quantizer": {"type": self.quantizer_type, "digest": self.quantizer_digest},
            "payload_len": self.payload_bytes,
        }


def write_codes(
    path: str | os.PathLike[str], indices: Tensor, quantizer: Quantizer
) -> CodesFile:
    """Write the ``indices`` that ``quantizer.encode`` returned to ``path`` atomically.

    Args:
        path: destination file.
        indices: ``(..., *quantizer.index_shape)``; int64 (no ``-1``) or float64 curve positions.
        quantizer: the quantizer that made them (its digest goes into the header).

    Returns:
        the :class:`CodesFile` written.

    Raises:
        ValueError: ``indices`` do not end in ``quantizer.index_shape``, or hold ``-1`` or an
            index outside ``[0, K)``.
        OSError: the file cannot be written (the old file, if any, is left intact).

    Example:
        >>> import tempfile, os
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(4, 10)
        >>> idx = vq.encode(torch.randn(3, 5, 4))
        >>> p = os.path.join(tempfile.mkdtemp(), "x.vqc")
        >>> _ = write_codes(p, idx, vq)
        >>> torch.equal(read_codes(p, vq).indices, idx)
        True
    """
    sizes = list(quantizer.codebook_sizes)
    n_tail = len(quantizer.index_shape)
    shape = tuple(indices.shape[: indices.dim() - n_tail])
    if tuple(indices.shape[indices.dim() - n_tail :]) != tuple(quantizer.index_shape):
        raise ValueError(
            f"indices must end in {quantizer.index_shape}, got shape {tuple(indices.shape)}"
        )
    if indices.is_floating_point():
        packing = "float64"
        payload = indices.detach().cpu().double().contiguous().numpy().astype("<f8").tobytes()
    else:
        flat = indices.reshape(-1, len(sizes))
        if flat.numel() and (int(flat.min()) < 0 or bool((flat >= torch.tensor(sizes)).any())):
            raise ValueError("indices must lie in [0, K) for a codes file (no -1 / masked entries)")
        packing = "bits-lsb"
        payload = pack_indices(flat, sizes)
    codes = CodesFile(
        indices=indices, shape=shape, dim=quantizer.dim, index_shape=tuple(quantizer.index_shape),
        codebook_sizes=sizes, quantizer_type=type(quantizer).__name__,
        quantizer_digest=quantizer_digest(quantizer), packing=packing,
        payload_bytes=len(payload),
    )
    CODES.write(path, codes.header(), payload)
    return codes


def _parse_header(header: dict[str, Any], source: str) -> dict[str, Any]:
    try:
        sizes = [int(s) for s in header["codebook_sizes"]]
        shape = [int(s) for s in header["shape"]]
        [int(s) for s in header["index_shape"]]
        int(header["dim"])
        header["quantizer"]["type"], header["quantizer"]["digest"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{source} has a corrupt header ({type(err).__name__}: {err})") from err
    if header.get("packing") not in PACKINGS or min(sizes + [1]) < 1 or min(shape + [0]) < 0:
        raise ValueError(f"{source} has a corrupt header (packing or sizes out of range)")
    return header


def read_codes(path: str | os.PathLike[str], quantizer: Quantizer | None = None) -> CodesFile:
    """Read and check a codes file; with ``quantizer``, also check it is the one that wrote it.

    Args:
        path: the ``.vqc`` file.
        quantizer: the quantizer expected to have written it (None: not checked).

    Returns:
        the indices ``(*shape, *index_shape)`` (int64, or float64 curve positions) and header.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: not a codes file, unsupported version, truncated, checksum mismatch, a
            corrupt header or payload, or written by a different quantizer (digest mismatch).
    """
    source = str(path)
    container = CODES.read(path)
    header = _parse_header(container.header, source)
    payload = container.payload
    shape, index_shape = tuple(header["shape"]), tuple(header["index_shape"])
    sizes = header["codebook_sizes"]
    n = int(np.prod(shape)) if shape else 1
    if header["packing"] == "float64":
        if len(payload) != 8 * n * len(sizes):
            raise ValueError(f"{source} is corrupt: float payload does not match the shape")
        flat = torch.from_numpy(np.frombuffer(payload, dtype="<f8").copy())
    else:
        try:
            flat = unpack_indices(payload, sizes, (n,))
        except ValueError as err:
            raise ValueError(f"{source} is corrupt: {err}") from err
    codes = CodesFile(
        indices=flat.reshape(*shape, *index_shape), shape=shape, dim=int(header["dim"]),
        index_shape=index_shape, codebook_sizes=sizes,
        quantizer_type=header["quantizer"]["type"], quantizer_digest=header["quantizer"]["digest"],
        packing=header["packing"], payload_bytes=len(payload),
    )
    if quantizer is not None:
        check_quantizer(codes, quantizer, source)
    return codes


def check_quantizer(codes: CodesFile, quantizer: Quantizer, source: str = "codes file") -> None:
    """Refuse ``codes`` unless ``quantizer`` is the one whose digest it records.

    Raises:
        ValueError: ``codes`` was written by a different quantizer (digest mismatch).
    """
    CODES.check_fingerprint(codes.header(), quantizer_digest(quantizer), source)
