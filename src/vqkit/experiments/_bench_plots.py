"""The plots of ``vqkit reproduce quantizer-bench``: PSNR and usage against steps, final PSNR
with its seed spread, and a grid of reconstructions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..plotting import figure, save_png

#: Bar colours: vqkit's rows blue, the peer's orange.
_COLOURS = {"vqkit": "tab:blue", "vector-quantize-pytorch": "tab:orange"}


def _panels(summary: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    return sorted({(s["dataset"], s["codes"]) for s in summary})


def curves(points: Sequence[Mapping[str, Any]], key: str, path: Path, *, ylabel: str) -> Path:
    """One panel per (data set, size): ``key`` of the curve points against the step, one line
    per row (mean over seeds); vqkit's rows solid, the peer's dashed."""
    panels = _panels(points)
    fig, axes = figure(1, len(panels), size=(5.0 * len(panels), 4.2), squeeze=False)
    for ax, (dataset, codes) in zip(axes[0], panels, strict=True):
        rows = sorted({p["row"] for p in points if (p["dataset"], p["codes"]) == (dataset, codes)})
        for i, row in enumerate(rows):
            runs = [p for p in points if (p["dataset"], p["codes"], p["row"]) ==
                    (dataset, codes, row)]
            steps = [c["step"] for c in runs[0]["curve"]]
            values = np.mean([[c[key] for c in r["curve"]] for r in runs], axis=0)
            peer = runs[0]["library"] != "vqkit"
            ax.plot(steps, values, linestyle="--" if peer else "-", marker=".",
                    color=f"C{i % 10}", label=row)
        ax.set_title(f"{dataset}, {codes} codes")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    return save_png(fig, path)


def psnr_bars(summary: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Final test PSNR per row, one panel per (data set, size): the mean over seeds with the
    seeds' range as the error bar, vqkit's rows blue and the peer's orange."""
    panels = _panels(summary)
    fig, axes = figure(1, len(panels), size=(4.6 * len(panels), 5.2), squeeze=False)
    for ax, (dataset, codes) in zip(axes[0], panels, strict=True):
        rows = [s for s in summary if (s["dataset"], s["codes"]) == (dataset, codes)]
        y = np.arange(len(rows))
        mean = np.array([s["psnr_mean"] for s in rows])
        err = np.array([[s["psnr_mean"] - s["psnr_min"] for s in rows],
                        [s["psnr_max"] - s["psnr_mean"] for s in rows]])
        ax.barh(y, mean, xerr=err, color=[_COLOURS[s["library"]] for s in rows], capsize=2)
        ax.set_yticks(y, [s["row"] for s in rows], fontsize=6)
        low = float(np.min(mean - err[0]))
        ax.set_xlim(low - 1.0, float(np.max(mean + err[1])) + 0.3)
        ax.invert_yaxis()
        ax.set_xlabel("test PSNR (dB)")
        ax.set_title(f"{dataset}, {codes} codes")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_png(fig, path)


def reconstructions(originals: np.ndarray, shown: Mapping[str, np.ndarray], path: Path, *,
                    title: str) -> Path:
    """A grid: the original test images in the first row, each row's reconstructions below.

    Shape:
        originals and every ``shown`` value: ``(n, C, H, W)`` in [0, 1].
    """
    names = ["original", *shown]
    images = [originals, *shown.values()]
    n = originals.shape[0]
    fig, axes = figure(len(names), n, size=(1.1 * n + 2.2, 1.1 * len(names)), squeeze=False)
    for r, (name, batch) in enumerate(zip(names, images, strict=True)):
        for c in range(n):
            ax = axes[r][c]
            image = np.clip(np.transpose(batch[c], (1, 2, 0)), 0, 1)
            ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray",
                      vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
