"""Pack multi-codebook indices into a byte string and back, for any codebook sizes.

Format (decided here, FAISS-compatible in spirit): index ``m`` of every vector takes
``w_m = ceil(log2 K_m)`` bits (0 bits when ``K_m = 1``), written least-significant bit first;
the vectors follow each other with no per-vector padding, and the last byte is padded with
zero bits. A vector therefore costs ``sum_m w_m`` bits: exact for powers of two, and at most
one bit per index above ``log2 K_m`` otherwise. The stream carries no header: the reader
passes the codebook sizes and the leading shape, and a byte string of the wrong length,
non-zero padding or an index ``>= K_m`` raises ValueError.

``-1`` (masked or dropped) cannot be packed: pack a prefix ``indices[..., :m]`` with the
first ``m`` sizes instead (residual VQ decodes from any prefix), or replace the entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

#: Vectors per chunk; a multiple of 8 so every chunk starts on a byte boundary.
_CHUNK = 1 << 16
#: Most indices one :func:`unpack_indices` call returns (1 GiB of int64): a declared shape is
#: checked against it before anything is allocated (zero-bit codebooks take no bytes, so the
#: length of the bytes alone does not bound the shape).
MAX_INDICES = 1 << 27
#: Most vectors of zero bits (every ``K_m = 1``) one :func:`unpack_indices` call returns: their
#: bytes are empty whatever the shape, so the shape is bounded on its own (8 MiB of int64).
MAX_ZERO_BIT_VECTORS = 1 << 20


def index_bits(codebook_sizes: Sequence[int]) -> list[int]:
    """Bits per index, ``ceil(log2 K)`` for each size (0 for K = 1).

    Example:
        >>> index_bits([1, 2, 3, 4, 5, 1000, 1024])
        [0, 1, 2, 2, 3, 10, 10]
    """
    return [(int(k) - 1).bit_length() for k in codebook_sizes]


def _sizes(codebook_sizes: int | Sequence[int], num: int | None) -> list[int]:
    if isinstance(codebook_sizes, int) and not isinstance(codebook_sizes, bool):
        if num is None:
            raise ValueError("codebook_sizes must be a sequence when the count is unknown")
        sizes = [codebook_sizes] * num
    else:
        sizes = list(codebook_sizes)
    for k in sizes:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"codebook_sizes must be ints >= 1, got {codebook_sizes!r}")
    if num is not None and len(sizes) != num:
        raise ValueError(
            f"codebook_sizes has {len(sizes)} entries but indices have {num} per vector"
        )
    if not sizes:
        raise ValueError("codebook_sizes must not be empty")
    return sizes


def packed_size(num_vectors: int, codebook_sizes: Sequence[int]) -> int:
    """Bytes taken by ``num_vectors`` packed vectors.

    Example:
        >>> packed_size(3, [1000, 1000, 1000])   # 3 vectors x 30 bits = 90 bits
        12
    """
    return (num_vectors * sum(index_bits(codebook_sizes)) + 7) // 8


def pack_indices(indices: Tensor, codebook_sizes: int | Sequence[int]) -> bytes:
    """Pack integer indices ``(..., M)`` into bytes (see the module docstring for the format).

    Args:
        indices: integer tensor, last axis one index per codebook, values in ``[0, K_m)``.
        codebook_sizes: K for every codebook, or one K shared by all.

    Returns:
        ``packed_size(N, sizes)`` bytes for the ``N`` vectors in row-major order.

    Raises:
        TypeError: ``indices`` is not a tensor or does not have an integer dtype.
        ValueError: ``indices`` is 0-d; ``codebook_sizes`` is empty, holds a value that is
            not an int >= 1, or has a length other than M; or an index is ``-1`` (masked)
            or ``>= K_m``.

    Example:
        >>> idx = torch.tensor([[0, 999, 5], [123, 0, 2]])
        >>> codes = pack_indices(idx, [1000, 1000, 6])
        >>> len(codes), torch.equal(unpack_indices(codes, [1000, 1000, 6], (2,)), idx)
        (6, True)
    """
    if not isinstance(indices, Tensor):
        raise TypeError(f"indices must be a torch.Tensor, got {type(indices).__name__}")
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"indices must have an integer dtype, got {indices.dtype}")
    if indices.dim() < 1:
        raise ValueError(f"indices must have shape (..., M), got {tuple(indices.shape)}")
    sizes = _sizes(codebook_sizes, indices.shape[-1])
    flat = indices.reshape(-1, len(sizes)).long().cpu()
    if flat.numel():
        if int(flat.min()) < 0:
            raise ValueError(
                "indices contain -1 (masked/dropped) entries, which cannot be packed; pack a "
                "prefix indices[..., :m] or replace them"
            )
        over = flat >= torch.tensor(sizes)
        if bool(over.any()):
            m = int(over.any(0).nonzero()[0])
            raise ValueError(
                f"indices[..., {m}] must lie in [0, {sizes[m] - 1}], got {int(flat[:, m].max())}"
            )
    widths = index_bits(sizes)
    shifts = [torch.arange(w) for w in widths]
    byte_weights = 1 << torch.arange(8)
    out = []
    for start in range(0, flat.shape[0], _CHUNK):
        block = flat[start : start + _CHUNK]
        cols = [(block[:, m : m + 1] >> s) & 1 for m, s in enumerate(shifts) if len(s)]
        if not cols:
            continue
        bits = torch.cat(cols, dim=1).reshape(-1)
        bits = torch.cat([bits, bits.new_zeros(-bits.numel() % 8)])
        out.append((bits.reshape(-1, 8) * byte_weights).sum(1).to(torch.uint8))
    if not out:
        return b""
    return torch.cat(out).numpy().tobytes()


def unpack_indices(
    codes: bytes | bytearray | memoryview,
    codebook_sizes: int | Sequence[int],
    shape: int | Sequence[int],
    *,
    num_codebooks: int | None = None,
) -> Tensor:
    """Inverse of :func:`pack_indices`: ``(*shape, M)`` int64 indices.

    Args:
        codes: the packed bytes.
        codebook_sizes: the sizes given to :func:`pack_indices` (one int needs
            ``num_codebooks``).
        shape: the leading shape of the indices (``N`` or ``(B, T)`` ...).
        num_codebooks: M, when ``codebook_sizes`` is one int.

    Returns:
        ``(*shape, M)`` int64 indices.

    Raises:
        TypeError: ``codes`` is not ``bytes`` / ``bytearray`` / ``memoryview``.
        ValueError: a negative ``shape``, or more than :data:`MAX_INDICES` indices (or
            :data:`MAX_ZERO_BIT_VECTORS` vectors when every size is 1);
            ``codebook_sizes`` is empty, holds a value that is
            not an int >= 1, is one int without ``num_codebooks``, or has a length other
            than ``num_codebooks``; a byte string of the wrong length (truncated or with
            trailing bytes), non-zero padding bits, or an index ``>= K_m`` (corrupt data).

    Example:
        >>> unpack_indices(b"\\x01", [2, 2, 2, 2], (2,)).tolist()
        [[1, 0, 0, 0], [0, 0, 0, 0]]
    """
    if not isinstance(codes, (bytes, bytearray, memoryview)):
        raise TypeError(f"codes must be bytes, got {type(codes).__name__}")
    lead = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if any(s < 0 for s in lead):
        raise ValueError(f"shape must be non-negative, got {shape!r}")
    sizes = _sizes(codebook_sizes, num_codebooks)
    n = 1
    for s in lead:
        n *= s
    if n * len(sizes) > MAX_INDICES:
        raise ValueError(f"shape {shape!r} asks for {n * len(sizes)} indices, more than the "
                         f"{MAX_INDICES} one call unpacks")
    widths = index_bits(sizes)
    per_vector = sum(widths)
    if per_vector == 0 and n > MAX_ZERO_BIT_VECTORS:
        raise ValueError(f"shape {shape!r} asks for {n} vectors of 0 bits, more than the "
                         f"{MAX_ZERO_BIT_VECTORS} one call unpacks")
    expected = packed_size(n, sizes)
    if len(codes) != expected:
        raise ValueError(
            f"codes must hold {expected} bytes for {n} vectors of {per_vector} bits, got "
            f"{len(codes)} (truncated or not packed with these sizes)"
        )
    out = torch.zeros(n, len(sizes), dtype=torch.long)
    if per_vector == 0 or n == 0:
        return out.reshape(*lead, len(sizes))
    raw = torch.frombuffer(bytearray(codes), dtype=torch.uint8)
    tail = raw[(n * per_vector) // 8 :].long()
    if bool((tail >> ((n * per_vector) % 8)).any()):
        raise ValueError("codes have non-zero padding bits: corrupt or not packed by vqkit")
    shifts = [torch.arange(w) for w in widths]
    chunk_bytes = _CHUNK * per_vector // 8  # chunks of _CHUNK vectors start on byte boundaries
    for first in range(0, n, _CHUNK):
        count = min(_CHUNK, n - first)
        block = raw[(first // _CHUNK) * chunk_bytes :][: (count * per_vector + 7) // 8].long()
        bits = ((block[:, None] >> torch.arange(8)) & 1).reshape(-1)
        bits = bits[: count * per_vector].reshape(count, per_vector)
        col = 0
        for m, s in enumerate(shifts):
            if len(s):
                out[first : first + count, m] = (bits[:, col : col + len(s)] << s).sum(1)
                col += len(s)
    over = out >= torch.tensor(sizes)
    if bool(over.any()):
        m = int(over.any(0).nonzero()[0])
        raise ValueError(
            f"codes decode to index {int(out[:, m].max())} >= codebook_sizes[{m}]="
            f"{sizes[m]}: corrupt data or wrong sizes"
        )
    return out.reshape(*lead, len(sizes))
