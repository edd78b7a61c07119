"""Quality of a quantizer on data: MSE, SNR, codebook usage, perplexity and bits per vector.

Used by ``vqkit fit`` (at the end of training), ``vqkit eval`` and the training loop's
per-window usage. Under ``torch.distributed`` every rank passes its own shard and all ranks get
the totals. The indices of multi-codebook quantizers ``(N, M)`` are counted per codebook;
usage and perplexity are then averaged over the M codebooks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .. import distributed
from ..functional.chunks import CHUNK, chunk_slices
from ..functional.metrics import counts_perplexity
from ..functional.metrics import index_histogram as histogram
from ..quantizers import Quantizer
from ..types import Progress


def index_histogram(indices: Tensor, sizes: Sequence[int]) -> Tensor:
    """``(M, max K)`` counts of each codebook's indices: row j is
    :func:`vqkit.functional.index_histogram` of column j of ``indices`` (``(N, M)`` or ``(N,)``
    for one codebook), zero-padded; ``-1`` entries are ignored.

    Float indices (space-filling VQ's curve positions) are counted at the nearest codeword.

    Raises:
        ValueError: if an index of codebook j is below -1 or at least ``sizes[j]``.

    Example:
        >>> index_histogram(torch.tensor([[0, 1], [0, 2]]), [2, 3]).tolist()
        [[2, 0, 0], [0, 1, 1]]
    """
    m = len(sizes)
    flat = indices.reshape(-1, m)
    if flat.is_floating_point():
        flat = flat.round().long()
    counts = torch.zeros(m, max(sizes), dtype=torch.long)
    for j, size in enumerate(sizes):
        counts[j, :size] = histogram(flat[:, j].cpu(), size)
    return counts


def usage_stats(counts: Tensor, sizes: Sequence[int]) -> dict[str, float]:
    """Usage (fraction of codewords used, mean over codebooks) and perplexity
    (:func:`vqkit.functional.counts_perplexity`, mean over codebooks) from ``(M, max K)``
    counts.

    Example:
        >>> usage_stats(torch.tensor([[5, 5, 0, 0]]), [4])
        {'usage': 0.5, 'perplexity': 2.0}
    """
    usage, perp = [], []
    for j, size in enumerate(sizes):
        c = counts[j, :size]
        usage.append(float((c > 0).double().mean()))
        perp.append(counts_perplexity(c))
    return {"usage": sum(usage) / len(usage), "perplexity": sum(perp) / len(perp)}


@torch.no_grad()
def evaluate(
    quantizer: Quantizer, x: Tensor, *, chunk: int = CHUNK, progress: Progress | None = None
) -> dict[str, Any]:
    """Hard (eval-mode) quantization quality of ``quantizer`` on ``x``, over all ranks.

    Args:
        quantizer: any vqkit quantizer (put in eval mode for the call, then restored).
        x: ``(N, D)`` vectors (this rank's shard under DDP).
        chunk: vectors encoded at once (bounds memory).
        progress: ``progress(vectors_done, N, {})`` after each chunk (this rank's vectors).

    Returns:
        ``vectors``; ``mse`` (mean over vectors of ``||x - x_hat||^2``, [vali2025thesis] eq. (2.4));
        ``mse_per_dim``; ``snr_db`` (``10 log10(sum ||x||^2 / sum ||x - x_hat||^2)``);
        ``usage`` and ``perplexity`` (means over codebooks); ``bits_per_vector``.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(2, 4)
        >>> r = evaluate(vq, vq.codewords.detach().clone())
        >>> r["mse"], r["usage"]
        (0.0, 1.0)
    """
    was_training = quantizer.training
    quantizer.eval()
    sizes = quantizer.codebook_sizes
    device = next((t.device for t in quantizer.state_dict().values()), torch.device("cpu"))
    sums = torch.zeros(3, dtype=torch.float64)  # squared error, signal energy, vectors
    counts = torch.zeros(len(sizes), max(sizes), dtype=torch.long)
    try:
        for rows in chunk_slices(x.shape[0], chunk, progress):
            part = x[rows].to(device)
            indices = quantizer.encode(part)
            x_hat = quantizer.decode(indices)
            sums[0] += float((part.double() - x_hat.double()).pow(2).sum())
            sums[1] += float(part.double().pow(2).sum())
            sums[2] += part.shape[0]
            counts += index_histogram(indices, sizes)
    finally:
        quantizer.train(was_training)
    distributed.all_reduce_(sums)
    distributed.all_reduce_(counts)
    err, energy, n = (float(v) for v in sums)
    mse = err / n if n else math.nan
    return {
        "vectors": int(n),
        "mse": mse,
        "mse_per_dim": mse / quantizer.dim,
        "snr_db": math.inf if err == 0 else 10.0 * math.log10(energy / err),
        **usage_stats(counts, sizes),
        "bits_per_vector": quantizer.bits_per_vector,
    }
