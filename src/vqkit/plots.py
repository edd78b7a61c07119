"""PNG plots of training runs and results: training curves, usage histograms, rate-distortion.

matplotlib is imported lazily (only when a plot is drawn), with the non-interactive Agg
backend; a missing matplotlib raises ImportError naming the package. Every plot is written
atomically (temporary file, then rename), so a results folder never holds half a PNG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .io.atomic import atomic_write


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(
            "matplotlib is required for plots: install it with `pip install matplotlib` "
            "(or the extra `vqkit[image]`)"
        ) from err
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot path must end in .png, got {str(path)!r}")
    try:
        # No date in the metadata, so an unchanged plot is byte-identical when redrawn.
        return atomic_write(path, lambda f: fig.savefig(
            f, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None}))
    finally:
        _pyplot().close(fig)


def training_curves(
    history: Sequence[Mapping[str, float]],
    path: str | os.PathLike[str],
    *,
    keys: Sequence[str] = ("loss", "mse", "usage"),
    title: str | None = None,
) -> Path:
    """One panel per metric in ``keys`` against ``step``, from :class:`~vqkit.training.Meters`
    history rows (``{"step": ..., "mse": ...}``).

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
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
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
    return _save(fig, path)


def usage_histogram(
    counts: Sequence[float], path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Bar chart of how often each codeword was used (sorted, most used first).

    Example:
        >>> import tempfile, os
        >>> p = usage_histogram([5, 0, 3, 1], os.path.join(tempfile.mkdtemp(), "u.png"))
        >>> p.exists()
        True
    """
    values = sorted((float(c) for c in counts), reverse=True)
    if not values:
        raise ValueError("counts must not be empty")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(range(len(values)), values, width=1.0)
    ax.set_xlabel("codeword rank (most used first)")
    ax.set_ylabel("count")
    used = sum(v > 0 for v in values)
    ax.set_title(title or f"{used} of {len(values)} codewords used")
    return _save(fig, path)


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

    Example:
        >>> import tempfile, os
        >>> p = rate_distortion({"RVQ": [(8, 1.0), (16, 0.5)]},
        ...                     os.path.join(tempfile.mkdtemp(), "rd.png"))
        >>> p.exists()
        True
    """
    if not curves:
        raise ValueError("curves must hold at least one method")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
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
    return _save(fig, path)
