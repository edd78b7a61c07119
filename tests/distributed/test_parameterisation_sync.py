"""Codebook parameterisations under DDP: state syncs on 2 gloo ranks, EMA equals one process.

A cosine codebook learned by EMA all-reduces its statistics of normalised inputs; a factorised
one (EMA in the projected space) and a SimVQ one (learned by gradient through ``W``) keep every
rank's state bit-identical through DDP's gradient averaging.
"""

from __future__ import annotations

import pytest
import torch

from vqkit import EMA, Cosine, Factorised, SimVQ, StraightThrough, VectorQuantizer, distributed
from vqkit.training import ddp

from .models import DIM, Tiny, clustered, train

STEPS, BATCH, K = 6, 64, 16
MAKERS = {
    "cosine-ema": lambda: VectorQuantizer(DIM, K, estimator=StraightThrough(),
                                          learning=EMA(decay=0.8), parameterisation=Cosine()),
    "factorised-ema": lambda: VectorQuantizer(DIM, K, estimator=StraightThrough(),
                                              learning=EMA(decay=0.8),
                                              parameterisation=Factorised(3)),
    "simvq": lambda: VectorQuantizer(DIM, K, estimator=StraightThrough(), init="normal",
                                     parameterisation=SimVQ()),
}


def batches() -> list[torch.Tensor]:
    return [clustered(BATCH, 11 + i) for i in range(STEPS)]


def model(name: str) -> Tiny:
    torch.manual_seed(0)
    return Tiny(MAKERS[name]())


def _state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in ddp.unwrap(m).state_dict().items()}


def _worker(rank: int, world: int, name: str) -> dict:
    wrapped = ddp.wrap(model(name))
    train(wrapped, [x[ddp.shard(BATCH)] for x in batches()])
    vq = ddp.unwrap(wrapped).vq
    return {"state": _state(wrapped), "same": distributed.same_on_all_ranks(vq.codewords)}


@pytest.mark.parametrize("name", list(MAKERS))
def test_parameterised_codebooks_stay_identical_and_equal_one_process(workers, name):
    a, b = workers.run(_worker, name)
    assert a["same"] and b["same"]
    oracle = model(name)  # one process on the whole batches
    train(oracle, batches())
    ref = _state(oracle)
    start = _state(model(name))
    learned = [k for k in ref if k.startswith("vq.codebook.") and "usage" not in k]
    assert any(not torch.equal(ref[k], start[k]) for k in learned)  # the codebook did learn
    for key in ref:
        if "usage" in key:  # usage counters are per rank by design
            continue
        assert torch.equal(a["state"][key], b["state"][key]), key
        torch.testing.assert_close(a["state"][key], ref[key], rtol=1e-5, atol=1e-5, msg=key)
