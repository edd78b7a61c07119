"""Dead-code replacement on a schedule: one call per training step.

:meth:`~vqkit.quantizers.base.Quantizer.replace_dead_codes_` (:mod:`vqkit.maintenance`)
overwrites the codewords that few batches picked since its last call. *When* to call it is a
:class:`Replacement` (every ``every`` steps, up to step ``until``), and a :class:`CodeReplacer`
holds one quantizer, that schedule, the rule and the generator, and counts the steps, so a
training loop of one's own needs one line after its optimizer step::

    replacer = CodeReplacer(vq, every=100)
    for x in batches:
        ...; optimizer.step()
        replacer.step()           # replaces at steps 100, 200, ...; returns how many, or None

vqkit's own loop, :class:`vqkit.training.loop.Trainer`, replaces through a ``CodeReplacer``
too, so both give the same codebooks on the same batches. Its whole state (the step count
and the generator) is explicit: :meth:`CodeReplacer.state_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .maintenance import ReplacementRule
from .quantizers.base import Quantizer


@dataclass(frozen=True)
class Replacement:
    """Dead-code replacement at every multiple of ``every`` up to step ``until``.

    Steps count from 1: step ``s`` is the ``s``-th optimizer step, and replacement "at step
    ``s``" happens right after it.

    Args:
        every: steps between replacements; 0 = never.
        until: the last step that may replace (None: to the end of the run).
        threshold: a codeword picked in fewer than this fraction of the batches since the last
            replacement is dead.

    Raises:
        ValueError: ``every < 0``, ``until < 0`` or a threshold outside ``[0, 1]``.

    Example:
        >>> r = Replacement(every=100, until=250)
        >>> [s for s in range(1, 401) if r.due(s)]
        [100, 200]
    """

    every: int = 0
    until: int | None = None
    threshold: float = 0.01

    def __post_init__(self) -> None:
        if int(self.every) < 0:
            raise ValueError(f"replacement every must be >= 0, got {self.every}")
        if self.until is not None and int(self.until) < 0:
            raise ValueError(f"replacement until must be >= 0 or None, got {self.until}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"replacement threshold must be in [0, 1], got {self.threshold}")

    def due(self, step: int) -> bool:
        """Whether dead codewords are replaced right after step ``step``."""
        return bool(self.every) and step % self.every == 0 and (
            self.until is None or step <= self.until
        )


class CodeReplacer:
    """Replace ``quantizer``'s dead codewords at the steps a :class:`Replacement` names.

    Call :meth:`step` once after every optimizer step, on every rank under DDP (a replacement
    is a collective: usage summed over ranks, new codewords broadcast from rank 0).

    Args:
        quantizer: the quantizer to maintain (any; one without usage counters replaces
            nothing).
        every: steps between replacements (0 = never).
        until: the last step that may replace (None: no end).
        threshold: a codeword picked in fewer than this fraction of the batches since the
            last replacement is dead.
        rule: a :class:`~vqkit.maintenance.ReplacementRule` (None: ``TileUsed()``).
        generator: random source of the replacements, the same seed on every rank; None: a
            CPU generator seeded with 0 (:attr:`generator`).

    Attributes:
        steps: optimizer steps counted so far (the last :meth:`step` call's step number).
        schedule: the :class:`Replacement`.

    Raises:
        TypeError: ``quantizer`` is not a :class:`~vqkit.quantizers.base.Quantizer`.
        ValueError: ``every`` or ``until`` is negative, or ``threshold`` is outside [0, 1].

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(dim=2, codebook_size=4)
        >>> with torch.no_grad():
        ...     _ = vq.codebook.codewords.copy_(torch.tensor([[0., 0.], [1., 1.], [9., 9.],
        ...                                                   [8., 8.]]))
        >>> replacer = CodeReplacer(vq, every=2)
        >>> x = torch.tensor([[0.3, 0.0], [0.2, 0.1]])      # picks codeword 0 only
        >>> [replacer.step() for _ in (vq(x), vq(x), vq(x))]  # (after each optimizer step)
        [None, 3, None]
    """

    def __init__(
        self,
        quantizer: Quantizer,
        every: int,
        *,
        until: int | None = None,
        threshold: float = 0.01,
        rule: ReplacementRule | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(quantizer, Quantizer):
            raise TypeError(f"quantizer must be a Quantizer, got {type(quantizer).__name__}")
        self.quantizer = quantizer
        self.schedule = Replacement(every, until, threshold)
        self.rule = rule
        self.generator = torch.Generator().manual_seed(0) if generator is None else generator
        self.steps = 0

    def step(self) -> int | None:
        """Count one optimizer step; replace dead codewords if the schedule says so.

        Returns:
            The number of codewords overwritten at a replacement step, else None.

        Raises:
            ValueError: as :meth:`~vqkit.quantizers.base.Quantizer.replace_dead_codes_`
                (a parameterisation that cannot overwrite single codewords: SimVQ).
        """
        self.steps += 1
        if not self.schedule.due(self.steps):
            return None
        return self.quantizer.replace_dead_codes_(
            self.schedule.threshold, rule=self.rule, generator=self.generator
        )

    def state_dict(self) -> dict[str, Any]:
        """``{"steps": int, "generator": ByteTensor}``: what a resumed run needs."""
        return {"steps": self.steps, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output.

        Raises:
            ValueError: ``state["steps"]`` is not an int >= 0.
        """
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {steps!r}")
        self.steps = steps
        self.generator.set_state(state["generator"])
