"""Shared machinery of the image-codec reproductions (not a reproduction itself).

Trains one codec model per configuration on the natural-photo tiles, evaluates PSNR and SSIM
on the held-out photos' tiles, adds JPEG and WebP curves on the same tiles, rewrites the
results JSON after every configuration (a sweep cut short keeps what it finished), and draws
the rate-distortion plots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..apps.image_codec.baselines import FORMATS, at_rate, rate_distortion
from ..apps.image_codec.config import CodecConfig, QuantizerSpec, TrainConfig
from ..apps.image_codec.data import load_dataset
from ..apps.image_codec.evaluate import evaluate
from ..apps.image_codec.train import train
from ..reporting import format_number, markdown_table, paper_cells
from ..training.provenance import Run, write_json

log = logging.getLogger(__name__)

#: The sweeps' network and schedule, sized for a shared 2-core CPU (one thread).
SWEEP_MODEL = {"tile": 32, "downsample": 4, "channels": 3, "hidden": 16, "latent_dim": 64}
SWEEP_TRAIN = {"steps": 800, "batch_size": 16, "lr": 2e-3, "replace_threshold": 0.01}
QUICK_TRAIN = {"steps": 20, "batch_size": 8, "lr": 2e-3, "replace_threshold": 0.01}
#: Dead-codeword replacement period (steps) of the "with CBR" configurations.
REPLACE_EVERY = 100
QUICK_REPLACE_EVERY = 5
CIFAR_NOTE = ("Data: 32x32 tiles of natural photos that install offline (scikit-image, Debian "
              "opencv-doc and mate-backgrounds), split by photo: our stand-in for CIFAR-10, "
              "which cannot be had offline. The paper's numbers are on other data (CIFAR-10 or "
              "unknown) and another network; compare directions, not absolute values.")


def configuration(spec: QuantizerSpec, *, replace: bool, quick: bool, seed: int
                  ) -> tuple[CodecConfig, TrainConfig]:
    """The codec and training configs of one sweep point."""
    base = QUICK_TRAIN if quick else SWEEP_TRAIN
    every = (QUICK_REPLACE_EVERY if quick else REPLACE_EVERY) if replace else 0
    return CodecConfig(**SWEEP_MODEL, quantizer=spec), TrainConfig(
        **base, replace_every=every, seed=seed)


def run_point(label: str, codec: CodecConfig, train_cfg: TrainConfig, test: torch.Tensor
              ) -> dict[str, Any]:
    """Train and evaluate one configuration; returns its results row."""
    source, _ = load_dataset("natural", codec.tile)
    result = train(codec, train_cfg, source)
    metrics = evaluate(result.model, test)
    metrics["surrogate_psnr"] = surrogate_psnr(result.model, test[:512])
    metrics["hard_psnr_same_tiles"] = evaluate(result.model, test[:512])["psnr"]
    q = codec.quantizer
    return {
        "method": label, "kind": q.kind, "estimator": q.estimator, "learning": q.learning,
        "bits": q.bits, "num_codebooks": q.num_codebooks, "codebook_size": q.codebook_size,
        "replace_every": train_cfg.replace_every, **metrics,
        "final_train_mse": result.losses[-1], "replaced": result.replaced,
        "train_seconds": round(result.seconds, 1),
        "codec_config": codec.asdict(), "train_config": train_cfg.asdict(),
    }


def surrogate_psnr(model: torch.nn.Module, tiles: torch.Tensor) -> float:
    """Mean PSNR of the training-mode output (the estimator's surrogate, e.g. NSVQ's
    ``x + ||x - q|| v/||v||``) on ``tiles``; a copy runs it, so counters and EMA stay put.
    Far above the hard PSNR on the same tiles means the decoder learned from more than the
    index carries."""
    import copy

    from ..apps.image_codec.evaluate import psnr_per_image

    twin = copy.deepcopy(model).train()
    with torch.no_grad():
        y = twin(tiles)[0].clamp(0.0, 1.0)
    return float(psnr_per_image(tiles, y).mean())


def baseline_curves(tile: int = 32, quick: bool = False) -> dict[str, list[dict[str, float]]]:
    """JPEG and WebP rate-distortion points on the held-out photos (the same tiles)."""
    from ..data.images import natural_photos, split_photos

    _, test_photos = split_photos(natural_photos())
    if quick:
        test_photos = [p[:64, :64] for p in test_photos[:1]]
    qualities = (5, 50) if quick else (1, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90)
    return {fmt: rate_distortion(test_photos, fmt, tile=tile, qualities=qualities)
            for fmt in FORMATS}


def sweep(out_path: Path, points: Sequence[tuple[str, CodecConfig, TrainConfig]], run: Run, *,
          quick: bool, extra: dict[str, Any],
          on_update: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``points`` in order, rewriting ``out_path`` (and calling ``on_update`` with the
    results, to redraw plots) after each; returns the last record."""
    from ..progress import progress_bar

    _, test = load_dataset("natural", 32)
    if quick:
        test = test[:64]
    results: dict[str, Any] = {"baselines": baseline_curves(quick=quick), "rows": [],
                               "planned": len(points), "test_tiles": int(test.shape[0]),
                               "quick": quick}
    record: dict[str, Any] = {}
    for label, codec, train_cfg in progress_bar(points, desc="configurations", unit="config"):
        row = run_point(label, codec, train_cfg, test)
        for fmt, curve in results["baselines"].items():
            row[f"{fmt.lower()}_psnr_at_rate"] = at_rate(curve, row["bits_per_pixel"])
            row[f"{fmt.lower()}_ssim_at_rate"] = at_rate(curve, row["bits_per_pixel"], "ssim")
        results["rows"].append(row)
        log.info("%s %d bits: PSNR %.2f SSIM %.3f (%.0f s)", label, codec.quantizer.bits,
                 row["psnr"], row["ssim"], row["train_seconds"])
        record = run.record(results, **extra)
        write_json(out_path, record)
        if on_update is not None:
            on_update(results)
    return record


