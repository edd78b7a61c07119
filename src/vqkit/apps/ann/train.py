"""Training of the ANN quantizers: k-means initialisation, then NSVQ ([vali2023rpavq]).

The initialisation (:func:`initialise_`) is residual k-means as FAISS trains its
``ResidualQuantizer`` ([douze2024faiss]): 10 Lloyd iterations on at most 256 K sampled
vectors per codebook, optionally with the training vectors re-encoded by a beam between
codebooks. Product VQ runs k-means per sub-space.

NSVQ on the quantizer alone, through :class:`vqkit.training.loop.Trainer` (random batches of
the training split, cosine-decayed lr, replacement until ``2 * replace_every`` steps before
the end as in [vali2023rpavqcode]): the output is ``x + ||x - x_hat|| v/||v||`` and the loss is
``||output - x||^2 = ||x - x_hat||^2``, so Adam moves every selected codeword of every codebook
jointly along the gradient of the reconstruction error (the thesis's "one substitution on the
composite vector"). The ablation stops after the k-means initialisation (``steps = 0``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...estimators import NoiseSubstitution
from ...progress import bar_callback
from ...quantizers.build import build_quantizer
from ...quantizers.composite import MultiCodebookQuantizer
from ...quantizers.encoders import BeamSearch
from ...registry import BEAM_FITS
from ...training.batches import RandomRows
from ...training.loop import Trainer
from ...training.objective import StepResult, summed_error_objective
from ...training.schedule import Cosine, Replacement
from ...training.schedule import Schedule as TrainSchedule
from .config import Init, Schedule

KINDS = ("pq", "rvq", "avq")


def build(
    kind: str,
    dim: int,
    codebook_size: int,
    num_codebooks: int,
    *,
    width: int = 1,
    generator: torch.Generator | None = None,
) -> MultiCodebookQuantizer:
    """A ProductVQ (``"pq"``), greedy ResidualVQ (``"rvq"``) or AdditiveVQ (``"avq"``) with NSVQ.

    Args:
        kind: one of :data:`KINDS`.
        dim, codebook_size, num_codebooks: D, K, M.
        width: AdditiveVQ's beam width (1 = greedy with free codebook order).
        generator: the NSVQ noise source.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS` (or the sizes are invalid, as the
            quantizer's constructor says).

    Example:
        >>> build("avq", 8, 16, 2, width=4).encoder
        BeamSearch(width=4)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    options = {"encoder": BeamSearch(width)} if kind == "avq" else {}  # RVQ: Greedy()
    return build_quantizer(kind, dim, codebook_size, num_codebooks,
                           estimator=NoiseSubstitution(generator=generator), **options)


def initialise_(quantizer: MultiCodebookQuantizer, data: Tensor, init: Init, *, beam: int,
                generator: torch.Generator) -> None:
    """k-means-initialise ``quantizer`` on ``data`` with ``init``'s iterations, sample size,
    seeding and dimension steps; sum-type quantizers re-encode ``data`` with a beam of width
    ``beam`` between codebooks (1 = greedy) and fit each codebook to the residuals of the
    tuples ``init.beam_fit`` picks (see :meth:`MultiCodebookQuantizer.init_codebook_`).

    Raises:
        ValueError: ``data`` is not ``(N, quantizer.dim)`` with N >= K, or ``beam < 1``.

    Example:
        >>> q = build("rvq", 4, 8, 2)
        >>> initialise_(q, torch.randn(200, 4), Init(beam=2, seeding="random"), beam=2,
        ...             generator=torch.Generator().manual_seed(0))
        >>> q.training
        False
    """
    if data.dim() != 2 or data.shape[1] != quantizer.dim:
        raise ValueError(f"data must be (N, {quantizer.dim}), got {tuple(data.shape)}")
    quantizer.init_codebook_(data, generator=generator, iters=init.iters, beam=beam,
                             fit_to=BEAM_FITS.lookup(init.beam_fit)(), seeding=init.seeding,
                             max_points_per_centroid=init.max_points_per_centroid,
                             dim_steps=init.dim_steps)
    quantizer.eval()


def train_nsvq_(
    quantizer: MultiCodebookQuantizer,
    data: Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator,
    init: bool = True,
    progress: bool = True,
) -> list[float]:
    """k-means-initialise ``quantizer`` on ``data``, then train it by NSVQ for ``schedule.steps``.

    Args:
        quantizer: a multi-codebook quantizer whose estimator is NSVQ.
        data: ``(N, D)`` training vectors.
        schedule: steps, batch size, learning rate, dead-code replacement.
        generator: draws the k-means seeds, the batches and the replacements.
        init: run the k-means initialisation first (False: continue from the codebooks as
            they are).
        progress: show a tqdm bar.

    Returns:
        The training loss (mean ``||x - x_hat||^2`` of the batch) every 10 steps.

    Raises:
        ValueError: ``data`` is not ``(N, quantizer.dim)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> q = build("rvq", 4, 8, 2, generator=g)
        >>> x = torch.randn(256, 4, generator=g)
        >>> losses = train_nsvq_(q, x, Schedule(steps=20, batch_size=64), generator=g,
        ...                      progress=False)
        >>> len(losses)
        2
    """
    if data.dim() != 2 or data.shape[1] != quantizer.dim:
        raise ValueError(f"data must be (N, {quantizer.dim}), got {tuple(data.shape)}")
    if init:
        quantizer.init_codebook_(data, generator=generator)
    history: list[float] = []
    if schedule.steps == 0:
        quantizer.eval()
        return history

    def record(trainer: Trainer, result: StepResult) -> None:
        if trainer.step % 10 == 0:
            history.append(float(result.loss.detach()))

    last = max(0, schedule.steps - 2 * schedule.replace_every)
    replacement = Replacement(schedule.replace_every, last, schedule.threshold)
    plan = TrainSchedule(steps=schedule.steps, lr=schedule.lr, lr_schedule=Cosine(),
                         replacement=replacement, log_every=10)
    trainer = Trainer(quantizer, RandomRows(data, schedule.batch_size, generator), plan,
                      objective=summed_error_objective, maintenance=generator,
                      progress=bar_callback(type(quantizer).__name__, enabled=progress,
                                            unit="step"))
    trainer.run(on_step=record)
    quantizer.eval()
    return history
