"""Lazy data initialisation on 2 gloo ranks: every rank initialises in the same forward from
its own (masked) batch, and all end with the same codebooks, bit for bit: those of an
explicit ``init_codebook_`` on the same per-rank samples, and (to float rounding) those of one
process on the union of the kept vectors."""

from __future__ import annotations

import pytest
import torch

from vqkit import DataInit, ResidualVQ, SimVQ, StraightThrough, VectorQuantizer
from vqkit.training import ddp

from .models import DIM, Tiny, clustered, train

K = 12
#: Vectors per rank, and whether rank 1 keeps none of its vectors (all masked out).
CASES = {"uneven": ((70, 40), False), "rank-1-all-masked": ((90, 30), True)}
BUILD = {
    "vq": lambda **kw: VectorQuantizer(DIM, K, estimator=StraightThrough(), **kw),
    "rvq-simvq": lambda **kw: ResidualVQ(DIM, K, 2, parameterisation=SimVQ(), **kw),
}


def _shared(state: dict) -> dict:
    """The state every rank must agree on (usage counters count this rank's batches)."""
    return {k: v for k, v in state.items() if not k.endswith(("usage", "usage_batches"))}


def _local(rank: int, sizes: tuple[int, int], rank1_masked: bool):
    """This rank's vectors and mask (the masked-out ones far away)."""
    x = clustered(sum(sizes), seed=5)
    start = sum(sizes[:rank])
    x = x[start : start + sizes[rank]]
    mask = torch.rand(len(x), generator=torch.Generator().manual_seed(rank)) > 0.2
    if rank == 1 and rank1_masked:
        mask[:] = False
    return x + 100.0 * (~mask)[:, None], mask


def _init_worker(rank: int, world: int, name: str, case: str) -> dict:
    sizes, rank1_masked = CASES[case]
    torch.manual_seed(rank)  # different random starts: broadcast_state_ makes them agree
    lazy = ddp.broadcast_state_(BUILD[name](data_init=DataInit(seed=4, iters=10)))
    twin = BUILD[name]()
    twin.load_state_dict({k: v for k, v in lazy.state_dict().items() if k != "initialised"})
    x, mask = _local(rank, sizes, rank1_masked)
    lazy.train()(x, mask=mask)
    twin.init_codebook_(x[mask], generator=torch.Generator().manual_seed(4), iters=10)
    return {"lazy": lazy.state_dict(), "twin": twin.state_dict(), "kept": x[mask]}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list(BUILD))
def test_ranks_initialise_together_and_agree(workers, name, case):
    a, b = workers.run(_init_worker, name, case)
    assert bool(a["lazy"]["initialised"]) and bool(b["lazy"]["initialised"])
    for key, value in _shared(a["lazy"]).items():
        assert torch.equal(value, b["lazy"][key]), key  # the same on both ranks
        if key != "initialised":
            assert torch.equal(value, a["twin"][key]), key  # = the explicit call
    if name == "vq":  # one process on the union of the kept vectors (rank order)
        union = torch.cat([a["kept"], b["kept"]])
        one = VectorQuantizer(DIM, K)
        one.init_codebook_(union, generator=torch.Generator().manual_seed(4), iters=10)
        torch.testing.assert_close(a["lazy"]["codebook.codewords"], one.codewords,
                                   rtol=1e-5, atol=1e-5)
        assert (a["lazy"]["codebook.codewords"].abs() < 50).all()  # no masked vector


def _training_worker(rank: int, world: int) -> dict:
    torch.manual_seed(rank)
    vq = VectorQuantizer(DIM, K, estimator=StraightThrough(), data_init=DataInit(seed=1))
    model = ddp.wrap(Tiny(vq))  # DDP: broadcasts parameters and buffers (the bool flag too)
    flags = []
    for step in range(4):
        x = clustered(64, seed=20 + step)[ddp.shard(64)]
        train(model, [x])
        flags.append(bool(vq.initialised))
    return {"flags": flags, "state": vq.state_dict()}


def test_a_ddp_model_trains_with_the_same_codebooks_on_both_ranks(workers):
    a, b = workers.run(_training_worker)
    assert a["flags"] == b["flags"] == [True] * 4
    for key, value in _shared(a["state"]).items():
        assert torch.equal(value, b["state"][key]), key


def _too_few_worker(rank: int, world: int) -> dict:
    torch.manual_seed(rank)
    vq = ddp.broadcast_state_(VectorQuantizer(DIM, 32, data_init=DataInit()))
    x = clustered(20 if rank == 0 else 10, seed=rank)
    vq.train()(x)
    empty = VectorQuantizer(DIM, 32, data_init=DataInit())
    try:
        empty.train()(x, mask=torch.zeros(len(x), dtype=torch.bool))
        message = "no error"
    except ValueError as err:
        message = str(err)
    return {"codewords": vq.codewords.detach(), "x": x, "message": message}


def test_a_first_batch_smaller_than_the_codebook_is_filled_up_on_every_rank(workers):
    """20 + 10 vectors for 32 codewords: both ranks end with the same codebook, with a
    codeword near every vector of either rank; no vector at all is refused on both ranks."""
    a, b = workers.run(_too_few_worker)
    assert torch.equal(a["codewords"], b["codewords"])
    from vqkit.quantizers.data_init import FILL_JITTER

    union = torch.cat([a["x"], b["x"]]).double()
    spread = max(float((r["x"] - r["x"].mean(0)).square().mean().sqrt()) for r in (a, b))
    reach = 4 * FILL_JITTER * spread * DIM**0.5  # a few jitters of the larger rank's spread
    assert float(torch.cdist(union, a["codewords"].double()).min(1).values.max()) < reach
    assert all("kept no vector" in r["message"] for r in (a, b)), (a["message"], b["message"])