def plot_rate_distortion(path: Path, results: dict[str, Any], metric: str, title: str) -> None:
    """Our methods (one line each, bits per pixel on x) with JPEG and WebP curves."""
    from ..plotting import figure, save_png

    fig, ax = figure(size=(6.4, 4.2))
    methods: dict[str, list[tuple[float, float]]] = {}
    for row in results["rows"]:
        methods.setdefault(row["method"], []).append((row["bits_per_pixel"], row[metric]))
    for name, pts in methods.items():
        pts.sort()
        ax.plot(*zip(*pts, strict=False), marker="o", label=name)
    hi = max((r["bits_per_pixel"] for r in results["rows"]), default=1.0) * 1.3
    for fmt, curve in results["baselines"].items():
        pts = sorted((p["bits_per_pixel"], p[metric]) for p in curve if p["bits_per_pixel"] <= hi)
        if pts:
            colour = "grey" if fmt == "JPEG" else "black"
            ax.plot(*zip(*pts, strict=False), linestyle="--", color=colour,
                    label=f"{fmt} (Pillow)")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel(metric.upper())
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)


def plotter(out_dir: Path, plots: Sequence[str], title: str
            ) -> Callable[[dict[str, Any]], None]:
    """The ``on_update`` of :func:`sweep` that redraws the PSNR and SSIM plots ``plots``."""

    def draw(results: dict[str, Any]) -> None:
        for plot, metric in zip(plots, ("psnr", "ssim"), strict=True):
            plot_rate_distortion(Path(out_dir) / plot, results, metric, title)

    return draw


def source_paragraph(data: dict[str, Any], result_file: str) -> str:
    """Where a sweep's numbers come from: file, command, commit, threads, time, progress."""
    res = data["results"]
    return (f"Source: `results/{result_file}` (command `{data['command']}`, commit "
            f"`{data['git_commit']}`, {data['environment']['threads']} thread(s) on the shared "
            f"2-core CPU, {data['wall_seconds']:.0f} s; {len(res['rows'])} of {res['planned']} "
            "configurations finished).")


def rows_by(results: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """A sweep's rows by (method, bits)."""
    return {(r["method"], r["bits"]): r for r in results["rows"]}


def metric_tables(results: dict[str, Any], methods: Sequence[str],
                  paper: dict[str, dict[int, tuple[float, ...]]], paper_methods: Sequence[str],
                  note: str) -> list[str]:
    """The PSNR and SSIM tables: per bit rate, our methods, JPEG and WebP at the same bits per
    pixel, and the paper's numbers for ``paper_methods`` (``paper[metric][bits]``)."""
    rows = rows_by(results)
    out: list[str] = []
    for metric, digits in (("psnr", 2), ("ssim", 3)):
        header = ["bits", "bpp", *methods, "JPEG", "WebP",
                  *[f"paper {m}" for m in paper_methods]]
        body = []
        for b in sorted({k[1] for k in rows}):
            any_row = next(r for (m, bb), r in rows.items() if bb == b)
            body.append([b, format_number(any_row["bits_per_pixel"], 4),
                         *[format_number(rows.get((m, b), {}).get(metric), digits)
                           for m in methods],
                         format_number(any_row[f"jpeg_{metric}_at_rate"], digits),
                         format_number(any_row[f"webp_{metric}_at_rate"], digits),
                         *paper_cells(paper[metric].get(b), len(paper_methods), digits)])
        out += [f"**{metric.upper()}** (ours; {note}):", "", *markdown_table(header, body), ""]
    return out


def times_table(data: dict[str, Any], perplexity: str) -> list[str]:
    """Training seconds and index perplexity (described as ``perplexity``) of every row."""
    times = [[r["method"], r["bits"], format_number(r["train_seconds"], 0),
              format_number(r["perplexity"], 1)] for r in data["results"]["rows"]]
    threads = data["environment"]["threads"]
    return [f"CPU training time per configuration ({threads} thread{'' if threads == 1 else 's'}, "
            f"shared 2-core machine) and {perplexity} on the test tiles:", "",
            *markdown_table(["method", "bits", "train s", "perplexity"], times), ""]
