"""k-means initialisation and dead-code replacement make the same choices on 2 gloo ranks.

Oracle for k-means: shards seeded the same give the centres of one process on the union
(the shards concatenated in rank order), and the result is a Lloyd fixed point of the union.
"""

from __future__ import annotations

import torch
from torch import nn

from vqkit import Gradient, StraightThrough, UsageWeighted, VectorQuantizer, distributed
from vqkit.functional.kmeans import kmeans, kmeans_plus_plus
from vqkit.functional.search import nearest_neighbor
from vqkit.training import ddp

from .models import DIM, clustered

K = 12
SIZES = {"even": (60, 60), "uneven": (90, 30), "empty": (120, 0)}


def union() -> torch.Tensor:
    return clustered(120, seed=11)


def local_part(rank: int, sizes: tuple[int, int]) -> torch.Tensor:
    start = sum(sizes[:rank])
    return union()[start : start + sizes[rank]]


def _kmeans_worker(rank: int, world: int, sizes: tuple[int, int]) -> dict:
    x = local_part(rank, sizes)
    seeds = kmeans_plus_plus(x, K, generator=torch.Generator().manual_seed(1),
                             all_reduce=distributed.all_reduce_, rank=rank)
    centres = kmeans(x, K, generator=torch.Generator().manual_seed(1),
                     all_reduce=distributed.all_reduce_)  # rank from the default group
    progressive = kmeans(x, K, generator=torch.Generator().manual_seed(1), dim_steps=3,
                         all_reduce=distributed.all_reduce_)  # the PCA's sums over ranks too
    vq = VectorQuantizer(DIM, K)
    vq.init_codebook_(x, generator=torch.Generator().manual_seed(1))
    return {"seeds": seeds, "centres": centres, "vq": vq.codewords.detach().clone(),
            "progressive": progressive}


def test_kmeans_on_shards_equals_one_process_on_the_union(workers):
    x = union()
    for name, sizes in SIZES.items():
        a, b = workers.run(_kmeans_worker, sizes)
        for key in ("seeds", "centres", "vq", "progressive"):
            assert torch.equal(a[key], b[key]), (name, key)
        one_seeds = kmeans_plus_plus(x, K, generator=torch.Generator().manual_seed(1))
        # k-means++ picks rows of the union: the same rows as one process.
        assert torch.equal(a["seeds"], one_seeds), name
        one = kmeans(x, K, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(a["centres"], one, rtol=1e-6, atol=1e-6, msg=name)
        torch.testing.assert_close(a["vq"], one, rtol=1e-6, atol=1e-6, msg=name)
        one_pd = kmeans(x, K, generator=torch.Generator().manual_seed(1), dim_steps=3)
        torch.testing.assert_close(a["progressive"], one_pd, rtol=1e-5, atol=1e-5, msg=name)
        # A Lloyd fixed point of the union: each centre is the mean of the points it owns.
        idx = nearest_neighbor(x, a["centres"])[1][:, 0]
        for k in idx.unique():
            torch.testing.assert_close(a["centres"][k], x[idx == k].mean(0), atol=1e-5,
                                       rtol=1e-5)


class _OnlyVQ(nn.Module):
    def __init__(self, vq: VectorQuantizer) -> None:
        super().__init__()
        self.vq = vq

    def forward(self, x):
        out = self.vq(x)
        return out.quantized.pow(2).mean() + out.loss


def _line_codebook() -> VectorQuantizer:
    vq = VectorQuantizer(DIM, 16, estimator=StraightThrough(), learning=Gradient())
    with torch.no_grad():
        vq.codebook.codewords.zero_()
        vq.codebook.codewords[:, 0] = 3.0 * torch.arange(16.0)
    return vq


def _dead_code_worker(rank: int, world: int, rule_name: str, seeded: bool) -> dict:
    torch.manual_seed(rank)  # the global RNG differs per rank
    model = ddp.wrap(_OnlyVQ(_line_codebook()))
    vq = ddp.unwrap(model).vq
    # rank 0 feeds points near codewords 0..3, rank 1 near 4..7
    g = torch.Generator().manual_seed(rank)
    codes = torch.randint(4 * rank, 4 * rank + 4, (40,), generator=g)
    x = vq.codewords.detach()[codes] + 0.01 * torch.randn(40, DIM, generator=g)
    for _ in range(3):
        model(x).backward()
    local_usage = vq.codebook.usage.clone()  # per rank: DDP must not broadcast it
    rule = UsageWeighted() if rule_name == "weighted" else None
    gen = torch.Generator().manual_seed(4) if seeded else None
    n = vq.replace_dead_codes_(0.5, rule=rule, generator=gen)
    return {"usage": local_usage, "n": n, "cw": vq.codewords.detach().clone()}


def test_dead_code_replacement_identical_on_both_ranks(workers):
    before = _line_codebook().codewords.detach()
    for rule_name in ("tile", "weighted"):
        for seeded in (True, False):
            a, b = workers.run(_dead_code_worker, rule_name, seeded)
            # usage counters stay per rank (wrap() sets broadcast_buffers=False) ...
            assert a["usage"][:4].tolist() == [3] * 4 and a["usage"][4:].sum() == 0
            assert b["usage"][4:8].tolist() == [3] * 4 and b["usage"][:4].sum() == 0
            # ... and are summed before the decision: 8 dead (one rank alone would say 12)
            assert a["n"] == b["n"] == 8
            assert torch.equal(a["cw"], b["cw"]), (rule_name, seeded)
            assert torch.equal(a["cw"][:8], before[:8])
            # each new codeword is a jittered copy of a used one (0..7)
            d, src = nearest_neighbor(a["cw"][8:], before[:8])
            assert bool((d < 1e-4).all()) and not torch.equal(a["cw"][8:], before[8:])
