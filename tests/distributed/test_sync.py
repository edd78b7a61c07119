"""Training on 2 gloo ranks keeps the codebooks bit-identical, and EMA equals one process.

Each rank gets its contiguous half of every global batch (``ddp.shard``); the one-process
oracle trains the same seeded model on the whole batches.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from vqkit import EMA, NoiseSubstitution, StraightThrough, VectorQuantizer, distributed
from vqkit.training import ddp

from .launcher import free_port
from .models import DIM, Tiny, clustered, train

STEPS, BATCH, K = 8, 64, 16


def global_batches(seed: int = 3) -> list[torch.Tensor]:
    return [clustered(BATCH, seed + i) for i in range(STEPS)]


def ema_model() -> Tiny:
    torch.manual_seed(0)
    vq = VectorQuantizer(DIM, K, estimator=StraightThrough(), learning=EMA(decay=0.8))
    model = Tiny(vq)
    vq.init_codebook_(model.enc(global_batches()[0]).detach()[ddp.shard(BATCH)],
                      generator=torch.Generator().manual_seed(5))
    return model


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in ddp.unwrap(model).state_dict().items()}


def _ema_worker(rank: int, world: int) -> dict:
    model = ddp.wrap(ema_model())
    assert isinstance(model, torch.nn.parallel.DistributedDataParallel)
    train(model, [x[ddp.shard(BATCH)] for x in global_batches()])
    vq = ddp.unwrap(model).vq
    return {"state": _state(model), "same": distributed.same_on_all_ranks(vq.codewords)}


def test_ema_two_ranks_bit_identical_and_equal_to_one_process(workers):
    ranks = workers.run(_ema_worker)
    assert all(r["same"] for r in ranks)
    a, b = ranks[0]["state"], ranks[1]["state"]
    for name in ("vq.codebook.codewords", "vq.codebook.ema_counts", "vq.codebook.ema_sums",
                 "enc.weight"):
        assert torch.equal(a[name], b[name]), name
    oracle = ema_model()  # one process, whole batches (no process group in pytest's process)
    train(oracle, global_batches())
    ref = _state(oracle)
    moved = (ref["vq.codebook.codewords"] - ema_model().vq.codewords).abs().max()
    assert moved > 1e-2  # the codebook did learn, so the comparison below means something
    for name in ("vq.codebook.codewords", "vq.codebook.ema_sums", "vq.codebook.ema_counts",
                 "enc.weight", "dec.weight"):
        torch.testing.assert_close(a[name], ref[name], rtol=1e-5, atol=1e-5, msg=name)


def _nsvq_worker(rank: int, world: int) -> dict:
    torch.manual_seed(0)
    vq = VectorQuantizer(DIM, K, estimator=NoiseSubstitution(), init="normal")
    model = ddp.wrap(Tiny(vq))
    plain = Tiny(VectorQuantizer(DIM, K, estimator=NoiseSubstitution()))  # not wrapped
    plain.load_state_dict(ddp.unwrap(model).state_dict())
    torch.manual_seed(100 + rank)  # estimator noise differs per rank, as it should
    batches = [x[ddp.shard(BATCH)] for x in global_batches()]
    train(model, batches[:4])
    replaced = ddp.unwrap(model).vq.replace_dead_codes_(
        0.2, generator=torch.Generator().manual_seed(9))
    train(model, batches[4:])
    train(plain, batches)
    return {"cw": ddp.unwrap(model).vq.codewords.detach().clone(), "replaced": replaced,
            "plain": plain.vq.codewords.detach().clone()}


def test_nsvq_ddp_two_ranks_bit_identical(workers):
    a, b = workers.run(_nsvq_worker)
    assert torch.equal(a["cw"], b["cw"])
    assert a["replaced"] == b["replaced"] > 0
    # Control: the same training without DDP diverges, so the equality above is DDP's doing.
    assert not torch.allclose(a["plain"], b["plain"])


def _eval_worker(rank: int, world: int) -> dict:
    model = ddp.wrap(ema_model())
    batches = [x[ddp.shard(BATCH)] for x in global_batches()]
    train(model, batches[:2])
    if rank == 1:  # extra evaluation forwards on one rank only
        model.eval()
        with torch.no_grad():
            for x in batches:
                model(x)
        model.train()
        inner = ddp.unwrap(model)
        inner.eval()
        for x in batches:  # eval mode with autograd on: still no collective
            inner(x)
            inner.vq.encode(x)
        inner.train()
    train(model, batches[2:4])
    return ddp.unwrap(model).vq.codewords.clone()


def test_extra_eval_forwards_on_one_rank_do_not_hang(workers):
    a, b = workers.run(_eval_worker, timeout=30)
    assert torch.equal(a, b)


def _different_seeds_worker(rank: int, world: int) -> dict:
    torch.manual_seed(rank)  # each rank starts from its own random encoder and EMA codebook
    vq = VectorQuantizer(DIM, K, estimator=StraightThrough(), learning=EMA(decay=0.8),
                         init="normal")
    model = ddp.wrap(Tiny(vq))
    assert isinstance(model, torch.nn.parallel.DistributedDataParallel)
    start = vq.codewords.clone()
    train(model, [x[ddp.shard(BATCH)] for x in global_batches()])
    return {"start": start, "end": vq.codewords.clone(), "usage": vq.codebook.usage.clone()}


def test_wrap_broadcasts_initial_buffers_but_keeps_usage_per_rank(workers):
    a, b = workers.run(_different_seeds_worker)
    torch.manual_seed(0)
    rank0_start = VectorQuantizer(DIM, K, init="normal", learning=EMA()).codewords
    torch.testing.assert_close(a["start"], rank0_start, rtol=0, atol=0)
    assert torch.equal(a["start"], b["start"]) and torch.equal(a["end"], b["end"])
    assert not torch.equal(a["usage"], b["usage"])  # each rank counts its own batches


def _built_before_group(rank: int, world: int, port: int) -> dict:
    ddp.cleanup()  # barrier, then destroy: this task starts with no process group at all
    assert not distributed.is_distributed()
    os.environ["MASTER_PORT"] = str(port)
    torch.manual_seed(rank)  # different random codebooks per rank, and no group yet
    vq = VectorQuantizer(DIM, K, estimator=StraightThrough(), learning=EMA(decay=0.8))
    info = ddp.setup_from_env(device="cpu")  # torchrun-style env:// rendezvous
    model = ddp.wrap(vq)  # EMA only, nothing to train: not DDP, state broadcast from rank 0
    assert model is vq
    for x in global_batches():
        vq(x[ddp.shard(BATCH)])
    return {"info": info, "cw": vq.codewords.clone(), "main": ddp.is_main_process()}


def test_model_built_before_init_process_group_still_syncs(workers):
    a, b = workers.run(_built_before_group, free_port())
    assert (a["info"].rank, a["info"].world_size, b["info"].rank) == (0, 2, 1)
    assert (a["main"], b["main"]) == (True, False)
    assert torch.equal(a["cw"], b["cw"])


def _count_collectives(rank: int, world: int) -> dict:
    from unittest import mock

    from vqkit import SpaceFillingVQ
    from vqkit.quantizers.additive import AdditiveVQ
    from vqkit.quantizers.dropout import BatchDepth
    from vqkit.quantizers.product import ProductVQ
    from vqkit.quantizers.residual import ResidualVQ

    torch.manual_seed(0)
    builds = {
        "vq-nsvq": lambda: VectorQuantizer(DIM, K),
        "vq-ema": lambda: VectorQuantizer(DIM, K, estimator=StraightThrough(), learning=EMA()),
        "rvq-dropout": lambda: ResidualVQ(DIM, 8, 3, dropout=BatchDepth()),
        "rvq-ema": lambda: ResidualVQ(DIM, 8, 3, estimator=StraightThrough(), learning=EMA()),
        "pvq": lambda: ProductVQ(DIM, 8, 2),
        "avq": lambda: AdditiveVQ(DIM, 8, 2),
        "sfvq": lambda: SpaceFillingVQ(DIM, 8),
    }
    calls: list[str] = []
    real = {name: getattr(dist, name) for name in
            ("all_reduce", "broadcast", "all_gather", "reduce", "barrier", "all_gather_object")}

    def counting(name):
        def call(*args, **kwargs):
            calls.append(name)
            return real[name](*args, **kwargs)
        return call

    out = {}
    x = clustered(32, rank)
    with mock.patch.multiple(dist, **{name: counting(name) for name in real}):
        for key, build in builds.items():
            q = build()
            calls.clear()
            q.train()(x)
            train_calls = len(calls)
            calls.clear()
            q.eval()(x)
            q.encode(x)
            out[key] = (train_calls, len(calls))
    return out


def test_no_collective_in_forward_but_the_ema_statistics(workers):
    a, b = workers.run(_count_collectives)
    assert a == b
    expected = {"vq-nsvq": (0, 0), "vq-ema": (2, 0), "rvq-dropout": (0, 0),
                "rvq-ema": (6, 0), "pvq": (0, 0), "avq": (0, 0), "sfvq": (0, 0)}
    assert a == expected  # EMA: counts and sums, once per codebook
