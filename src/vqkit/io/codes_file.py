"""Codes files (``.vqc``): the packed indices of a batch of vectors, tied to their quantizer.

A codes file is the :class:`vqkit.io.container.ContainerFormat` :data:`CODES` (full layout in
``docs/formats.md``)::

    magic        8 bytes   b"\\x93VQKIT\\r\\n"
    version      u32       1 (2 for the ``curve-steps`` packing)
    header       u32 length + JSON: shape, dim, index_shape, codebook_sizes, index_kind,
                           packing, quantizer type and digest (the fingerprint), payload_len
    payload      bytes     the packed indices
    checksum     32 bytes  SHA-256 of every byte before it

Integer indices are packed by :func:`vqkit.functional.bitstream.pack_indices`:
``ceil(log2 K_m)`` bits for column ``m``, vector after vector, least significant bit first;
curve positions of space-filling VQ are stored as float64, exactly as ``encode`` returns them,
or (``position_bits=b``, version 2) as integers on the grid ``j / 2**b`` packed the same way,
at the quantizer's ``ceil(log2 K)`` bits for ``b = 0``.
The quantizer digest (:func:`vqkit.io.fingerprint.quantizer_digest`) is a SHA-256 over the
quantizer's type, config and state tensors, so a codes file is never decoded with the wrong
quantizer. Files are written atomically and every read is checked: a corrupt, truncated or
foreign file raises ``ValueError`` saying what is wrong.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..functional.bitstream import (
    MAX_INDICES,
    MAX_ZERO_BIT_VECTORS,
    index_bits,
    pack_indices,
    packed_size,
    unpack_indices,
)
from ..quantizers import Quantizer
from .container import SHA256, ContainerFormat, JsonHeader
from .fingerprint import quantizer_digest

CODES = ContainerFormat(
    name="vqkit codes file",
    magic=b"\x93VQKIT\r\n",
    version_code="I",
    headers={1: JsonHeader(), 2: JsonHeader()},
    digest=SHA256,
    fingerprint=("quantizer", "digest"),
    model="quantizer",
    payload_length="payload_len",
)
MAGIC = CODES.magic
#: The packings of each version: version 2 is ``curve-steps``, written only for it, so a file
#: of the version-1 packings keeps its bytes (and older readers).
PACKINGS = {1: ("bits-lsb", "float64"), 2: ("curve-steps",)}
#: Most bits of a curve position's fraction (``position_bits``).
MAX_POSITION_BITS = 32


@dataclass(frozen=True)
class CodesFile:
    """What a codes file holds: indices ``(*shape, *index_shape)`` and their header.

    ``position_bits`` is None except for the ``curve-steps`` packing of curve positions.
    """

    indices: Tensor
    shape: tuple[int, ...]
    dim: int
    index_shape: tuple[int, ...]
    codebook_sizes: list[int]
    quantizer_type: str
    quantizer_digest: str
    packing: str
    payload_bytes: int
    position_bits: int | None = None

    @property
    def version(self) -> int:
        """The format version the packing needs (1, or 2 for ``curve-steps``)."""
        return 2 if self.packing == "curve-steps" else 1

    def header(self) -> dict[str, Any]:
        """The JSON header of the file (keys of ``docs/formats.md``)."""
        header = {
            "shape": list(self.shape),
            "dim": self.dim,
            "index_shape": list(self.index_shape),
            "codebook_sizes": list(self.codebook_sizes),
            "index_kind": "int64" if self.packing == "bits-lsb" else "float64",
            "packing": self.packing,
            "quantizer": {"type": self.quantizer_type, "digest": self.quantizer_digest},
            "payload_len": self.payload_bytes,
        }
        if self.position_bits is not None:
            header["position_bits"] = self.position_bits
        return header


def curve_steps(codebook_size: int, position_bits: int) -> int:
    """Values of a ``curve-steps`` index: the positions ``j / 2**b`` in ``[0, K - 1]``.

    Example:
        >>> curve_steps(64, 0), curve_steps(64, 2)    # 6 bits; then 9 bits (253 values)
        (64, 253)
    """
    return (codebook_size - 1) * (1 << position_bits) + 1


def _payload(indices: Tensor, sizes: list[int], position_bits: int | None
             ) -> tuple[str, bytes]:
    if position_bits is not None:
        if not indices.is_floating_point() or len(sizes) != 1:
            raise ValueError("position_bits applies to curve positions (space-filling VQ) only")
        if isinstance(position_bits, bool) or not isinstance(position_bits, int) \
                or not 0 <= position_bits <= MAX_POSITION_BITS:
            raise ValueError(f"position_bits must be an int in [0, {MAX_POSITION_BITS}], got "
                             f"{position_bits!r}")
        pos = indices.detach().cpu().double().reshape(-1, 1)
        if pos.numel() and not bool(((pos >= 0) & (pos <= sizes[0] - 1)).all()):
            raise ValueError(f"curve positions must lie in [0, {sizes[0] - 1}] (no -1 / masked "
                             "entries, no NaN)")
        steps = torch.round(pos * (1 << position_bits)).long()
        return "curve-steps", pack_indices(steps, [curve_steps(sizes[0], position_bits)])
    if indices.is_floating_point():
        return "float64", indices.detach().cpu().double().contiguous().numpy().astype(
            "<f8").tobytes()
    flat = indices.reshape(-1, len(sizes))
    if flat.numel() and (int(flat.min()) < 0 or bool((flat >= torch.tensor(sizes)).any())):
        raise ValueError("indices must lie in [0, K) for a codes file (no -1 / masked entries)")
    return "bits-lsb", pack_indices(flat, sizes)


def write_codes(
    path: str | os.PathLike[str], indices: Tensor, quantizer: Quantizer, *,
    position_bits: int | None = None,
) -> CodesFile:
    """Write the ``indices`` that ``quantizer.encode`` returned to ``path`` atomically.

    Args:
        path: destination file.
        indices: ``(..., *quantizer.index_shape)``; int64 (no ``-1``) or float64 curve positions.
        quantizer: the quantizer that made them (its digest goes into the header).
        position_bits: curve positions only: store each as an integer on the grid of step
            ``2**-position_bits`` (``curve-steps`` packing, format version 2), so a vector
            costs ``ceil(log2((K - 1) 2**b + 1))`` bits -- with 0, the nearest corner point at
            the quantizer's ``ceil(log2 K)`` bits. None (default): the exact float64 positions
            (64 bits each, version 1).

    Returns:
        the :class:`CodesFile` written.

    Raises:
        ValueError: ``indices`` do not end in ``quantizer.index_shape``, hold ``-1`` or an
            index outside ``[0, K)``; ``position_bits`` is given for integer indices or is
            outside ``[0, 32]``; ``path`` is not a regular file.
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
    packing, payload = _payload(indices, sizes, position_bits)
    codes = CodesFile(
        indices=indices, shape=shape, dim=quantizer.dim, index_shape=tuple(quantizer.index_shape),
        codebook_sizes=sizes, quantizer_type=type(quantizer).__name__,
        quantizer_digest=quantizer_digest(quantizer), packing=packing,
        payload_bytes=len(payload), position_bits=position_bits,
    )
    CODES.write(path, codes.header(), payload, codes.version)
    return codes


