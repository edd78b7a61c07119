"""Dead-code replacement: explicit, seeded, identical on every DDP rank.

A codeword picked in fewer than ``threshold`` of the training batches since the last call is
dead ([vali2022nsvqcode] counts batches, not samples). Dead codewords are overwritten by
used codewords plus a small jitter, in the codebook's code space (normalised or projected,
see :mod:`vqkit.parameterisations`; SimVQ refuses: its rows cannot move alone); which used
codewords is the rule:

- :class:`TileUsed` (NSVQ 2022-2024 code, [vali2022nsvqcode]): the used set, tiled and
  randomly permuted;
- :class:`UsageWeighted` (the 2026 ``nsvq``/``diveq`` packages, [vali2026nsvqcode],
  [vali2026diveqcode]): drawn with probability proportional to usage.

Under DDP the usage counts are summed over ranks before the decision, and the new codewords
are broadcast from rank 0, so every rank writes the same values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from . import distributed
from .registry import REPLACEMENT_RULES
from .strategy import Strategy

if TYPE_CHECKING:
    from .codebooks import Codebook

#: Absolute floor of the jitter's standard deviation (for all-zero source codewords).
JITTER_FLOOR = 1e-12


def draw_device(generator: torch.Generator | None) -> torch.device:
    """Where to draw from ``generator``: its own device (a CUDA generator cannot fill CPU
    tensors, nor a CPU one CUDA tensors), else the CPU's global generator. Draws are then
    moved to the codebook, so a CPU seed gives the same codewords on any device."""
    return generator.device if generator is not None else torch.device("cpu")


class ReplacementRule(Strategy):
    """Chooses which used codewords the dead ones are copied from."""

    registry = REPLACEMENT_RULES

    def sources(
        self, used: Tensor, usage: Tensor, count: int, generator: torch.Generator | None
    ) -> Tensor:
        """``count`` indices drawn from ``used``.

        Args:
            used: ``(U,)`` int64 indices of the used codewords (U >= 1).
            usage: ``(K,)`` batch counts of every codeword.
            count: how many sources to draw (the number of dead codewords).
            generator: random source (seed it identically on all ranks).

        Returns:
            ``(count,)`` int64 entries of ``used``.

        Raises:
            NotImplementedError: the base class; every rule overrides it.
        """
        raise NotImplementedError


@REPLACEMENT_RULES.register
class TileUsed(ReplacementRule):
    """The NSVQ paper's rule: tile the used set until it covers the dead ones, then permute."""

    def sources(self, used, usage, count, generator):
        reps = count // used.numel() + 1
        pool = used.repeat(reps)
        order = torch.randperm(pool.numel(), generator=generator, device=draw_device(generator))
        order = order.to(pool.device)
        return pool[order[:count]]


@REPLACEMENT_RULES.register
class UsageWeighted(ReplacementRule):
    """Draw sources with probability proportional to their usage (the 2026 packages)."""

    def sources(self, used, usage, count, generator):
        weights = usage[used].double().to(draw_device(generator))
        picks = torch.multinomial(weights, count, replacement=True, generator=generator)
        return used[picks.to(used.device)]


def jittered_copies(
    codewords: Tensor, sources: Tensor, jitter: float, generator: torch.Generator | None
) -> Tensor:
    """The replacement rows: ``codewords[sources]`` plus Gaussian noise of standard deviation
    ``jitter`` times each source row's RMS value, identical on every rank (rank 0's draw).

    Shape:
        codewords: ``(K, D)``; sources: ``(n,)`` int64; returns ``(n, D)`` fp32.
    """
    base = codewords[sources].float()
    scale = base.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(JITTER_FLOOR)
    noise = torch.randn(base.shape, generator=generator, device=draw_device(generator))
    noise = noise.to(base.device)
    return distributed.broadcast_(base + jitter * scale * noise)


def replace_dead_codes_(
    codebook: Codebook,
    threshold: float = 0.01,
    *,
    rule: ReplacementRule | None = None,
    jitter: float = 1e-4,
    generator: torch.Generator | None = None,
) -> int:
    """Overwrite the dead codewords of ``codebook`` and reset its usage counters.

    Args:
        codebook: the codebook to maintain (its ``usage`` and ``usage_batches`` counters).
        threshold: a codeword picked in fewer than this fraction of the batches is dead.
        rule: :class:`TileUsed` (default, the paper's) or :class:`UsageWeighted`.
        jitter: standard deviation of the added Gaussian noise, relative to the RMS value of
            the source codeword. The paper adds ``1e-12 N(0, 1)``, which is below fp32
            resolution for typical codewords, so copies stayed exact duplicates; a relative
            jitter splits a copy from its source.
        generator: random source; seed it identically on every rank.

    Returns:
        The number of codewords overwritten (all K, jittered in place, if none was used).

    Raises:
        ValueError: ``threshold`` is outside ``[0, 1]``, or the codebook's parameterisation
            cannot overwrite single codewords (SimVQ, whose rows are tied through ``W``).

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(dim=2, codebook_size=4)
        >>> rows = torch.tensor([[0., 0.], [1., 1.], [9., 9.], [8., 8.]])
        >>> with torch.no_grad():
        ...     _ = vq.codebook.codewords.copy_(rows)
        >>> _ = vq(torch.tensor([[0.1, 0.0], [1.0, 0.9]]))   # picks codewords 0 and 1 only
        >>> vq.replace_dead_codes_(0.5)
        2
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    codebook.parameterisation.check_rows_writable()
    rule = TileUsed() if rule is None else rule
    usage = distributed.all_reduce_(codebook.usage.clone())
    batches = int(distributed.all_reduce_(codebook.usage_batches.clone()))
    if batches == 0:
        return 0
    dead = usage.double() / batches < threshold
    n_dead = int(dead.sum())
    with torch.no_grad():
        if n_dead == codebook.codebook_size:
            rows = torch.arange(codebook.codebook_size, device=usage.device)
            sources = rows
        elif n_dead > 0:
            rows = dead.nonzero().flatten()
            sources = rule.sources((~dead).nonzero().flatten(), usage, n_dead, generator)
        if n_dead > 0:
            new = jittered_copies(codebook.effective_codewords(), sources, jitter, generator)
            codebook.overwrite_(rows, new)
    codebook.reset_usage_()
    return n_dead
