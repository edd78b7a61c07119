"""Codes files: the packed indices of a batch of vectors, tied to the quantizer that made them.

Layout (little-endian; full description in ``docs/formats.md``)::

    magic        8 bytes   b"\\x93VQKIT\\r\\n"
    version      u32       1
    header_len   u32       length of the JSON header
    header       JSON      shape, dim, index_shape, codebook_sizes, index_kind, packing,
                           quantizer type and digest, payload_len
    payload      bytes     the packed indices
    checksum     32 bytes  SHA-256 of every byte before it

Integer indices are packed by :func:`vqkit.functional.bitstream.pack_indices`:
``ceil(log2 K_m)`` bits for column ``m``, vector after vector, least significant bit first;
curve positions of space-filling VQ are stored as float64, exactly as ``encode`` returns them.
The quantizer digest (:func:`quantizer_digest`) is a SHA-256 over the quantizer's type,
config and state tensors, so a codes file is never decoded with the wrong quantizer. Files are
written atomically and every read is checked: a corrupt, truncated or foreign file raises
``ValueError`` saying what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .atomic import atomic_write
from .functional.bitstream import pack_indices, unpack_indices
from .quantizers import Quantizer

MAGIC = b"\x93VQKIT\r\n"
VERSION = 1
_PREFIX = struct.Struct("<8sII")
_DIGEST_BYTES = 32
PACKINGS = ("bits-lsb", "float64")


def quantizer_digest(quantizer: Quantizer) -> str:
    """``"sha256:<hex>"`` over the quantizer's type, config and every state tensor.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(4, 8)
        >>> before = quantizer_digest(vq)
        >>> before == quantizer_digest(vq.eval())   # the mode is not part of it
        True
        >>> with torch.no_grad():
        ...     _ = vq.codebook.codewords.add_(1e-6)
        >>> quantizer_digest(vq) == before
        False
    """
    h = hashlib.sha256()
    head = {"type": type(quantizer).__name__, "config": quantizer.config()}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for name, tensor in sorted(quantizer.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return "sha256:" + h.hexdigest()


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
    header = json.dumps(codes.header(), sort_keys=True).encode()
    body = _PREFIX.pack(MAGIC, VERSION, len(header)) + header + payload
    blob = body + hashlib.sha256(body).digest()
    atomic_write(path, lambda f: f.write(blob))
    return codes


def _parse_header(raw: bytes, source: str) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode())
        sizes = [int(s) for s in header["codebook_sizes"]]
        shape = [int(s) for s in header["shape"]]
        [int(s) for s in header["index_shape"]]
        int(header["dim"]), int(header["payload_len"])
        header["quantizer"]["type"], header["quantizer"]["digest"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ValueError(f"{source} has a corrupt header ({type(err).__name__}: {err})") from err
    if header["packing"] not in PACKINGS or min(sizes + [1]) < 1 or min(shape + [0]) < 0:
        raise ValueError(f"{source} has a corrupt header (packing or sizes out of range)")
    return header


def read_codes(path: str | os.PathLike[str], quantizer: Quantizer | None = None) -> CodesFile:
    """Read and check a codes file; with ``quantizer``, also check it is the one that wrote it.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a codes file, unsupported version, truncated, checksum mismatch, or
            written by a different quantizer (digest mismatch).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such codes file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"codes file {path} is a directory")
    blob = path.read_bytes()
    if len(blob) < _PREFIX.size + _DIGEST_BYTES or not blob.startswith(MAGIC):
        raise ValueError(f"{path} is not a vqkit codes file (bad magic bytes or too short)")
    _, version, header_len = _PREFIX.unpack_from(blob)
    if version != VERSION:
        raise ValueError(f"{path} is codes-file version {version}; this vqkit reads {VERSION}")
    body, digest = blob[:-_DIGEST_BYTES], blob[-_DIGEST_BYTES:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError(f"{path} is corrupt or truncated (SHA-256 checksum mismatch)")
    start = _PREFIX.size + header_len
    if start > len(body):
        raise ValueError(f"{path} is corrupt (header length {header_len} exceeds the file)")
    header = _parse_header(body[_PREFIX.size : start], str(path))
    payload = body[start:]
    if len(payload) != header["payload_len"]:
        raise ValueError(
            f"{path} is corrupt: payload holds {len(payload)} bytes, header says "
            f"{header['payload_len']}"
        )
    shape, index_shape = tuple(header["shape"]), tuple(header["index_shape"])
    sizes = header["codebook_sizes"]
    n = int(np.prod(shape)) if shape else 1
    if header["packing"] == "float64":
        if len(payload) != 8 * n * len(sizes):
            raise ValueError(f"{path} is corrupt: float payload does not match the shape")
        flat = torch.from_numpy(np.frombuffer(payload, dtype="<f8").copy())
    else:
        try:
            flat = unpack_indices(payload, sizes, (n,))
        except ValueError as err:
            raise ValueError(f"{path} is corrupt: {err}") from err
    codes = CodesFile(
        indices=flat.reshape(*shape, *index_shape), shape=shape, dim=int(header["dim"]),
        index_shape=index_shape, codebook_sizes=sizes,
        quantizer_type=header["quantizer"]["type"], quantizer_digest=header["quantizer"]["digest"],
        packing=header["packing"], payload_bytes=len(payload),
    )
    if quantizer is not None:
        check_quantizer(codes, quantizer, str(path))
    return codes


def check_quantizer(codes: CodesFile, quantizer: Quantizer, source: str = "codes file") -> None:
    """Raise ValueError unless ``quantizer`` is the one whose digest ``codes`` records."""
    digest = quantizer_digest(quantizer)
    if digest != codes.quantizer_digest:
        raise ValueError(
            f"{source} was written by a different quantizer ({codes.quantizer_type} "
            f"{codes.quantizer_digest[:19]}...) than the one given ({type(quantizer).__name__} "
            f"{digest[:19]}...)"
        )
