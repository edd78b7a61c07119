"""pack_indices / unpack_indices: exact round trips for any sizes, clear errors on bad bytes."""

from __future__ import annotations

import pytest
import torch

import vqkit.functional.bitstream as bs
from vqkit import pack_indices, unpack_indices
from vqkit.functional import bitstream


@pytest.mark.parametrize("seed", range(25))
def test_round_trip_random_sizes_and_shapes(seed):
    g = torch.Generator().manual_seed(seed)
    num = int(torch.randint(1, 7, (1,), generator=g))
    sizes = [int(k) for k in torch.randint(1, 3000, (num,), generator=g)]
    lead = tuple(int(s) for s in torch.randint(0, 6, (int(torch.randint(1, 4, (1,), generator=g)),),
                                               generator=g))
    idx = torch.stack([torch.randint(0, k, lead, generator=g) for k in sizes], dim=-1)
    codes = pack_indices(idx, sizes)
    n = idx.numel() // num
    assert len(codes) == (n * sum(bs.index_bits(sizes)) + 7) // 8
    back = unpack_indices(codes, sizes, lead)
    assert back.dtype == torch.int64 and torch.equal(back, idx)


def test_extreme_values_powers_of_two_and_size_one():
    sizes = [1, 2, 3, 256, 1024, 1025, 2**20]
    idx = torch.tensor([[0, 1, 2, 255, 1023, 1024, 2**20 - 1], [0, 0, 0, 0, 0, 0, 0]])
    assert torch.equal(unpack_indices(pack_indices(idx, sizes), sizes, 2), idx)
    # 4 codebooks of 1024: 40 bits = exactly 5 bytes per vector
    assert len(pack_indices(torch.zeros(3, 4, dtype=torch.long), 1024)) == 15


def test_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(bitstream, "_CHUNK", 8)
    g = torch.Generator().manual_seed(0)
    sizes = [7, 1000, 3]
    idx = torch.stack([torch.randint(0, k, (61,), generator=g) for k in sizes], dim=-1)
    assert torch.equal(unpack_indices(pack_indices(idx, sizes), sizes, 61), idx)


def test_lsb_first_layout():
    # index 1 of a 2-entry codebook is the lowest bit of the first byte
    assert pack_indices(torch.tensor([[1, 0, 0, 0, 0, 0, 0, 1]]), 2) == bytes([0b10000001])
    assert pack_indices(torch.tensor([[5]]), 1000) == bytes([5, 0])


def test_truncated_or_extended_bytes_raise():
    sizes = [1000, 1000, 6]
    codes = pack_indices(torch.randint(0, 6, (10, 3)), sizes)
    with pytest.raises(ValueError, match="truncated"):
        unpack_indices(codes[:-1], sizes, 10)
    with pytest.raises(ValueError, match="bytes"):
        unpack_indices(codes + b"\x00", sizes, 10)
    with pytest.raises(ValueError, match="truncated"):
        unpack_indices(b"", sizes, 1)


def test_corrupt_bytes_raise():
    # 3-entry codebook: the bit pattern 11 = 3 is not a valid index
    with pytest.raises(ValueError, match="corrupt"):
        unpack_indices(bytes([0b11]), [3], 1)
    # non-zero padding after the last vector
    with pytest.raises(ValueError, match="padding"):
        unpack_indices(bytes([0b1000_0000]), [4], 1)


def test_bad_indices_raise():
    with pytest.raises(ValueError, match="-1"):
        pack_indices(torch.tensor([[0, -1]]), 4)
    with pytest.raises(ValueError, match=r"indices\[\.\.\., 1\] must lie in \[0, 3\]"):
        pack_indices(torch.tensor([[0, 4]]), 4)
    with pytest.raises(ValueError, match="2 entries"):
        pack_indices(torch.tensor([[0, 1, 2]]), [4, 4])
    with pytest.raises(TypeError, match="integer"):
        pack_indices(torch.zeros(2, 2), 4)


def test_matches_faiss_bitstrings_when_byte_aligned():
    faiss = pytest.importorskip("faiss")
    np = pytest.importorskip("numpy")
    idx = torch.randint(0, 1024, (5, 4), generator=torch.Generator().manual_seed(1))
    ours = pack_indices(idx, 1024)
    theirs = faiss.pack_bitstrings(idx.numpy().astype(np.int32), 10)
    assert ours == theirs.tobytes()