def _ints(value: Any, least: int) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= least for v in value)


def _parse_header(version: int, header: dict[str, Any], payload: bytes, source: str
                  ) -> CodesFile:
    """The header's fields, each checked against its type, its bounds and the payload's
    length, before anything is allocated."""
    def corrupt(what: str) -> ValueError:
        return ValueError(f"{source} has a corrupt header ({what})")

    shape, index_shape, sizes = header.get("shape"), header.get("index_shape"), \
        header.get("codebook_sizes")
    if not (_ints(shape, 0) and _ints(index_shape, 1) and _ints(sizes, 1) and sizes):
        raise corrupt("shape, index_shape and codebook_sizes must be lists of non-negative, "
                      "positive and positive ints")
    if len(sizes) != math.prod(index_shape):
        raise corrupt(f"{len(sizes)} codebook sizes for index_shape {index_shape}")
    dim, packing, quantizer = header.get("dim"), header.get("packing"), header.get("quantizer")
    if not _ints([dim], 1) or packing not in PACKINGS[version]:
        raise corrupt(f"dim {dim!r}, packing {packing!r} (version {version} packs "
                      f"{', '.join(PACKINGS[version])})")
    if not (isinstance(quantizer, dict) and isinstance(quantizer.get("type"), str)
            and isinstance(quantizer.get("digest"), str)):
        raise corrupt("no quantizer type and digest")
    n = math.prod(shape)
    if n * len(sizes) > MAX_INDICES:
        raise corrupt(f"{n * len(sizes)} indices, more than the {MAX_INDICES} a codes file holds")
    bits = header.get("position_bits")
    if packing == "curve-steps":
        if not _ints([bits], 0) or bits > MAX_POSITION_BITS or len(sizes) != 1:
            raise corrupt(f"position_bits {bits!r} must be an int in [0, {MAX_POSITION_BITS}] "
                          "for one codebook")
        packed = [curve_steps(sizes[0], bits)]
    elif bits is not None:
        raise corrupt(f"position_bits with packing {packing}")
    else:
        packed = sizes
    if packing != "float64" and not sum(index_bits(packed)) and n > MAX_ZERO_BIT_VECTORS:
        raise corrupt(f"{n} vectors of 0 bits (codebooks of one code), more than the "
                      f"{MAX_ZERO_BIT_VECTORS} a codes file holds")
    expected = 8 * n * len(sizes) if packing == "float64" else packed_size(n, packed)
    if len(payload) != expected:
        raise ValueError(f"{source} is corrupt: the payload holds {len(payload)} bytes, the "
                         f"header's {n} vectors need {expected}")
    return CodesFile(
        indices=torch.empty(0), shape=tuple(shape), dim=dim, index_shape=tuple(index_shape),
        codebook_sizes=sizes, quantizer_type=quantizer["type"],
        quantizer_digest=quantizer["digest"], packing=packing, payload_bytes=len(payload),
        position_bits=bits,
    )


