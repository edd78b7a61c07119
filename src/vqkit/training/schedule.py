"""The schedule of a training run: steps, learning rate, dead-code replacement, SFVQ growth.

A :class:`Schedule` is a plain description (frozen dataclasses, no tensors); the one loop,
:class:`vqkit.training.loop.Trainer`, follows it. Steps are counted from 1: "step ``s``" is the
``s``-th optimizer step of the run, and "at step ``s``" means right after it.

- The learning rate is a strategy: :class:`Constant`, :class:`MultiStep` or :class:`Cosine`,
  each building torch's own scheduler and stepping it after every step or every epoch.
- :class:`~vqkit.replacement.Replacement` (defined in the core, with the
  :class:`~vqkit.replacement.CodeReplacer` that the loop replaces through): replace dead
  codewords at every multiple of ``every`` up to and including step ``until`` (the one stop
  rule of every loop).
- ``max_grad_norm``: clip the global gradient norm (over every trainable parameter, after
  the gradients are averaged over ranks) to this value before each optimizer step, as
  ``torch.nn.utils.clip_grad_norm_`` does; None (the default) leaves gradients as they are.
- :class:`Growth`: double a space-filling VQ's corner points at steps ``every, 2 every, ...``
  (``stages`` times); each stage starts with a fresh optimizer and learning-rate schedule
  ([vali2023sfvqcode] ``train.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..replacement import Replacement

PER = ("step", "epoch")
#: The largest learning rate accepted: far above any useful one, below Adam's float32 overflow.
MAX_LR = 1e30


def _check_per(per: str) -> None:
    if per not in PER:
        raise ValueError(f"per must be one of {PER}, got {per!r}")


@dataclass(frozen=True)
class Constant:
    """The learning rate stays at ``Schedule.lr``."""

    per: str = "step"

    def build(self, optimizer: torch.optim.Optimizer, length: int) -> None:
        """No scheduler: nothing to step."""
        return None


@dataclass(frozen=True)
class MultiStep:
    """``lr * gamma**k`` after the k-th milestone (torch's ``MultiStepLR``).

    Args:
        milestones: steps (or epochs, with ``per="epoch"``) of a stage, counted from its start.
        gamma: the factor at each milestone.
        per: ``"step"`` or ``"epoch"``: what the milestones count.

    Raises:
        ValueError: negative milestones, ``gamma <= 0`` or an unknown ``per``.
    """

    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    per: str = "step"

    def __post_init__(self) -> None:
        _check_per(self.per)
        if any(int(m) < 0 for m in self.milestones):
            raise ValueError(f"milestones must be >= 0, got {self.milestones}")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")

    def build(self, optimizer: torch.optim.Optimizer, length: int) -> Any:
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(self.milestones), gamma=self.gamma
        )


@dataclass(frozen=True)
class Cosine:
    """Cosine decay from ``lr`` to 0 over each stage (torch's ``CosineAnnealingLR`` with
    ``T_max`` = the stage's length in steps, or in epochs with ``per="epoch"``).

    Raises:
        ValueError: ``per`` is not ``"step"`` or ``"epoch"``.
    """

    per: str = "step"

    def __post_init__(self) -> None:
        _check_per(self.per)

    def build(self, optimizer: torch.optim.Optimizer, length: int) -> Any:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, length))


LearningRate = Constant | MultiStep | Cosine


@dataclass(frozen=True)
class Growth:
    """SFVQ growth: double the corner points after steps ``every, 2 every, ..., stages every``
    (those before the end of the run), each time with a fresh optimizer and lr schedule.

    Raises:
        ValueError: ``every < 1`` or ``stages < 0``.

    Example:
        >>> Growth(every=10, stages=2).boundaries(25)
        (10, 20)
    """

    every: int
    stages: int

    def __post_init__(self) -> None:
        if int(self.every) < 1 or int(self.stages) < 0:
            raise ValueError(f"growth needs every >= 1 and stages >= 0, got {self}")

    def boundaries(self, steps: int) -> tuple[int, ...]:
        """The steps after which the quantizer grows in a run of ``steps`` steps."""
        return tuple(b for b in range(self.every, self.every * self.stages + 1, self.every)
                     if b < steps)


@dataclass(frozen=True)
class Schedule:
    """What a :class:`~vqkit.training.loop.Trainer` run does when (see the module docstring).

    Args:
        steps: total optimizer steps (a resumed run continues up to it).
        lr: the optimizer's learning rate at the start of every stage.
        lr_schedule: :class:`Constant`, :class:`MultiStep` or :class:`Cosine`.
        replacement: :class:`Replacement` (default: never).
        growth: :class:`Growth`, or None (one stage).
        log_every: steps per meter window (one history row, one progress report with means).
        max_grad_norm: clip the global gradient norm to this before every optimizer step
            (None: no clipping).

    Raises:
        ValueError: ``steps`` or ``log_every`` below 1, ``lr <= 0``, ``max_grad_norm`` not a
            finite number > 0.

    Example:
        >>> s = Schedule(steps=30, growth=Growth(every=10, stages=5))
        >>> s.stages(), s.stage_of(10), s.stage_of(11)
        ([(0, 10), (10, 20), (20, 30)], (0, 10), (10, 20))
    """

    steps: int
    lr: float = 1e-3  # in (0, MAX_LR]
    lr_schedule: LearningRate = field(default_factory=Constant)
    replacement: Replacement = field(default_factory=Replacement)
    growth: Growth | None = None
    log_every: int = 50
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        if self.max_grad_norm is not None and not (
                isinstance(self.max_grad_norm, (int, float)) and not isinstance(
                    self.max_grad_norm, bool) and math.isfinite(self.max_grad_norm)
                and self.max_grad_norm > 0):
            raise ValueError(f"max_grad_norm must be a finite number > 0 or None, got "
                             f"{self.max_grad_norm!r}")
        for name, value in (("steps", self.steps), ("log_every", self.log_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                and 0 < self.lr <= MAX_LR):
            raise ValueError(f"lr must be a finite number > 0 and at most {MAX_LR:g} (Adam "
                             f"overflows float32 above), got {self.lr!r}")

    def boundaries(self) -> tuple[int, ...]:
        """The steps after which the quantizer grows (empty without growth)."""
        return () if self.growth is None else self.growth.boundaries(self.steps)

    def stages(self) -> list[tuple[int, int]]:
        """``(first step - 1, last step)`` of every stage."""
        edges = [0, *self.boundaries(), self.steps]
        return list(zip(edges[:-1], edges[1:], strict=True))

    def stage_of(self, step: int) -> tuple[int, int]:
        """The stage that step ``step`` belongs to (step 0: the first)."""
        for start, end in self.stages():
            if step <= end:
                return start, end
        return self.stages()[-1]

    def closes_window(self, step: int) -> bool:
        """Whether a meter window closes at ``step``: every ``log_every`` steps, and at every
        multiple of the growth period (windows do not straddle a growth step, where the
        usage counts change size).

        Example:
            >>> s = Schedule(steps=100, log_every=4, growth=Growth(every=6, stages=1))
            >>> [t for t in range(1, 19) if s.closes_window(t)]
            [4, 6, 8, 12, 16, 18]
        """
        every = self.growth.every if self.growth is not None else 0
        return step % self.log_every == 0 or bool(every and step % every == 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, with the learning-rate strategy named."""
        d = asdict(self)
        d["lr_schedule"] = {"name": type(self.lr_schedule).__name__, **d["lr_schedule"]}
        return d
