"""PNG figures of the interpretation tools; matplotlib is imported only here, when plotting."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..io.atomic import atomic_write


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            "plotting needs matplotlib: install it with `pip install matplotlib`"
        ) from err
    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write the figure to ``path`` atomically (temporary file + rename) and close it."""
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120,
                                                         bbox_inches="tight"))
    finally:
        _pyplot().close(fig)


def plot_histograms(
    histograms: dict[str, Tensor], path: str | os.PathLike[str], *, title: str = ""
) -> Path:
    """One line per label over the codebook index ([vali2023sfvq] Fig. 3a); writes a PNG and
    returns its path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for name, h in histograms.items():
        ax.plot(h.detach().cpu().numpy(), label=name, linewidth=1.2)
    ax.set_xlabel("codebook index (position along the curve)")
    ax.set_ylabel("smoothed count (max 1)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, ncol=4)
    return _save(fig, path)


def plot_matrix(
    matrix: Tensor,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    labels: list[str] | None = None,
    log2: bool = False,
    colorbar: str = "",
) -> Path:
    """Heat-map of a square matrix: codeword distances, JSD between labels, or transitions
    (``log2=True`` shows ``log2(1 + count)``). Writes a PNG and returns its path."""
    plt = _pyplot()
    m = matrix.detach().double().cpu()
    if log2:
        m = torch.log2(1.0 + m)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(m.numpy(), cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label=colorbar)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        if len(labels) <= 12:
            for i in range(len(labels)):
                for j in range(len(labels)):
                    ax.text(j, i, f"{float(m[i, j]):.2f}", ha="center", va="center",
                            fontsize=6, color="w")
    if title:
        ax.set_title(title)
    return _save(fig, path)