def _unpack(codes: CodesFile, payload: bytes, source: str) -> Tensor:
    n = math.prod(codes.shape)
    try:
        if codes.packing == "float64":
            flat = torch.from_numpy(np.frombuffer(payload, dtype="<f8").copy())
        elif codes.packing == "curve-steps":
            steps = curve_steps(codes.codebook_sizes[0], codes.position_bits or 0)
            flat = unpack_indices(payload, [steps], (n,)).double() / (1 << codes.position_bits)
        else:
            flat = unpack_indices(payload, codes.codebook_sizes, (n,))
    except ValueError as err:
        raise ValueError(f"{source} is corrupt: {err}") from err
    return flat.reshape(*codes.shape, *codes.index_shape)


def read_codes_header(path: str | os.PathLike[str]) -> CodesFile:
    """Read and check a codes file as :func:`read_codes` does, without unpacking its indices.

    Returns:
        the header, with an empty ``indices`` tensor (nothing is allocated for them).

    Raises:
        FileNotFoundError / IsADirectoryError / ValueError: as :func:`read_codes` without a
            quantizer.
    """
    return _read(path)[0]


def _read(path: str | os.PathLike[str]) -> tuple[CodesFile, bytes]:
    container = CODES.read(path)
    return (_parse_header(container.version, container.header, container.payload, str(path)),
            container.payload)


def read_codes(path: str | os.PathLike[str], quantizer: Quantizer | None = None) -> CodesFile:
    """Read and check a codes file; with ``quantizer``, also check it is the one that wrote it.

    The container is verified first (magic, version, SHA-256 over the whole file), then every
    header field against its type and bounds (at most :data:`MAX_INDICES` indices, at most
    :data:`MAX_ZERO_BIT_VECTORS` vectors when they take no bits, a payload
    of exactly the bytes the header's shape needs), then, given ``quantizer``, the header
    against the quantizer's own dimension, index shape and codebook sizes and its digest --
    all before the indices are unpacked.

    Args:
        path: the ``.vqc`` file.
        quantizer: the quantizer expected to have written it (None: not checked).

    Returns:
        the indices ``(*shape, *index_shape)`` (int64, or float64 curve positions) and header.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: not a codes file, unsupported version, truncated, checksum mismatch, a
            corrupt header or payload, a header that does not fit ``quantizer``, or written by
            a different quantizer (digest mismatch).
    """
    source = str(path)
    codes, payload = _read(path)
    if quantizer is not None:
        check_quantizer(codes, quantizer, source)
    return replace(codes, indices=_unpack(codes, payload, source))


def check_quantizer(codes: CodesFile, quantizer: Quantizer, source: str = "codes file") -> None:
    """Refuse ``codes`` unless its header fits ``quantizer`` and records its digest.

    Raises:
        ValueError: the header's type, dimension, index shape or codebook sizes are not the
            quantizer's, or ``codes`` was written by a different quantizer (digest mismatch).
    """
    own = (type(quantizer).__name__, quantizer.dim, tuple(quantizer.index_shape),
           list(quantizer.codebook_sizes))
    found = (codes.quantizer_type, codes.dim, codes.index_shape, codes.codebook_sizes)
    if found != own:
        raise ValueError(f"{source} holds codes of {found[0]} (dim {found[1]}, index shape "
                         f"{found[2]}, codebook sizes {found[3]}), but the quantizer given is "
                         f"{own[0]} (dim {own[1]}, index shape {own[2]}, codebook sizes {own[3]})")
    CODES.check_fingerprint(codes.header(), quantizer_digest(quantizer), source)
