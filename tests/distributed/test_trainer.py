"""The training loop behind `vqkit fit` (vqkit.training.loop.Trainer) on 2 gloo ranks: each rank
draws its own batches from its shard, yet the quantizers stay bit-identical (gradient averaging,
EMA all-reduce, seeded dead-code replacement), and the checkpoint holds both ranks' states."""

from __future__ import annotations

import pytest
import torch

from vqkit import EMA, StraightThrough, VectorQuantizer
from vqkit.training import ddp

from .models import DIM, clustered


def _build(name: str):
    from vqkit.quantizers.dropout import BatchDepth
    from vqkit.quantizers.residual import ResidualVQ

    if name == "vq-nsvq":
        return VectorQuantizer(DIM, 16)
    if name == "vq-ema":
        return VectorQuantizer(DIM, 16, estimator=StraightThrough(), learning=EMA(decay=0.9))
    return ResidualVQ(DIM, 8, 2, dropout=BatchDepth(seed=1))


def _trainer_worker(rank: int, world: int, name: str) -> dict:
    from vqkit.training.loop import rows_trainer
    from vqkit.training.schedule import Replacement, Schedule

    torch.manual_seed(rank)  # different random starts; broadcast_state_ makes them agree
    q = ddp.broadcast_state_(_build(name))
    data = clustered(600, seed=4)[ddp.shard(600, even=True)]
    schedule = Schedule(steps=30, lr=0.01, log_every=10,
                        replacement=Replacement(every=10, threshold=0.05))
    trainer = rows_trainer(q, data, schedule, batch=32, seed=0)
    trainer.run()
    ckpt = trainer.checkpoint()
    return {"state": {k: v.clone() for k, v in q.state_dict().items()},
            "history": trainer.meters.history,
            "rng_states": None if ckpt is None else len(ckpt.rng)}


@pytest.mark.parametrize("name", ["vq-nsvq", "vq-ema", "rvq-dropout"])
def test_trainer_keeps_ranks_bit_identical(workers, name):
    a, b = workers.run(_trainer_worker, name)
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        if key.endswith(("usage", "usage_batches")):
            continue  # per-rank counters by design
        assert torch.equal(a["state"][key], b["state"][key]), key
    assert a["history"] == b["history"]  # meters are all-reduced: the same log on both ranks
    assert (a["rng_states"], b["rng_states"]) == (2, None)  # rank 0 holds both ranks' states
