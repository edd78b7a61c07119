"""The one training loop of vqkit: :class:`Trainer` follows a :class:`Schedule`.

Every step: take the source's next batch, compute the objective, backward, average gradients
over ranks, clip their global norm (if the schedule says), optimizer step, step the
learning-rate schedule, update the meters, and replace dead codewords when the schedule says
(through a :class:`~vqkit.replacement.CodeReplacer`, the object a hand-written loop calls).
SFVQ growth doubles the corner points between stages and starts a fresh optimizer and lr
schedule. Progress goes to a callback
``progress(done, total, info)`` (:func:`vqkit.progress.bar_callback` draws a bar).

The whole state (model, optimizer, step, random generators, meters) goes into a
:class:`~vqkit.training.checkpoint.Checkpoint`, so a run that is stopped and resumed ends
bit-identically to one that was not; the lr schedule is rebuilt from the step.

Under ``torch.distributed`` (launched by torchrun, set up by ``vqkit.training.ddp``) every rank
draws its own batches from its shard; gradients are averaged over ranks after backward (what
DDP does, without wrapping the module, so quantizers whose codebooks learn only by EMA need no
special case), and the random states of all ranks are gathered into the checkpoint, which
only rank 0 writes.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..quantizers import Quantizer
from ..replacement import CodeReplacer
from ..space_filling import SpaceFillingVQ
from .batches import RandomRows
from .checkpoint import Checkpoint
from .evaluate import index_histogram, usage_stats
from .meters import Meters
from .objective import Objective, StepResult, reconstruction_objective
from .schedule import Schedule
from .seed import generator, rng_state, set_rng_state

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, dict[str, Any]], None]
OptimizerFactory = Callable[[nn.Module, float], "torch.optim.Optimizer | None"]


class TrainingDiverged(ValueError):
    """The loss or the quantizer's state became NaN or infinite; the message names the step."""


