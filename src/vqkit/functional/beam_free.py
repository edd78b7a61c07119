"""The steps of the free-order beam search of additive VQ ([vali2023rpavqcode]) on one chunk.

State per vector and beam: the chosen padded pool rows ``m K + k`` in the order chosen, the
unused codebooks (ascending), the error ``||x - s_b||^2`` and a key of the chosen set. A step
scores every beam's unused codewords (a strategy of :mod:`vqkit.functional.beam_free_scores`)
and keeps the survivors of :func:`vqkit.functional.beam_free_select.survivors`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .beam_free_scores import DirectScores, TableScores
from .beam_free_select import CandidateKeys, survivors

# Multipliers of the hash that identifies a set of codewords reached in different orders,
# used when the exact mixed-radix key would not fit in 63 bits.
_HASH_SEED = 0x5EED


def _hash_multipliers(count: int) -> Tensor:
    """``count`` odd 63-bit multipliers; products wrap modulo 2**64."""
    g = torch.Generator().manual_seed(_HASH_SEED)
    return torch.randint(1, 2**62, (count,), generator=g).mul_(2).add_(1)


# Drawn once here (the draws are prefix-stable, so any count takes the first ones): creating a
# generator inside a compiled function would break the graph.
_MULTIPLIERS = _hash_multipliers(256)


def set_weights(sizes: Sequence[int], device: torch.device) -> Tensor:
    """``(M,)`` int64 weights ``w``: the key of a tuple is ``sum_m (index_m + 1) w_m`` (0 for an
    unused codebook), exact mixed radix when it fits in 62 bits, else a 64-bit hash."""
    radix = 1
    for s in sizes:
        radix *= s + 1
    if radix < 2**62:
        weights, acc = [], 1
        for s in sizes:
            weights.append(acc)
            acc *= s + 1
        return torch.tensor(weights, dtype=torch.long, device=device)
    count = len(sizes)
    w = _MULTIPLIERS[:count] if count <= len(_MULTIPLIERS) else _hash_multipliers(count)
    return w.to(device)


def set_keys(selection: Tensor, sizes: Sequence[int]) -> Tensor:
    """One int64 key per tuple (last axis M, -1 = unused) that is equal for equal tuples."""
    return ((selection + 1) * set_weights(sizes, selection.device)).sum(dim=-1)


def free_order_search(
    x: Tensor, scorer: DirectScores | TableScores, sizes: Sequence[int], width: int
) -> Tensor:
    """Indices ``(n, M)`` of the free-order beam search of ``x (n, D)``.

    Args:
        x: ``(n, D)`` fp32 vectors of one chunk.
        scorer: the candidate errors' strategy, built on the same codebooks.
        sizes: the codebooks' sizes ``K_m``.
        width: W >= 1.

    Returns:
        ``(n, M)`` int64 indices.
    """
    n, num, size = x.shape[0], len(sizes), max(sizes)
    dev = x.device
    weights = set_weights(sizes, dev)
    err = scorer.start(x)  # (n, 1)
    chosen = torch.empty(n, 1, 0, dtype=torch.long, device=dev)
    unused = torch.arange(num, device=dev).expand(n, 1, num)
    key = torch.zeros(n, 1, dtype=torch.long, device=dev)
    for step in range(num):
        # Every tuple has at least this many real rows left, so no padding row is proposed.
        k = min(width, sum(sorted(sizes)[: num - step]))
        beams = chosen.shape[1]
        keep = 1 if step == num - 1 else min(width, beams * k)
        d = scorer.scores(chosen, unused, err)  # (n, B, J, K)
        slots = d.shape[2]
        keys = CandidateKeys(key, unused, weights, size)
        pos, err = survivors(d.view(n, beams, slots * size), k, keep, keys)
        key = keys(pos)
        beam = torch.div(pos, slots * size, rounding_mode="floor")
        rest = pos - beam * (slots * size)
        slot = torch.div(rest, size, rounding_mode="floor")
        parent = unused.gather(1, beam[..., None].expand(-1, -1, slots))  # (n, keep, J)
        book = parent.gather(2, slot[..., None])  # (n, keep, 1)
        row = book * size + (rest - slot * size)[..., None]
        chosen = torch.cat([chosen.gather(1, beam[..., None].expand(-1, -1, step)), row], dim=2)
        rest_slots = torch.arange(slots - 1, device=dev)
        unused = parent.gather(2, rest_slots + (rest_slots >= slot[..., None]).long())
    out = torch.empty(n, num, dtype=torch.long, device=dev)
    rows = chosen[:, 0]
    return out.scatter_(1, torch.div(rows, size, rounding_mode="floor"), rows % size)


__all__ = ["free_order_search", "set_keys", "set_weights"]
