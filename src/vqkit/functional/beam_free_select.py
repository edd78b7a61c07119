"""The survivors of one step of the free-order beam search: proposals, de-duplication, best W.

Each beam proposes its ``k`` candidates of lowest error (ties: lowest position, i.e. pool row);
of the proposals that reach one set of codewords (in different orders), only the one of lowest
error survives (ties: the earliest proposed, i.e. the lowest beam rank); the ``keep`` surviving
candidates of lowest error are kept, in order of (error, beam, pool row). With exact errors, the
proposals of one set tie, so the survivor is the first proposal of the set ([vali2023rpavqcode]).

:func:`survivors` selects in two ways with the same result:

- the ``2 keep`` lowest candidates over all beams at once, in order: whether one of them is
  proposed (fewer than ``k`` of its beam before it) and whether it repeats an earlier proposal's
  set depends only on the candidates before it, so the first ``keep`` survivors among them are
  the answer wherever there are ``keep`` of them; rows left short (rare) and compiled code
  take the second way;
- every beam's ``k`` proposals, sorted by error, de-duplicated by a stable sort of their set
  keys. If fewer than ``keep`` sets survive (a width above the number of distinct sets), the
  remaining places go to repeated proposals with error ``+inf``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .beam_select import smallest, smallest_blocked


def survivors(
    d: Tensor, k: int, keep: int, keys: CandidateKeys
) -> tuple[Tensor, Tensor]:
    """Positions and errors of the ``keep`` candidates kept after one step.

    Args:
        d: ``(n, B, L)`` candidate errors (NaN-free, ``+inf`` allowed): ``L`` per beam, in the
            order of their pool rows.
        k: proposals per beam, ``1 <= k <= L``.
        keep: survivors kept, ``1 <= keep <= B k``.
        keys: the set keys of the candidates, equal exactly for candidates that reach the
            same set.

    Returns:
        ``(positions, errors)``, each ``(n, keep)``: flat positions ``b L + l`` and errors,
        in order of error (ties: lower position).

    Raises:
        ValueError: ``d`` is not 3-D.
    """
    if d.dim() != 3:
        raise ValueError(f"d must be 3-D (n, B, L), got shape {tuple(d.shape)}")
    n, beams, length = d.shape
    if keep == 1:  # the first candidate is proposed and new: the lowest, first of equals
        vals, pos = d.reshape(n, beams * length).min(dim=1, keepdim=True)
        return pos, vals
    if torch.compiler.is_compiling():
        return _by_proposals(d, k, keep, keys)
    span = min(beams * length, 2 * keep)
    vals, pos = smallest_blocked(d.reshape(n, beams * length), span)
    earlier = torch.ones(span, span, dtype=torch.bool, device=d.device).tril_(-1)  # [t, t' < t]
    beam = torch.div(pos, length, rounding_mode="floor")
    proposed = ((beam[:, :, None] == beam[:, None, :]) & earlier).sum(dim=2) < k
    key = keys(pos)
    repeats = (key[:, :, None] == key[:, None, :]) & earlier & proposed[:, None, :]
    alive = proposed & ~repeats.any(dim=2)
    count = alive.cumsum(dim=1)  # the j-th survivor sits where the count first reaches j
    wanted = torch.arange(1, keep + 1, device=d.device).expand(n, keep).contiguous()
    first = torch.searchsorted(count, wanted).clamp_max_(span - 1)
    pos, vals = pos.gather(1, first), vals.gather(1, first)
    short = count[:, -1] < keep
    if bool(short.any()):
        rows = short.nonzero(as_tuple=True)[0]
        pos[rows], vals[rows] = _by_proposals(d[rows], k, keep, keys.take(rows))
    return pos, vals


def _by_proposals(
    d: Tensor, k: int, keep: int, keys: CandidateKeys
) -> tuple[Tensor, Tensor]:
    """:func:`survivors` from all ``B k`` proposals (fixed shapes)."""
    n, beams, length = d.shape
    vals, loc = smallest_blocked(d.reshape(n * beams, length), k)
    offset = torch.arange(beams, device=d.device)[:, None] * length
    pos = (loc.view(n, beams, k) + offset).view(n, beams * k)  # proposal order
    vals, order = smallest(vals.reshape(n, beams * k), beams * k)  # stable: (error, proposal)
    pos = pos.gather(1, order)
    sk, by_key = torch.sort(keys(pos), dim=1, stable=True)  # equal keys in (error, proposal)
    repeat = torch.zeros_like(sk, dtype=torch.bool)
    repeat[:, 1:] = sk[:, 1:] == sk[:, :-1]
    repeat = torch.zeros_like(repeat).scatter(1, by_key, repeat)
    first = torch.sort(repeat.to(torch.uint8), dim=1, stable=True).indices[:, :keep]
    vals = vals.gather(1, first).masked_fill(repeat.gather(1, first), float("inf"))
    return pos.gather(1, first), vals


class CandidateKeys:
    """Set keys of candidates named by flat positions ``b J K + j K + k`` (beam ``b``, its
    unused slot ``j``, codeword ``k``): the beam's key plus ``(k + 1) w_m``, ``m`` the slot's
    codebook (int64 products and sums wrap modulo 2**64, as the keys of
    :func:`vqkit.functional.beam_free.set_keys`).

    Args:
        key: ``(n, B)`` keys of the beams' sets.
        unused: ``(n, B, J)`` the beams' unused codebooks, ascending.
        weights: ``(M,)`` int64 key weights of the codebooks.
        size: ``K``, the (padded) codebook size.
    """

    def __init__(self, key: Tensor, unused: Tensor, weights: Tensor, size: int) -> None:
        self.key, self.unused, self.weights, self.size = key, unused, weights, size

    def take(self, rows: Tensor) -> CandidateKeys:
        """The keys of the vectors ``rows`` only."""
        return CandidateKeys(self.key[rows], self.unused[rows], self.weights, self.size)

    def __call__(self, pos: Tensor) -> Tensor:
        """Keys ``(n, T)`` of the candidates at flat positions ``pos (n, T)``."""
        slots = self.unused.shape[2]
        beam = torch.div(pos, slots * self.size, rounding_mode="floor")
        rest = pos - beam * (slots * self.size)
        slot = torch.div(rest, self.size, rounding_mode="floor")
        book = self.unused.reshape(pos.shape[0], -1).gather(1, beam * slots + slot)
        return self.key.gather(1, beam) + self.weights[book] * (rest - slot * self.size + 1)


__all__ = ["CandidateKeys", "survivors"]