def adam(model: nn.Module, lr: float) -> torch.optim.Optimizer | None:
    """Adam over ``model``'s trainable parameters (None if it has none, e.g. EMA codebooks)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr) if params else None


class Trainer:
    """Trains ``model`` on the batches of ``source`` as ``schedule`` says.

    Args:
        model: the module whose parameters are trained (a quantizer, or a model holding one).
        source: a batch source of :mod:`vqkit.training.batches`.
        schedule: :class:`~vqkit.training.schedule.Schedule`.
        objective: ``(model, batch) -> StepResult`` (default: the reconstruction error of a
            quantizer, :func:`~vqkit.training.objective.reconstruction_objective`).
        quantizer: the quantizer inside ``model`` that replacement, growth and the usage
            meters act on (default: ``model`` itself if it is a quantizer, else none).
        optimizer: ``(model, lr) -> optimizer`` (default :func:`adam`), called again at every
            growth stage.
        maintenance: the generator of dead-code replacement (required when it is scheduled).
        progress: ``progress(done, total, info)`` after every step; ``info`` holds the window's
            means when a meter window closed, else nothing.

    Attributes:
        step: optimizer steps done.
        meters: :class:`~vqkit.training.meters.Meters`, one history row per window.
        replacements: ``(step, count)`` of every dead-code replacement (kept in checkpoints).
        replacer: the :class:`~vqkit.replacement.CodeReplacer` that replaces dead codewords
            as ``schedule.replacement`` says (with the ``maintenance`` generator), or None.

    Raises:
        ValueError: replacement without a quantizer or ``maintenance`` generator, growth of a
            quantizer that is not a :class:`~vqkit.SpaceFillingVQ`, or an lr schedule per
            epoch on a source without epochs.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> from vqkit.training.batches import RandomRows
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> src = RandomRows(torch.randn(256, 2), 32, torch.Generator().manual_seed(0))
        >>> t = Trainer(VectorQuantizer(2, 4), src, Schedule(steps=20, log_every=10))
        >>> t.run()
        >>> t.step, len(t.meters.history)
        (20, 2)
    """

    def __init__(
        self,
        model: nn.Module,
        source: Any,
        schedule: Schedule,
        *,
        objective: Objective | None = None,
        quantizer: Quantizer | None = None,
        optimizer: OptimizerFactory = adam,
        maintenance: torch.Generator | None = None,
        progress: Progress | None = None,
    ) -> None:
        if quantizer is None and isinstance(model, Quantizer):
            quantizer = model
        if schedule.replacement.every and (quantizer is None or maintenance is None):
            raise ValueError("dead-code replacement needs a quantizer and a maintenance generator")
        if schedule.growth is not None and not isinstance(quantizer, SpaceFillingVQ):
            raise ValueError(f"growth needs a SpaceFillingVQ, got {type(quantizer).__name__}")
        if schedule.lr_schedule.per == "epoch" and source.epoch_length is None:
            raise ValueError(f"an lr schedule per epoch needs a source with epochs, got "
                             f"{type(source).__name__}")
        self.model, self.quantizer, self.source, self.schedule = model, quantizer, source, schedule
        self.objective = objective or reconstruction_objective
        self.make_optimizer, self.progress = optimizer, progress
        self.generators = dict(source.generators)
        if maintenance is not None:
            # The same on every rank: replacement draws must agree across ranks.
            self.generators["maintenance"] = maintenance
        self.maintenance = maintenance
        #: The dead-code replacement (the same object a hand-written loop uses), or None.
        self.replacer = None
        if schedule.replacement.every:
            r = schedule.replacement
            self.replacer = CodeReplacer(quantizer, r.every, until=r.until,
                                         threshold=r.threshold, generator=maintenance)
        self.step = 0
        self.meters = Meters()
        #: ``(step, count)`` of every dead-code replacement of the run.
        self.replacements: list[tuple[int, int]] = []
        self.sizes: list[int] = []
        self._window_counts = torch.zeros(0, 0, dtype=torch.long)
        self._resize_counts()
        self._start_stage()

    # -- stages ---------------------------------------------------------------------------------
    def _start_stage(self) -> None:
        """A fresh optimizer and lr scheduler for the stage that the next step belongs to."""
        self.optimizer = self.make_optimizer(self.model, self.schedule.lr)
        start, end = self.schedule.stage_of(self.step + 1)
        length = end - start
        if self.schedule.lr_schedule.per == "epoch":
            length = -(-length // self.source.epoch_length)
        self.lr_scheduler = (None if self.optimizer is None
                             else self.schedule.lr_schedule.build(self.optimizer, length))

    def _step_lr(self) -> None:
        if self.lr_scheduler is None:
            return
        start, _ = self.schedule.stage_of(self.step)
        if self.schedule.lr_schedule.per == "step" or \
                (self.step - start) % self.source.epoch_length == 0:
            self.lr_scheduler.step()

    def _grow(self) -> None:
        self.quantizer.expand_()
        self._resize_counts()
        self._start_stage()  # the optimizer's moments belong to the old corner points
        logger.info("step %d: grew to %d corner points", self.step, self.quantizer.codebook_size)

    def _resize_counts(self) -> None:
        if self.quantizer is None:
            return
        self.sizes = list(self.quantizer.codebook_sizes)
        counts = torch.zeros(len(self.sizes), max(self.sizes), dtype=torch.long)
        old = self._window_counts
        rows, cols = min(old.shape[0], counts.shape[0]), min(old.shape[1], counts.shape[1])
        counts[:rows, :cols] = old[:rows, :cols]
        self._window_counts = counts

    # -- state ----------------------------------------------------------------------------------
    def checkpoint(self, **extra: Any) -> Checkpoint | None:
        """The run's state; a collective under DDP (call it on every rank), None off rank 0.

        ``extra``: further :class:`Checkpoint` fields (``fit`` settings, ``data`` fingerprint).
        """
        state = rng_state(self.generators)
        states = [state]
        # The window's index counts are per rank: save their sum (rank 0 resumes with it).
        counts = distributed.all_reduce_(self._window_counts.clone())
        if distributed.is_distributed():
            import torch.distributed as dist

            states = [None] * distributed.world_size()
            dist.all_gather_object(states, state)
        if distributed.rank() != 0:
            return None
        meters = self.meters.state_dict()
        meters["window_counts"] = counts
        meters["replacements"] = list(self.replacements)
        # A model that is more than its quantizer is saved whole (its architecture is the
        # caller's code, so only its state).
        model = None if self.model is self.quantizer else self.model.state_dict()
        return Checkpoint(
            quantizer=self.quantizer, model=model, step=self.step,
            optimizer=None if self.optimizer is None else self.optimizer.state_dict(),
            rng=states, meters=meters, **extra,
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint``: its model state (or, for a model that is the
        quantizer, its quantizer's) is copied into ``self.model``.

        Raises:
            ValueError: the checkpoint holds the quantizer only but this Trainer's model is
                more than that, or its optimizer or number of processes does not match.
        """
        if checkpoint.model is not None:
            self.model.load_state_dict(checkpoint.model)
        elif self.model is self.quantizer:
            self.quantizer.load_state_dict(checkpoint.quantizer.state_dict())
        else:
            raise ValueError("the checkpoint holds a quantizer only; this run trains a model "
                             "around it (resume it from a checkpoint of that model)")
        self.step = checkpoint.step
        if self.replacer is not None:  # (its generator is among self.generators, set below)
            self.replacer.steps = checkpoint.step
        self._start_stage_at(checkpoint.step)
        if (self.optimizer is None) != (checkpoint.optimizer is None):
            raise ValueError("the checkpoint's optimizer state does not match this quantizer")
        if self.optimizer is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer)
        world, rank = distributed.world_size(), distributed.rank()
        if len(checkpoint.rng) != world:
            raise ValueError(
                f"the checkpoint was written by {len(checkpoint.rng)} process(es); resume it "
                f"with the same number, got {world}"
            )
        set_rng_state(checkpoint.rng[rank], self.generators)
        meters = dict(checkpoint.meters)
        self._window_counts = meters.pop("window_counts").clone()
        self.replacements = [(int(s), int(n)) for s, n in meters.pop("replacements", [])]
        if rank != 0:
            self._window_counts.zero_()  # rank 0 holds the sum over ranks
        self._resize_counts()
        self.meters.load_state_dict(meters)

    def _start_stage_at(self, step: int) -> None:
        """Rebuild the optimizer and lr scheduler of the stage holding ``step``, the scheduler
        stepped as often as the run had stepped it (its state is a function of the step)."""
        start, _ = self.schedule.stage_of(step)
        self.step = start
        self._start_stage()
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore", UserWarning)
            for self.step in range(start + 1, step + 1):
                self._step_lr()
        self.step = step

    # -- training -------------------------------------------------------------------------------
    def _average_gradients(self) -> None:
        if self.optimizer is None or not distributed.is_distributed():
            return
        world = distributed.world_size()
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                distributed.all_reduce_(p.grad).div_(world)

    def train_step(self) -> StepResult:
        """One batch: forward, backward, gradient averaging, optimizer and lr step, meters,
        dead-code replacement when due. Returns the objective's result.

        Raises:
            TrainingDiverged: the loss or the quantizer's state became NaN or infinite (a
                ``ValueError`` naming the step).
        """
        self.model.train()
        batch = self.source.batch(self.step)
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        result = self.objective(self.model, batch)
        if result.loss.requires_grad:
            result.loss.backward()
        self._average_gradients()
        if self.optimizer is not None:
            if self.schedule.max_grad_norm is not None:
                params = [p for group in self.optimizer.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, self.schedule.max_grad_norm)
            self.optimizer.step()
        self.step += 1
        self._step_lr()
        self._record(result)
        replaced = None if self.replacer is None else self.replacer.step()
        if replaced is not None:
            self._log_replacement(replaced)
        return result

    def _record(self, result: StepResult) -> None:
        metrics = dict(result.metrics or {})
        values = [float(result.loss.detach()), *map(float, metrics.values())]
        if result.sq_err is not None:
            values += [float(result.sq_err.sum()), result.sq_err.numel()]
        stats = distributed.all_reduce_(torch.tensor(values, dtype=torch.float64))
        self._check_finite(stats)
        world = distributed.world_size()
        means = {"loss": float(stats[0]) / world}
        means.update({k: float(stats[1 + i]) / world for i, k in enumerate(metrics)})
        if result.sq_err is not None:
            means["mse"] = float(stats[-2] / stats[-1])
        self.meters.update(means)
        if result.indices is not None and self.quantizer is not None:
            self._window_counts += index_histogram(result.indices.detach(), self.sizes)

    def _check_finite(self, stats: torch.Tensor) -> None:
        """Stop when the loss (summed over ranks: every rank stops together) or the
        quantizer's state became NaN or infinite."""
        if not bool(torch.isfinite(stats[0])):
            raise TrainingDiverged(f"training diverged at step {self.step}: the loss is "
                                   f"{float(stats[0])} (try a lower learning rate)")
        if self.quantizer is None:
            return
        states = [(name, value) for name, value in self.quantizer.state_dict().items()
                  if value.is_floating_point() and value.numel()]
        # One float64 sum per tensor and one host sync per step: a finite sum proves every
        # element finite; only otherwise is each tensor searched, to name the one at fault.
        sums = [value.detach().sum(dtype=torch.float64) for _, value in states]
        if not sums or bool(torch.isfinite(torch.stack(sums)).all()):
            return
        for name, value in states:
            if not bool(torch.isfinite(value).all()):
                raise TrainingDiverged(f"training diverged at step {self.step}: the quantizer's "
                                       f"{name} became NaN or infinite (try a lower learning "
                                       "rate)")

    def _log_replacement(self, n: int) -> None:
        self.replacements.append((self.step, int(n)))
        self.meters.update({"replaced": float(n)})
        logger.info("step %d: replaced %d dead codewords", self.step, n)

    def _close_window(self) -> dict[str, float]:
        counts = distributed.all_reduce_(self._window_counts.clone())
        if bool(counts.any()):
            self.meters.update(usage_stats(counts, self.sizes))
        self._window_counts.zero_()
        return self.meters.close_window(self.step)

    def run(
        self,
        until: int | None = None,
        *,
        on_window: Callable[[Trainer], None] | None = None,
        on_step: Callable[[Trainer, StepResult], None] | None = None,
        on_stage_end: Callable[[Trainer], None] | None = None,
    ) -> None:
        """Train until step ``until`` (default ``schedule.steps``).

        Callbacks (on every rank): ``on_window(trainer)`` after every closed meter window (to
        write a checkpoint, say); ``on_step(trainer, result)`` after every step;
        ``on_stage_end(trainer)`` at the last step of every growth stage (and of the run).
        """
        until = self.schedule.steps if until is None else int(until)
        boundaries = self.schedule.boundaries()
        while self.step < until:
            if self.step in boundaries:
                self._grow()
            result = self.train_step()
            info: dict[str, Any] = {}
            if self.schedule.closes_window(self.step) or self.step == until:
                info = {k: v for k, v in self._close_window().items() if k != "step"}
                if on_window is not None:
                    on_window(self)
            if on_step is not None:
                on_step(self, result)
            if self.progress is not None and distributed.rank() == 0:
                self.progress(self.step, until, info)
            if on_stage_end is not None and (self.step in boundaries
                                             or self.step == self.schedule.steps):
                on_stage_end(self)


def rows_trainer(
    quantizer: Quantizer,
    data: torch.Tensor,
    schedule: Schedule,
    *,
    batch: int,
    seed: int,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> Trainer:
    """A :class:`Trainer` of ``quantizer`` on random rows of ``data`` (this rank's ``(N, D)``
    vectors), the loop of ``vqkit fit`` and the tour; the batches go to ``device`` (default:
    the quantizer's).

    The rows are drawn by ``generator(seed, "batches", rank)`` (each rank its own), the
    replacements by ``generator(seed, "maintenance")`` (the same on every rank), both from
    :mod:`vqkit.training.seed`.

    Raises:
        ValueError: ``data`` is not a non-empty ``(N, D)`` tensor.
    """
    if data.dim() != 2 or data.shape[0] < 1:
        raise ValueError(f"data must be a non-empty (N, D) tensor, got {tuple(data.shape)}")
    if device is None:  # the quantizer's
        device = next((t.device for t in quantizer.state_dict().values()), None)
    rows = RandomRows(data, batch, generator(seed, "batches", distributed.rank()), device)
    return Trainer(quantizer, rows, schedule, maintenance=generator(seed, "maintenance"),
                   progress=progress)
