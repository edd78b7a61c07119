"""The survivor selection of the free-order beam search against a per-row Python reference.

The data are built to make the fast path (the ``2 keep`` lowest candidates over all beams) come
up short: every single codeword is a beam and each candidate's error is a function of its set,
so every set is proposed twice with the same error, and errors are small integers, so values
tie everywhere. Short rows go to the second way (all proposals, sorted keys); the test checks
that both ways are taken and that both give the reference's answer.
"""

from __future__ import annotations

import pytest
import torch

import vqkit.functional.beam_free_select as select
from vqkit.functional.beam_free import set_weights
from vqkit.functional.beam_free_select import CandidateKeys, survivors

M, K = 3, 6


def _problem(n: int, seed: int):
    """Rows whose beams are all M K single codewords, each with its 2 unused codebooks."""
    g = torch.Generator().manual_seed(seed)
    weights = set_weights([K] * M, torch.device("cpu"))
    beams = M * K
    book = torch.arange(beams) // K
    unused = torch.stack([torch.tensor([u for u in range(M) if u != m]) for m in book.tolist()])
    key = (torch.arange(beams) % K + 1) * weights[book]
    keys = CandidateKeys(key.expand(n, -1), unused.expand(n, -1, -1), weights, K)
    pos = torch.arange(beams * (M - 1) * K).expand(n, -1)
    cand = keys(pos)  # (n, B J K)
    # Errors as a function of the set (exact duplicates tie) in 0..7: ties everywhere.
    salt = torch.randint(0, 2**31, (n, 1), generator=g)
    d = ((cand * 2654435761 + salt) % 1000003 % 8).float()
    return d.view(n, beams, (M - 1) * K), keys, cand


def _reference(d, cand, k, keep):
    """The rule, per row: each beam proposes its k lowest (ties: lower position); proposals in
    order of (error, position); the first of each set survives; the first ``keep`` survivors,
    then repeated proposals at +inf if there are too few."""
    n, beams, length = d.shape
    out_pos, out_val = [], []
    for i in range(n):
        props = []
        for b in range(beams):
            row = sorted(range(length), key=lambda j, b=b: (float(d[i, b, j]), j))[:k]
            props += [(float(d[i, b, j]), b * length + j) for j in row]
        props.sort()
        seen, alive, dups = set(), [], []
        for v, p in props:
            key = int(cand[i, p])
            (dups if key in seen else alive).append((v if key not in seen else float("inf"), p))
            seen.add(key)
        chosen = (alive + dups)[:keep]
        out_pos.append([p for _, p in chosen])
        out_val.append([v for v, _ in chosen])
    return torch.tensor(out_pos), torch.tensor(out_val)


@pytest.mark.parametrize(("k", "keep"), [(1, 1), (2, 3), (3, 6), (4, 12), (8, 40)])
def test_survivors_equal_the_reference(k, keep, monkeypatch):
    d, keys, cand = _problem(40, seed=k * 100 + keep)
    calls = []
    full = select._by_proposals

    def counted(d, k, keep, keys):
        calls.append(d.shape[0])
        return full(d, k, keep, keys)

    monkeypatch.setattr(select, "_by_proposals", counted)
    pos, val = survivors(d, k, keep, keys)
    ref_pos, ref_val = _reference(d, cand, k, keep)
    assert torch.equal(pos, ref_pos)
    assert torch.equal(val, ref_val)
    if keep > 1:  # some rows were short, not all: both ways ran
        assert 0 < sum(calls) < len(d)
    # The second way alone (the compiled path) gives the same answer on every row.
    pos_all, val_all = full(d, k, keep, keys)
    assert torch.equal(pos_all, ref_pos) and torch.equal(val_all, ref_val)


def test_repeated_sets_fill_places_at_inf_when_sets_run_out():
    """keep above the distinct sets proposed: the surplus places hold repeats at +inf."""
    d, keys, cand = _problem(5, seed=3)
    beams, length = d.shape[1], d.shape[2]
    distinct = M * (M - 1) // 2 * K * K  # 2-codeword sets
    pos, val = survivors(d, length, beams * length, keys)
    assert torch.isfinite(val).sum(dim=1).tolist() == [distinct] * 5
    for row in range(5):  # the finite places name distinct sets
        assert cand[row, pos[row, :distinct]].unique().numel() == distinct


def test_survivors_reject_a_batch_that_is_not_three_dimensional():
    d, keys, _ = _problem(2, seed=0)
    with pytest.raises(ValueError, match="3-D"):
        survivors(d.flatten(1), 2, 2, keys)
