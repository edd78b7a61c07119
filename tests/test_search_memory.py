"""The nearest-neighbour search keeps its memory bound: no N x K distance matrix, ever.

Contract ("the search is chunked so memory stays bounded for any N x K"):
``nearest_neighbor(x, c, k, chunk_elements=E)`` never holds a tensor of more than ``E``
elements, except tensors no larger than the inputs (``(N + K) * D`` elements: fp32 or centred
copies of ``x`` and of the codewords, their norms) and the ``(N, k)`` outputs. The tests record
every tensor an ATen op returns during the call (a ``TorchDispatchMode``), measured by the
size of the storage it lives in, so views and expanded tensors count what they really hold,
and compare the largest with that allowance. They do not depend on how the search is
organised (row chunks, centring, a re-rank of near ties): only on the bound.

The inputs are chosen so that ``N * K`` is far above the allowance (128 to 512 times), so a
search that builds the whole distance matrix, or a chunk much larger than ``E``, fails.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from vqkit import ResidualVQ, VectorQuantizer
from vqkit.functional.search import DEFAULT_CHUNK_ELEMENTS, nearest_neighbor


class LargestTensor(TorchDispatchMode):
    """Records the largest storage (in elements) of any tensor an op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self.op = ""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                held = t.untyped_storage().nbytes() // max(t.element_size(), 1)
                if held > self.largest:
                    self.largest, self.op = held, f"{func} -> {tuple(t.shape)} {t.dtype}"
        return out


def _allowance(n: int, size: int, dim: int, k: int, chunk_elements: int) -> int:
    """The largest tensor the contract allows (see the module docstring)."""
    return max(chunk_elements, (n + size) * dim, n * k)


def _data(n: int, size: int, dim: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    codewords = torch.randn(size, dim, generator=g)
    # Offset data: a search that centres or shifts must still hold only input-sized copies.
    x = torch.randn(n, dim, generator=g) + 3.0
    return x.to(device), (codewords + 3.0).to(device)


@pytest.mark.parametrize("k", [1, 3])
def test_largest_tensor_stays_within_chunk_elements(k, device):
    n, size, dim, chunk = 4096, 1024, 4, 1 << 15  # N K = 128 chunks; (N + K) D = 20480 < E
    x, c = _data(n, size, dim, device)
    with LargestTensor() as seen:
        d, i = nearest_neighbor(x, c, k, chunk_elements=chunk)
    limit = _allowance(n, size, dim, k, chunk)
    assert limit == chunk and n * size == 128 * chunk
    assert seen.largest <= limit, f"{seen.largest} elements > {limit}: {seen.op}"
    # ... and still finds the k nearest (float64 oracle; fp32 may swap neighbours that are
    # within ~1e-5 of each other at this offset, so the distances are compared, not the order).
    ref = torch.cdist(x.double().cpu(), c.double().cpu()).pow(2)
    want = torch.sort(ref, dim=1).values[:, :k]
    got = torch.sort(ref.gather(1, i.cpu()), dim=1).values
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    torch.testing.assert_close(d.double().cpu(), want, rtol=1e-5, atol=1e-4)


def test_tiny_chunks_hold_one_row_of_distances(device):
    """``chunk_elements`` below K still bounds the work to a row at a time (K distances)."""
    n, size, dim = 300, 512, 3
    x, c = _data(n, size, dim, device)
    with LargestTensor() as seen:
        nearest_neighbor(x, c, 2, chunk_elements=1)
    limit = _allowance(n, size, dim, 2, size)  # one row of K distances, or an input copy
    assert n * size > 60 * limit
    assert seen.largest <= limit, f"{seen.largest} elements > {limit}: {seen.op}"


def test_layers_encode_with_the_default_bound(device):
    """Through the layers, with the real default (2**24 distances = 64 MiB of fp32):
    N K = 4 * 2**24, so one unchunked distance matrix would be four times the bound."""
    n, size, dim = 16384, 4096, 4
    default = DEFAULT_CHUNK_ELEMENTS
    assert default == 1 << 24  # sized for this default: resize N, K if it changes
    x, c = _data(n, size, dim, device)
    vq = VectorQuantizer(dim, size).to(device)
    rvq = ResidualVQ(dim, size, 2).to(device)
    with torch.no_grad():
        vq.codebook.codewords.copy_(c)
        rvq.codebooks[0].codewords.copy_(c)
        rvq.codebooks[1].codewords.copy_(0.1 * (c - 3.0))
    limit = _allowance(n, size, dim, 1, default)
    assert n * size == 4 * limit
    for name, call in [
        ("VectorQuantizer.encode", lambda: vq.encode(x)),
        ("VectorQuantizer eval forward", lambda: vq.eval()(x)),
        ("ResidualVQ.encode", lambda: rvq.encode(x)),
    ]:
        with LargestTensor() as seen:
            call()
        assert seen.largest <= limit, f"{name}: {seen.largest} elements > {limit}: {seen.op}"
    # The encoding is still exact on a sample of rows.
    rows = torch.arange(0, n, 61)
    ref = torch.cdist(x[rows].double().cpu(), c.double().cpu()).argmin(dim=1)
    assert torch.equal(vq.encode(x[rows]).cpu(), ref)
