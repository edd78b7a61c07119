"""The memory ``vqkit fit`` would need, bounded before anything is built.

A size option far too large (``--bits 30``, ``--codebook-size 1000000000``, ``--codebook-dim
100000000``, ``--num-codebooks 100000``, ``--batch 1000000000``) is refused with a one-line
error naming the sizes, instead of a huge allocation that fails (or swaps) minutes later.
The estimate counts float32 values (4 bytes each) and is checked against :data:`MAX_FIT_BYTES`:

- the codebooks and their training state: ``4 x M x K x max(D, d)`` values (weights,
  gradients and Adam's two moments; ``d`` is ``--codebook-dim``, plus its two ``D x d``
  projections);
- a batch, ``batch x D`` values, and its distances to every code, ``batch x K`` values;

with ``K`` the codes per codebook (``prod(--levels)`` for fsq/rfsq), ``M`` the codebooks and
``D`` the vectors' dimension. At most :data:`MAX_CODEBOOKS` codebooks are built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Most bytes any one of the estimates of :func:`check_fit_sizes` may take (4 GiB).
MAX_FIT_BYTES = 4 << 30
#: Most codebooks (``--num-codebooks``) a quantizer is built with.
MAX_CODEBOOKS = 4096


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.3g} GiB"


def check_fit_sizes(settings: Mapping[str, Any], dim: int) -> None:
    """Refuse ``fit`` settings whose quantizer or batches would not fit :data:`MAX_FIT_BYTES`.

    Args:
        settings: ``fit``'s settings (``codebook_size``, ``levels``, ``num_codebooks``,
            ``codebook_dim``, ``batch``).
        dim: D, the dimension of the vectors.

    Raises:
        ValueError: more than :data:`MAX_CODEBOOKS` codebooks, or an estimate above
            :data:`MAX_FIT_BYTES`; the message names the sizes.

    Example:
        >>> check_fit_sizes({"codebook_size": 2**30, "num_codebooks": 1, "batch": 1024}, 8)
        Traceback (most recent call last):
        ...
        ValueError: 1073741824 codes x 1 codebook(s) x dimension 8 needs 128 GiB for the \
codebooks and their training state, more than the 4 GiB vqkit fit allows
    """
    levels = settings.get("levels")
    size = math.prod(int(v) for v in levels) if levels else int(settings["codebook_size"])
    books = int(settings.get("num_codebooks") or 1)
    if books > MAX_CODEBOOKS:
        raise ValueError(f"--num-codebooks {books} is more than the {MAX_CODEBOOKS} vqkit fit "
                         "builds")
    inner = int(settings.get("codebook_dim") or 0)
    batch = int(settings["batch"])
    what = (f"--levels {' '.join(str(v) for v in levels)}" if levels
            else f"{size} codes")
    estimates = {
        f"{what} x {books} codebook(s) x dimension {max(dim, inner)}"
        f"{f' (--codebook-dim {inner})' if inner else ''}":
            (16 * (books * size * max(dim, inner) + 2 * dim * inner),
             "the codebooks and their training state"),
        f"--batch {batch} x dimension {dim}": (4 * batch * dim, "a batch"),
        f"--batch {batch} x {what}": (4 * batch * size, "a batch's distances to the codes"),
    }
    for sizes, (need, purpose) in estimates.items():
        if need > MAX_FIT_BYTES:
            raise ValueError(f"{sizes} needs {_gib(need)} for {purpose}, more than the "
                             f"{_gib(MAX_FIT_BYTES)} vqkit fit allows")
