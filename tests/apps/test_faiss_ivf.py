"""The IVF builder refuses what it cannot build honestly; the end-to-end oracles are in
tests/cli/test_index_ivf.py."""

from __future__ import annotations

import pytest
import torch

faiss = pytest.importorskip("faiss")

from vqkit.apps.ann import ivf  # noqa: E402
from vqkit.apps.ann.faiss_bridge import to_faiss  # noqa: E402
from vqkit.quantizers.build import build_quantizer  # noqa: E402


@pytest.fixture
def rvq():
    return build_quantizer("rvq", 8, 16, 2).eval()


def test_coarse_centroids_refuses_bad_sizes():
    x = torch.randn(20, 4)
    for nlist in (0, 21):
        with pytest.raises(ValueError, match=rf"nlist must be in \[1, 20\].*got {nlist}"):
            ivf.coarse_centroids(x, nlist)
    with pytest.raises(ValueError, match="iters must be >= 0, got -1"):
        ivf.coarse_centroids(x, 4, iters=-1)
    with pytest.raises(ValueError, match=r"x must be \(N, D\)"):
        ivf.coarse_centroids(torch.randn(20), 4)


def test_ivf_index_refuses_bad_centroids_and_nprobe(rvq):
    with pytest.raises(ValueError, match=r"shape \(nlist, 8\), got \(4, 7\)"):
        ivf.ivf_index(rvq, torch.randn(4, 7))
    with pytest.raises(ValueError, match="NaN"):
        ivf.ivf_index(rvq, torch.full((4, 8), float("nan")))
    for nprobe in (0, 5):
        with pytest.raises(ValueError, match=rf"nprobe must be in \[1, 4\].*got {nprobe}"):
            ivf.ivf_index(rvq, torch.randn(4, 8), nprobe=nprobe)
    with pytest.raises(TypeError, match="ProductVQ, ResidualVQ or AdditiveVQ"):
        ivf.ivf_index(build_quantizer("vq", 8, 16), torch.randn(4, 8))


def test_add_to_lists_refuses_what_would_store_wrong_codes(rvq):
    x = torch.randn(30, 8)
    codes = rvq.encode(x)
    with pytest.raises(TypeError, match="IVF index"):
        ivf.add_to_lists(to_faiss(rvq), x, codes)
    index = ivf.ivf_index(rvq, x[:4])
    with pytest.raises(ValueError, match="30 rows"):
        ivf.add_to_lists(index, x, codes[:29])
    with pytest.raises(ValueError, match=r"shape \(N, 8\)"):
        ivf.add_to_lists(index, x[:, :7], codes)
    index.by_residual = True
    with pytest.raises(ValueError, match="by_residual"):
        ivf.add_to_lists(index, x, codes)
    assert index.ntotal == 0


def test_probe_params(rvq):
    index = ivf.ivf_index(rvq, torch.randn(4, 8), nprobe=2)
    assert ivf.probe_params(index, 3).nprobe == 3 and index.nprobe == 2  # the index is kept
    with pytest.raises(ValueError, match=r"nprobe must be in \[1, 4\].*got 5"):
        ivf.probe_params(index, 5)
    with pytest.raises(ValueError, match="not to a flat IndexResidualQuantizer"):
        ivf.probe_params(to_faiss(rvq), 1)


def test_list_numbers_above_255_take_two_bytes(rvq):
    """nlist 300: FAISS's sa code carries the list number in two little-endian bytes."""
    from faiss.contrib.inspect_tools import get_invlist

    x = torch.randn(1000, 8, generator=torch.Generator().manual_seed(0))
    index = ivf.ivf_index(rvq, ivf.coarse_centroids(x, 300, iters=2))
    assert index.coarse_code_size() == 2
    ivf.add_to_lists(index, x, rvq.encode(x))
    nearest = (torch.cdist(x.double(), torch.from_numpy(index.quantizer.reconstruct_n(0, 300))
                           .double())).argmin(dim=1)
    lists = torch.full((1000,), -1)
    for c in range(300):
        ids, _ = get_invlist(index.invlists, c)
        lists[torch.from_numpy(ids)] = c
    assert index.ntotal == 1000 and torch.equal(lists, nearest)
