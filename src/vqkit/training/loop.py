"""The training loop of ``vqkit fit`` (and of apps that train on a matrix of vectors).

:class:`Trainer` draws random batches from a tensor, runs forward / backward / Adam step,
optionally replaces dead codewords every ``replace_every`` steps, keeps :class:`Meters`, and
shows a tqdm bar with loss, MSE and usage. Its whole state (model, optimizer, step, random
generators, meters) goes into a :class:`~vqkit.training.checkpoint.Checkpoint`, so a run that
is stopped and resumed ends bit-identically to one that was not.

Under ``torch.distributed`` (launched by torchrun, set up by ``vqkit.training.ddp``) every rank
holds its shard of the data and draws its own batches; gradients are averaged over ranks
after backward (what DDP does, without wrapping the module, so quantizers whose codebooks
learn only by EMA need no special case), and the random states of all ranks are gathered
into the checkpoint, which only rank 0 writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from .. import distributed
from ..quantizers import Quantizer
from .checkpoint import Checkpoint
from .evaluate import index_histogram, usage_stats
from .meters import Meters
from .seed import generator, rng_state, set_rng_state

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    """Settings of a :class:`Trainer` run (all plain values; stored in checkpoints).

    Args:
        steps: total optimizer steps of the run (a resumed run continues up to it).
        batch: vectors per step and rank.
        lr: Adam learning rate.
        replace_every: replace dead codewords every this many steps (0 = never).
        replace_threshold: a codeword picked in fewer than this fraction of the batches
            since the last replacement is dead.
        log_every: steps per meter window (one history row, one progress-bar update).
        seed: seeds the batch order, the noise and the replacement draws.
    """

    steps: int = 1000
    batch: int = 1024
    lr: float = 1e-3
    replace_every: int = 0
    replace_threshold: float = 0.01
    log_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.replace_every < 0:
            raise ValueError(f"replace_every must be >= 0, got {self.replace_every}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconstruction_objective(quantizer: Quantizer, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Loss, per-vector squared error and indices of quantizing ``x`` in training mode.

    The loss is ``mean((quantized - x)^2) + out.loss``: with NSVQ the first term is exactly the
    quantization error and trains the codebook through the noise substitution; with STE-style
    estimators the forward value is the codeword and ``out.loss`` (codebook + commitment)
    trains it; EMA codebooks learn inside forward.
    """
    out = quantizer(x)
    err = (out.quantized.float() - x.float()).pow(2)
    return err.mean() + out.loss, err.detach().sum(dim=-1), out.indices


