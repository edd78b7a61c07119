"""The entropy penalty of LFQ on 2 gloo ranks is the one-process penalty of the whole batch.

Each rank holds a part of the batch (unequal parts, one of them possibly empty of kept rows);
the batch averages are summed over ranks, so both entropies equal those of the concatenated
batch, on every rank. The input gradient on a rank is ``world`` times the one-process
gradient of its rows (each rank back-propagates the same global loss; DDP then averages the
parameter gradients over the ranks). The same holds on the fixed-shape path of a masked batch
under ``torch.compile``, where the masked rows enter the batch sums with weight 0 and the kept
counts are summed over the ranks.
"""

from __future__ import annotations

import pytest
import torch

from vqkit import LFQ, EntropyPenalty, StraightThrough

SPLIT = 5  # rank 0 gets rows [:5], rank 1 rows [5:]


def _quantizer() -> LFQ:
    return LFQ(6, 2**6, estimator=StraightThrough(beta=0.0),
               regulariser=EntropyPenalty(weight=1.0, temperature=0.5)).train()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return torch.randn(16, 6, generator=g), torch.rand(16, generator=g) > 0.3


def _run(x: torch.Tensor, mask: torch.Tensor, in_place: bool = False) -> dict:
    x = x.clone().requires_grad_()
    q = _quantizer()
    # in place: the fixed-shape path torch.compile takes (all rows, masked ones weighted 0)
    out = q._forward_masked_in_place(x, mask) if in_place else q(x, mask=mask)
    out.loss.backward()
    return {"loss": out.loss.detach(), "grad": x.grad,
            **{k: v.detach() for k, v in out.losses.items() if k.startswith("entropy")}}


def _worker(rank: int, world: int, in_place: bool = False) -> dict:
    x, mask = _batch()
    rows = slice(0, SPLIT) if rank == 0 else slice(SPLIT, None)
    return _run(x[rows], mask[rows], in_place)


@pytest.mark.parametrize("in_place", [False, True], ids=["eager", "in-place"])
def test_two_ranks_give_the_penalty_of_the_whole_batch(workers, in_place):
    ranks = workers.run(_worker, in_place)
    x, mask = _batch()
    single = _run(x, mask)
    for name in ("loss", "entropy_per_sample", "entropy_codebook"):
        for r in ranks:
            torch.testing.assert_close(r[name], single[name], rtol=1e-5, atol=1e-6)
    grad = torch.cat([ranks[0]["grad"], ranks[1]["grad"]])
    torch.testing.assert_close(grad, 2 * single["grad"], rtol=1e-5, atol=1e-7)
