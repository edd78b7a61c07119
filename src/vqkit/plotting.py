"""PNG figures for every part of vqkit: one way to get matplotlib, one way to save, shared kinds.

- :func:`pyplot`: ``matplotlib.pyplot`` with the non-interactive Agg backend, imported on first
  use (``import vqkit`` never loads matplotlib); a missing matplotlib raises ImportError
  naming the package to install.
- :func:`figure`: a new figure and its grid of axes.
- :func:`save_png`: writes a figure atomically (temporary file, then rename), so a results
  folder never holds half a PNG, and closes it.
- The plot kinds more than one caller draws: :func:`training_curves`,
  :func:`usage_histogram`, :func:`rate_distortion` (training runs, ``vqkit fit``/``eval``),
  :func:`label_histograms` and :func:`matrix` (the interpretation tools of
  [vali2023sfvq] §4 and the reproductions built on them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .io.atomic import atomic_write

#: What to install when matplotlib is missing.
INSTALL_HINT = "install it with `pip install matplotlib` (or the extra `vqkit[image]`)"


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend (files only, no display).

    Raises:
        ImportError: if matplotlib is not installed; the message names the package.
    """
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(f"matplotlib is required for plots: {INSTALL_HINT}") from err
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure(rows: int = 1, cols: int = 1, *, size: tuple[float, float] = (6.4, 4.2),
           squeeze: bool = True, **kwargs: Any) -> tuple[Any, Any]:
    """``(fig, axes)`` of a new ``rows x cols`` figure of ``size`` inches (matplotlib's
    ``subplots``; ``squeeze=False`` always gives a 2-D array of axes).

    Raises:
        ImportError: as :func:`pyplot`.
        ValueError: if ``rows`` or ``cols`` is below 1.
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"a figure needs at least one row and column, got {rows} x {cols}")
    return pyplot().subplots(rows, cols, figsize=size, squeeze=squeeze, **kwargs)


def save_png(fig: Any, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically, cropped to its content, and close it.

    The PNG holds no date or software metadata, so an unchanged figure is byte-identical when
    redrawn. Parent folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: if ``path`` does not end in ``.png``.
    """
    path = Path(path)
    try:
        if path.suffix.lower() != ".png":
            raise ValueError(f"plot path must end in .png, got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, lambda f: fig.savefig(
            f, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None}))
    finally:
        pyplot().close(fig)


def training_curves(
    history: Sequence[Mapping[str, float]],
    path: str | os.PathLike[str],
    *,
    keys: Sequence[str] = ("loss", "mse", "usage"),
    title: str | None = None,
) -> Path:
    """One panel per metric in ``keys`` against ``step``, from :class:`~vqkit.training.Meters`
    history rows (``{"step": ..., "mse": ...}``).

    Raises:
        ValueError: if no row holds one of ``keys``.

    Example:
        >>> import tempfile, os
        >>> rows = [{"step": 10, "loss": 2.0, "mse": 2.0, "usage": 0.5},
        ...         {"step": 20, "loss": 1.0, "mse": 1.0, "usage": 0.9}]
        >>> p = training_curves(rows, os.path.join(tempfile.mkdtemp(), "c.png"))
        >>> p.stat().st_size > 0
        True
    """
    keys = [k for k in keys if any(k in r for r in history)]
    if not history or not keys:
        raise ValueError(f"history must hold rows with 'step' and one of {keys}, got none")
    fig, axes = figure(1, len(keys), size=(4 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        rows = [r for r in history if key in r]
        ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker=".")
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        if key in ("loss", "mse") and all(r[key] > 0 for r in rows):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, path)


def usage_histogram(
    counts: Sequence[float], path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Bar chart of how often each codeword was used (sorted, most used first).

    Raises:
        ValueError: if ``counts`` is empty.

    Example:
        >>> import tempfile, os
        >>> p = usage_histogram([5, 0, 3, 1], os.path.join(tempfile.mkdtemp(), "u.png"))
        >>> p.exists()
        True
    """
    values = sorted((float(c) for c in counts), reverse=True)
    if not values:
        raise ValueError("counts must not be empty")
    fig, ax = figure(size=(6, 3))
    ax.bar(range(len(values)), values, width=1.0)
    ax.set_xlabel("codeword rank (most used first)")
    ax.set_ylabel("count")
    used = sum(v > 0 for v in values)
    ax.set_title(title or f"{used} of {len(values)} codewords used")
    return save_png(fig, path)


def rate_distortion(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike[str],
    *,
    xlabel: str = "bits per vector",
    ylabel: str = "MSE",
    log_y: bool = True,
    title: str | None = None,
) -> Path:
    """One line per method through its ``(rate, distortion)`` points.

    Raises:
        ValueError: if ``curves`` is empty.

    Example:
        >>> import tempfile, os
        >>> p = rate_distortion({"RVQ": [(8, 1.0), (16, 0.5)]},
        ...                     os.path.join(tempfile.mkdtemp(), "rd.png"))
        >>> p.exists()
        True
    """
    if not curves:
        raise ValueError("curves must hold at least one method")
    fig, ax = figure(size=(5, 3.5))
    for label, points in curves.items():
        pts = sorted(points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return save_png(fig, path)


def label_histograms(
    histograms: Mapping[str, Any], path: str | os.PathLike[str], *, title: str = ""
) -> Path:
    """One line per label over the codebook index ([vali2023sfvq] Fig. 3a), from ``(K,)``
    tensors such as :func:`vqkit.interpret.index_histograms` returns; writes a PNG.

    Raises:
        ValueError: if ``histograms`` is empty.
    """
    if not histograms:
        raise ValueError("histograms must hold at least one label")
    fig, ax = figure(size=(10, 3.5))
    for name, h in histograms.items():
        ax.plot(h.detach().cpu().numpy(), label=name, linewidth=1.2)
    ax.set_xlabel("codebook index (position along the curve)")
    ax.set_ylabel("smoothed count (max 1)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, ncol=4)
    return save_png(fig, path, dpi=120)


def matrix(
    values: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    labels: Sequence[str] | None = None,
    log2: bool = False,
    colorbar: str = "",
) -> Path:
    """Heat-map of a square ``(L, L)`` tensor: codeword distances, JSD between labels, or
    transitions (``log2=True`` shows ``log2(1 + count)``). Writes a PNG.

    Raises:
        ValueError: if ``values`` is not square or ``labels`` does not have one entry per row.
    """
    m = values.detach().double().cpu()
    if m.dim() != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"values must be a square matrix, got {tuple(m.shape)}")
    if labels is not None and len(labels) != m.shape[0]:
        raise ValueError(f"labels must have {m.shape[0]} entries, got {len(labels)}")
    if log2:
        m = torch.log2(1.0 + m)
    fig, ax = figure(size=(5.5, 4.5))
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
    return save_png(fig, path, dpi=120)