class Trainer:
    """Trains ``quantizer`` on the rows of ``data`` (see the module docstring).

    Args:
        quantizer: any vqkit quantizer.
        data: ``(N, D)`` vectors of this rank.
        config: :class:`LoopConfig`.
        objective: ``(quantizer, batch) -> (loss, per-vector squared error, indices)``.
        progress: show a tqdm bar (rank 0 only).

    Example:
        >>> from vqkit import VectorQuantizer
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> t = Trainer(VectorQuantizer(2, 4), torch.randn(256, 2),
        ...             LoopConfig(steps=20, batch=32, log_every=10), progress=False)
        >>> t.run()
        >>> t.step, len(t.meters.history)
        (20, 2)
    """

    def __init__(
        self,
        quantizer: Quantizer,
        data: Tensor,
        config: LoopConfig,
        *,
        objective: Callable[[Quantizer, Tensor], tuple[Tensor, Tensor, Tensor]] | None = None,
        progress: bool = True,
    ) -> None:
        if data.dim() != 2 or data.shape[0] < 1:
            raise ValueError(f"data must be a non-empty (N, D) tensor, got {tuple(data.shape)}")
        self.quantizer = quantizer
        self.data = data
        self.config = config
        self.objective = objective or reconstruction_objective
        self.progress = progress
        params = [p for p in quantizer.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=config.lr) if params else None
        self.step = 0
        self.meters = Meters()
        rank = distributed.rank()
        self.generators = {
            "batches": generator(config.seed, "batches", rank),
            # The same on every rank: replacement draws must agree across ranks.
            "maintenance": generator(config.seed, "maintenance"),
        }
        self.sizes = list(quantizer.codebook_sizes)
        self._window_counts = torch.zeros(len(self.sizes), max(self.sizes), dtype=torch.long)

    def reset_optimizer(self) -> None:
        """Start a fresh Adam and re-read the codebook sizes (after SFVQ growth, say)."""
        params = [p for p in self.quantizer.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.config.lr) if params else None
        self._resize_counts()

    def _resize_counts(self) -> None:
        self.sizes = list(self.quantizer.codebook_sizes)
        counts = torch.zeros(len(self.sizes), max(self.sizes), dtype=torch.long)
        old = self._window_counts
        rows, cols = min(old.shape[0], counts.shape[0]), min(old.shape[1], counts.shape[1])
        counts[:rows, :cols] = old[:rows, :cols]
        self._window_counts = counts

    # -- state ----------------------------------------------------------------------------------
    def checkpoint(self, **extra: Any) -> Checkpoint | None:
        """The run's state; a collective under DDP (call it on every rank), None off rank 0."""
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
        return Checkpoint(
            quantizer=self.quantizer,
            step=self.step,
            optimizer=None if self.optimizer is None else self.optimizer.state_dict(),
            rng=states,
            meters=meters,
            fit={**extra.pop("fit", {}), "loop": self.config.to_dict()},
            **extra,
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint`` (its quantizer state is copied into ``self.quantizer``)."""
        self.quantizer.load_state_dict(checkpoint.quantizer.state_dict())
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
        if rank != 0:
            self._window_counts.zero_()  # rank 0 holds the sum over ranks
        self._resize_counts()
        self.meters.load_state_dict(meters)
        self.step = checkpoint.step

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

    def train_step(self) -> None:
        """One batch: forward, backward, gradient averaging, optimizer step, maintenance."""
        cfg = self.config
        self.quantizer.train()
        rows = torch.randint(
            0, self.data.shape[0], (cfg.batch,), generator=self.generators["batches"]
        )
        device = next((t.device for t in self.quantizer.state_dict().values()), None)
        x = self.data[rows].to(device)
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        loss, sq_err, indices = self.objective(self.quantizer, x)
        if loss.requires_grad:
            loss.backward()
        self._average_gradients()
        if self.optimizer is not None:
            self.optimizer.step()
        self.step += 1
        stats = torch.tensor([float(loss.detach()), float(sq_err.sum()), sq_err.numel()],
                             dtype=torch.float64)
        distributed.all_reduce_(stats)
        world = distributed.world_size()
        self.meters.update({"loss": float(stats[0]) / world, "mse": float(stats[1] / stats[2])})
        self._window_counts += index_histogram(indices.detach(), self.sizes)
        if cfg.replace_every and self.step % cfg.replace_every == 0:
            self._replace_dead_codes()

    def _replace_dead_codes(self) -> None:
        n = self.quantizer.replace_dead_codes_(
            self.config.replace_threshold, generator=self.generators["maintenance"]
        )
        self.meters.update({"replaced": float(n)})
        logger.info("step %d: replaced %d dead codewords", self.step, n)

    def _close_window(self) -> dict[str, float]:
        counts = distributed.all_reduce_(self._window_counts.clone())
        self.meters.update(usage_stats(counts, self.sizes))
        self._window_counts.zero_()
        return self.meters.close_window(self.step)

    def run(self, until: int | None = None, *, on_window: Callable[[Trainer], None] | None = None
            ) -> None:
        """Train until step ``until`` (default ``config.steps``).

        ``on_window(trainer)`` is called after every closed meter window (on every rank), e.g.
        to write a checkpoint.
        """
        until = self.config.steps if until is None else int(until)
        bar = None
        if self.progress and distributed.rank() == 0 and until > self.step:
            from ..progress import progress_bar

            bar = progress_bar(total=until, initial=self.step, desc="fit", unit="step", leave=False)
        try:
            while self.step < until:
                self.train_step()
                if self.step % self.config.log_every == 0 or self.step == until:
                    row = self._close_window()
                    if bar is not None:
                        bar.set_postfix(
                            loss=f"{row['loss']:.4g}", mse=f"{row['mse']:.4g}",
                            usage=f"{row['usage']:.3f}",
                        )
                    if on_window is not None:
                        on_window(self)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
