"""The demo's second part: multi-codebook and space-filling VQ, codes files, on photo patches.

Grey 8x8 patches (D = 64) of the scikit-image photographs, split train/test by photo, are
quantized by:

- ``VectorQuantizer`` with K = 256 (8 bits per patch),
- ``ResidualVQ``, ``ProductVQ`` and ``AdditiveVQ`` with M = 4 codebooks of 64 (24 bits; the
  additive VQ encodes by beam search of width 2 to keep the demo short),
- ``SpaceFillingVQ`` with 256 corner points (its indices are curve positions; neighbouring
  positions decode to similar patches, which the table shows as the mean distance between
  consecutive corner points against that between random pairs),

each trained with NSVQ from a k-means (or, for SFVQ, its own) initialisation by
:class:`vqkit.training.loop.Trainer`. The residual VQ's test codes go through a codes file and
back, and must decode exactly to the library's output.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from ..progress import bar_callback
from ..quantizers import build_quantizer
from ..registry import QUANTIZERS
from ..training.evaluate import evaluate
from ..training.loop import rows_trainer
from ..training.schedule import Replacement, Schedule
from ..training.seed import generator, seed_global

#: (label, class name, args after dim) of each row; rows whose class is missing are skipped.
ROWS: list[tuple[str, str, tuple[int, ...]]] = [
    ("VQ K=256", "VectorQuantizer", (256,)),
    ("Residual VQ 4x64", "ResidualVQ", (64, 4)),
    ("Product VQ 4x64", "ProductVQ", (64, 4)),
    ("Additive VQ 4x64", "AdditiveVQ", (64, 4)),
    ("Space-filling VQ K=256", "SpaceFillingVQ", (256,)),
]


def load_small_patches(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, test)`` grey ``size x size`` patches as ``(N, size*size)`` float32 in [0, 1]."""
    from ..data.images import skimage_patches

    train, test = skimage_patches(size, stride=size)
    return (torch.from_numpy(train).reshape(len(train), -1),
            torch.from_numpy(test).reshape(len(test), -1))


def _curve_smoothness(quantizer: Any, seed: int) -> float:
    """Mean distance of consecutive corner points / mean distance of random pairs."""
    c = quantizer.codewords.detach().double()
    consecutive = (c[1:] - c[:-1]).norm(dim=1).mean()
    g = generator(seed, "tour-pairs")
    a, b = torch.randint(0, c.shape[0], (2, 4096), generator=g)
    return float(consecutive / (c[a] - c[b]).norm(dim=1).mean())


def train_row(label: str, cls_name: str, args: tuple[int, ...], train: torch.Tensor,
              test: torch.Tensor, *, steps: int, seed: int, progress: bool) -> dict[str, Any]:
    """Train one quantizer of :data:`ROWS` and measure it on the test patches."""
    start = time.perf_counter()
    seed_global(seed, "tour", label)
    kwargs: dict[str, Any] = {}
    if cls_name == "AdditiveVQ":
        from ..quantizers.encoders import BeamSearch

        kwargs["encoder"] = BeamSearch(width=2)
    quantizer = build_quantizer(cls_name, train.shape[1], *args, **kwargs)
    g = generator(seed, "tour-init", label)
    sample = train[torch.randperm(train.shape[0], generator=g)[:4096]]
    quantizer.init_codebook_(sample, generator=g)
    schedule = Schedule(steps=steps, lr=1e-3, log_every=max(1, steps // 5),
                        replacement=Replacement(100 if cls_name != "SpaceFillingVQ" else 0))
    rows_trainer(quantizer, train, schedule, batch=256, seed=seed,
                 progress=bar_callback(label, enabled=progress, unit="step")).run()
    result = evaluate(quantizer, test)
    mse_pixel = result["mse_per_dim"]
    row = {
        "label": label,
        "bits": result["bits_per_vector"],
        "test_mse": mse_pixel,
        "psnr_db": 10.0 * math.log10(1.0 / mse_pixel),
        "usage": result["usage"],
        "seconds": time.perf_counter() - start,
    }
    if cls_name == "SpaceFillingVQ":
        row["curve_smoothness"] = _curve_smoothness(quantizer, seed)
    row["quantizer"] = quantizer
    return row


def codes_roundtrip(quantizer: Any, test: torch.Tensor, path: Path) -> dict[str, Any]:
    """Encode ``test`` into a codes file, read it back, and check the decode is exact."""
    from ..io.codes_file import read_codes, write_codes

    quantizer.eval()
    indices = quantizer.encode(test)
    codes = write_codes(path, indices, quantizer)
    back = read_codes(path, quantizer)
    exact = torch.equal(quantizer.decode(back.indices), quantizer.decode(indices))
    return {"path": str(path), "bytes": path.stat().st_size, "payload_bytes": codes.payload_bytes,
            "vectors": int(test.shape[0]), "exact": bool(exact)}


def run_tour(out_dir: Path, *, steps: int = 200, seed: int = 0,
             progress: bool = True) -> dict[str, Any]:
    """Train every available row of :data:`ROWS`; returns the rows and the codes-file check."""
    train, test = load_small_patches()
    rows = []
    for label, cls_name, args in ROWS:
        if cls_name in QUANTIZERS:
            rows.append(train_row(label, cls_name, args, train, test, steps=steps, seed=seed,
                                  progress=progress))
    roundtrip = None
    residual = next((r for r in rows if r["label"].startswith("Residual")), rows[0])
    roundtrip = codes_roundtrip(residual["quantizer"], test, Path(out_dir) / "tour_test.vqc")
    for r in rows:
        del r["quantizer"]
    return {"rows": rows, "codes_file": roundtrip, "patches": {"train": len(train),
                                                               "test": len(test), "size": 8}}


def format_tour(result: dict[str, Any]) -> str:
    """The tour's table and codes-file line as text."""
    head = (f"{'quantizer':<24} {'bits':>5} {'test MSE':>9} {'PSNR dB':>8} {'usage':>6} "
            f"{'seconds':>8}")
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        lines.append(f"{r['label']:<24} {r['bits']:>5.0f} {r['test_mse']:>9.5f} "
                     f"{r['psnr_db']:>8.2f} {r['usage']:>6.3f} {r['seconds']:>8.1f}")
        if "curve_smoothness" in r:
            lines.append(f"{'':<24} curve: consecutive corner points are "
                         f"{r['curve_smoothness']:.2f}x as far apart as random pairs")
    c = result["codes_file"]
    lines.append(f"codes file: {c['vectors']} test patches -> {c['bytes']} bytes "
                 f"({c['path']}), decoded {'exactly' if c['exact'] else 'WITH ERRORS'}")
    return "\n".join(lines)
