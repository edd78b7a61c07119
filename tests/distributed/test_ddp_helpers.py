"""vqkit.training.ddp and vqkit.distributed: pure helpers, and collectives on 2 gloo ranks."""

from __future__ import annotations

import pytest
import torch

from vqkit import distributed
from vqkit.training import ddp


@pytest.mark.parametrize("n", [0, 1, 7, 10, 101])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shard_partitions_in_rank_order(n, world):
    parts = [ddp.shard(n, rank=r, world_size=world) for r in range(world)]
    covered = [i for p in parts for i in range(n)[p]]
    assert covered == list(range(n))  # contiguous, in rank order, no overlap
    sizes = [len(range(n)[p]) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    even = [len(range(n)[ddp.shard(n, even=True, rank=r, world_size=world)])
            for r in range(world)]
    assert even == [n // world] * world


def test_shard_and_setup_reject_bad_input(monkeypatch):
    with pytest.raises(ValueError, match="rank must be in"):
        ddp.shard(10, rank=2, world_size=2)
    with pytest.raises(ValueError, match="n must be"):
        ddp.shard(-1)
    with pytest.raises(ValueError, match="backend"):
        ddp.setup_from_env(backend="mpi")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            ddp.setup_from_env(device="cuda")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer"):
        ddp.setup_from_env()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        ddp.setup_from_env(device="cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    info = ddp.setup_from_env(device="cpu")
    assert (info.rank, info.world_size, info.is_main) == (0, 1, True)


def _collectives(rank: int, world: int) -> dict:
    grid = torch.arange(12.0).reshape(3, 4) * (rank + 1)
    distributed.all_reduce_(grid[:, 1])  # a non-contiguous view: reduced in place
    col = torch.full((4, 3), float(rank))
    distributed.broadcast_(col[:, 2], src=1)
    info = ddp.setup_from_env(device="cpu")  # the group exists: just reports it
    return {"grid": grid, "col": col, "rank": info.rank, "world": info.world_size,
            "main": ddp.is_main_process(), "shard": ddp.shard(5),
            "same": distributed.same_on_all_ranks(torch.tensor([float(rank == 0)]))}


def test_collectives_on_views_and_rank_helpers(workers):
    a, b = workers.run(_collectives)
    base = torch.arange(12.0).reshape(3, 4)
    for r, out in enumerate((a, b)):
        assert torch.equal(out["grid"][:, 1], 3 * base[:, 1])
        assert torch.equal(out["grid"][:, 0], (r + 1) * base[:, 0])  # untouched
        assert out["col"][:, 2].tolist() == [1.0] * 4 and out["col"][0, 0] == r
        assert (out["rank"], out["world"], out["main"]) == (r, 2, r == 0)
        assert out["same"] is False
    assert (a["shard"], b["shard"]) == (slice(0, 3), slice(3, 5))
