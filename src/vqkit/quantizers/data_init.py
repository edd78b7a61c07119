"""Lazy data initialisation: a quantizer fits its codebooks to its first training batch.

Codeword quantizers start from random codewords (``init="uniform"``: U(-1/K, 1/K)); the
recommended start is k-means on data, :meth:`~vqkit.quantizers.base.Quantizer.init_codebook_`.
That is an explicit call a training loop has to remember. A quantizer built with
``data_init=DataInit()`` makes the same call itself: its first forward in training mode runs
``init_codebook_`` on that batch's vectors before quantizing them, once (as
vector-quantize-pytorch's ``kmeans_init=True`` does [lucidrains2026vqpytorch]).

The side effect stays explicit:

- it is a constructor argument, stored in the quantizer's config (``vqkit.save`` keeps it);
- whether it has run is the bool buffer ``initialised`` of the quantizer's ``state_dict``, so
  a loaded or resumed quantizer never initialises again; a ``state_dict`` without that entry
  (one written by a quantizer built without ``data_init``, or by an older vqkit) loads as
  initialised;
- the samples are the batch's vectors flattened to ``(N, D)``, without the masked-out ones,
  and the k-means++ draws come from a CPU generator seeded with :attr:`DataInit.seed` at the
  call, the same on every rank: under DDP every rank initialises in the same forward from its
  own batch, and the all-reduced k-means gives all ranks the same codebooks.

Decisions, each documented in docs/training.md:

- **A first batch with fewer vectors than codewords** (over all ranks, after the mask; common
  with large codebooks: 32 images of 7x7 latents are 1,568 vectors for 16,384 codewords) is
  filled up: every rank repeats its vectors ``ceil(K / N)`` times, each copy with Gaussian
  jitter of :data:`FILL_JITTER` times the batch's spread (its RMS distance from its mean; a
  common offset does not count), drawn from a generator seeded with ``seed +``
  :data:`FILL_SEED_OFFSET`, and k-means runs on those. Every one of the N vectors gets a
  codeword within the jitter of it, and the other codewords start as near-copies of them, as
  vector-quantize-pytorch's k-means init samples its batch with replacement; dead-code
  replacement (:class:`~vqkit.CodeReplacer`) moves the copies no vector picks. Waiting for a
  later batch instead would train the random codebook in the meantime and move the
  initialisation to a step nobody chose. A first batch with no vector at all (everything
  masked, on every rank) raises a ``ValueError``.
- **Eval mode before the first training batch** (``forward`` in eval mode, ``encode``)
  quantizes with the random initial codewords and emits a ``UserWarning`` (Python shows it
  once per process by default): a validation pass before training must still run.
- **Under** ``torch.compile`` the check runs outside the graph (``torch.compiler.disable``), a
  graph break in every training forward of such a quantizer; eval mode adds none.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .. import distributed
from ..registry import DATA_INITS
from ..strategy import Strategy

if TYPE_CHECKING:
    from .base import Quantizer

logger = logging.getLogger(__name__)

#: The name of the buffer that says whether the data initialisation has run.
BUFFER = "initialised"
#: Standard deviation of the jitter of the copies that fill up a first batch with fewer
#: vectors than codewords, relative to the batch's spread (its RMS distance from its mean): far
#: below the distances between data vectors, far above bf16's resolution at that spread.
FILL_JITTER = 1e-2
#: Added to :attr:`DataInit.seed` to seed the fill-up's jitter (k-means keeps its own generator,
#: seeded with ``seed`` on every rank, whatever each rank drew for its copies).
FILL_SEED_OFFSET = 1


@DATA_INITS.register
class DataInit(Strategy):
    """Run the quantizer's :meth:`~vqkit.quantizers.base.Quantizer.init_codebook_` (k-means++
    then Lloyd, [arthur2007kmeanspp]) on the vectors of its first training-mode forward.

    Args:
        seed: seed of the k-means++ draws (a CPU ``torch.Generator`` seeded with it at the
            call, so every rank and every device draws the same numbers).
        iters: maximum Lloyd iterations (per codebook of a multi-codebook quantizer).

    Raises:
        ValueError: ``seed`` is not an int >= 0 or ``iters`` not an int >= 1.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(dim=4, codebook_size=8, data_init=DataInit(seed=0))
        >>> bool(vq.initialised)
        False
        >>> _ = vq.train()(torch.randn(64, 4))   # k-means on these 64 vectors, then quantize
        >>> bool(vq.initialised)
        True
    """

    registry = DATA_INITS

    def __init__(self, seed: int = 0, iters: int = 50) -> None:
        for name, value, least in (("seed", seed, 0), ("iters", iters, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"DataInit {name} must be an int >= {least}, got {value!r}")
        self.seed = seed
        self.iters = iters

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "iters": self.iters}

    def generator(self) -> torch.Generator:
        """A fresh CPU generator seeded with :attr:`seed` (k-means moves its draws to the
        samples' device)."""
        return torch.Generator().manual_seed(self.seed)


def check_data_init(data_init: Any, quantizer: Quantizer) -> DataInit | None:
    """``data_init`` checked for ``quantizer``'s constructor.

    Raises:
        TypeError: ``data_init`` is neither None nor a :class:`DataInit`.
        ValueError: the quantizer has no data-driven initialisation (FSQ, LFQ, BSQ).
    """
    if data_init is None:
        return None
    if not isinstance(data_init, DataInit):
        raise TypeError(f"data_init must be None or a DataInit, got {data_init!r}")
    if not quantizer.initialises_from_data:
        raise ValueError(f"{type(quantizer).__name__} has no data-driven initialisation; "
                         "build it without data_init")
    return data_init


def register_flag_(quantizer: Quantizer) -> None:
    """Register the quantizer's ``initialised`` buffer: a bool scalar, False until the first
    training batch."""
    quantizer.register_buffer(BUFFER, torch.zeros((), dtype=torch.bool))


def fill_missing_flag_(state_dict: dict[str, Any], prefix: str) -> None:
    """Let a ``state_dict`` without the ``initialised`` entry load as initialised (it was
    written by a quantizer without lazy initialisation, whose codebooks are what they are)."""
    state_dict.setdefault(prefix + BUFFER, torch.ones((), dtype=torch.bool))


@torch.compiler.disable  # data-dependent, once: outside any compiled graph
def initialise_on_first_batch_(quantizer: Quantizer, flat: Tensor, keep: Tensor | None) -> None:
    """Run ``quantizer``'s data initialisation on ``flat[keep]`` unless it has run.

    A collective under DDP (a count, then k-means): every rank calls it in the same forward.

    Args:
        quantizer: a quantizer built with ``data_init`` (it owns the ``initialised`` buffer).
        flat: ``(N, D)`` the forward's vectors.
        keep: ``(N,)`` bool, the vectors the mask keeps, or None for all.

    Raises:
        ValueError: no vector kept on any rank. (Fewer vectors than codewords are filled up
            with jittered copies: the module docstring.)
    """
    if bool(quantizer.initialised):
        return
    samples = (flat if keep is None else flat[keep]).detach()
    count = torch.tensor([samples.shape[0]], dtype=torch.long, device=samples.device)
    total = int(distributed.all_reduce_(count))
    if total == 0:
        raise ValueError(
            f"{type(quantizer).__name__} initialises its codebooks from its first training "
            "batch (data_init), which kept no vector (after the mask, over all ranks)")
    data_init = quantizer.data_init
    need = max(quantizer.codebook_sizes)
    with torch.no_grad():
        if total < need:
            noise = torch.Generator().manual_seed(data_init.seed + FILL_SEED_OFFSET)
            samples = filled_up(samples, -(-need // total), noise)
        quantizer.init_codebook_(samples, generator=data_init.generator(), iters=data_init.iters)
    quantizer.initialised.fill_(True)
    logger.info("%s: codebooks initialised from the first training batch (%d vectors%s)",
                type(quantizer).__name__, total,
                "" if total >= need else f", filled up to {need} codewords with jittered copies")


def filled_up(samples: Tensor, factor: int, generator: torch.Generator) -> Tensor:
    """``samples`` and ``factor - 1`` copies of them, each with its own Gaussian jitter of
    standard deviation :data:`FILL_JITTER` times the samples' spread (RMS distance from their
    mean; if they are all equal, their RMS value, or 1 if they are zero), fp32.

    Shape:
        samples: ``(N, D)``; returns ``(factor * N, D)``.
    """
    base = samples.float()
    spread = float((base - base.mean(dim=0)).square().mean().sqrt())
    if spread == 0.0:  # one vector, or all equal: their own RMS value, else 1
        spread = float(base.square().mean().sqrt()) or 1.0
    scale = FILL_JITTER * spread
    copies = [base + scale * torch.randn(base.shape, generator=generator).to(base.device)
              for _ in range(factor - 1)]
    return torch.cat([base, *copies])


@torch.compiler.disable
def warn_if_uninitialised(quantizer: Quantizer) -> None:
    """A ``UserWarning`` when ``quantizer`` quantizes before its data initialisation ran."""
    if not bool(quantizer.initialised):
        warnings.warn(
            f"{type(quantizer).__name__} was built with data_init but has not seen a training "
            "batch: it quantizes with its random initial codewords (run a training-mode "
            "forward first, or call init_codebook_)", UserWarning, stacklevel=1)
