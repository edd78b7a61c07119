"""The shipped image codec on held-out whole photos, against JPEG, WebP and AVIF.

The whole-image model (:mod:`vqkit.apps.image_codec.network`) codes each held-out photo
(:data:`vqkit.data.images.NATURAL_TEST_PHOTOS`: never a training crop) as a whole
``.vqi`` file at every rate it offers (1 to M residual stages); JPEG, WebP and AVIF code the
same photos as whole files over a quality sweep (:mod:`vqkit.apps.image_codec.reference_codecs`,
Pillow, each with its documented best-compression settings). For every codec and setting:

- the rate: the files' bits over the photos' pixels;
- PSNR of the mean MSE over the photos (8-bit levels), and the mean SSIM
  ([wang2004ssim], scikit-image);
- at each of our rates, each reference codec's PSNR and SSIM linearly interpolated on its
  quality sweep at the same bits per pixel (the "matched rate" comparison);
- the grid-line step ratio of our decoded photos (:mod:`vqkit.apps.image_codec.seams`; a tiled
  codec shows > 1 at its tile size);
- encode and decode seconds of a 512x320 photo in-process on the run's threads.

The model is the shipped one (its fingerprint and the training command it records go into the
JSON). ``--quick`` trains a tiny model for a few steps on small crops and evaluates it on two
small held-out crops: a check of the harness, not of the codec.

Run: ``vqkit reproduce image-codec`` (about 90 seconds on 1 thread).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..apps.image_codec import reference_codecs, whole_file
from ..apps.image_codec.baselines import at_rate
from ..apps.image_codec.seams import grid_step_ratio
from ..reporting import format_number, markdown_table
from ..training.provenance import Run, write_json
from .reproduction import Reproduction, json_report

log = logging.getLogger(__name__)

NAME = "image-codec"
RESULT_FILE = "image_codec.json"
RD_PLOT = "image_codec_rd.png"
CROPS_PLOT = "image_codec_crops.png"
#: The range of rates the acceptance compares (bits per pixel).
RATE_RANGE = (0.4, 1.5)


@dataclass(frozen=True)
class ImageCodecRunConfig:
    """Settings of the run.

    Attributes:
        qualities: the reference codecs' quality sweep.
        timing_repeats: encodes and decodes timed (the median is reported).
        timing_size: ``(height, width)`` of the timed photo (a crop of a held-out photo).
        quick_crop: side of the held-out crops of the quick run (0: whole photos).
    """

    qualities: tuple[int, ...] = reference_codecs.QUALITIES
    timing_repeats: int = 3
    timing_size: tuple[int, int] = (320, 512)
    quick_crop: int = 0


CONFIG = ImageCodecRunConfig()
QUICK = ImageCodecRunConfig(qualities=(10, 50, 90), timing_repeats=1, timing_size=(32, 48),
                            quick_crop=48)


def _psnr(mse: float) -> float:
    return 10.0 * math.log10(255.0**2 / mse) if mse > 0 else float("inf")


def _point(files_bits: int, pixels: int, pairs: list[tuple[np.ndarray, np.ndarray]]
           ) -> dict[str, Any]:
    """Rate and quality of one setting over every photo (reference, decoded)."""
    q = [reference_codecs.whole_image_quality(ref, dec) for ref, dec in pairs]
    mse = float(np.mean([m["mse"] for m in q]))
    return {"bits_per_pixel": files_bits / pixels, "psnr": _psnr(mse), "mse": mse,
            "ssim": float(np.mean([m["ssim"] for m in q])),
            "psnr_per_photo": [_psnr(m["mse"]) for m in q]}


def _ours(model, photos: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    pixels = sum(p.shape[0] * p.shape[1] for p in photos.values())
    points = []
    for stages in range(1, model.config.stages + 1):
        bits, pairs, seams = 0, [], []
        for img in photos.values():
            data = whole_file.compress(model, img, stages=stages)
            decoded = whole_file.decompress(model, data)
            bits += 8 * len(data)
            pairs.append((img, decoded))
            if min(img.shape[:2]) > 32:
                seams.append(grid_step_ratio(decoded, 32))
        point = _point(bits, pixels, pairs)
        point.update(stages=stages, grid_step_ratio_max=max(seams, default=float("nan")))
        log.info("vqkit %d stages: %.4f bpp, PSNR %.2f dB", stages, point["bits_per_pixel"],
                 point["psnr"])
        points.append(point)
    return points


def _reference(fmt: str, photos: dict[str, np.ndarray], qualities) -> list[dict[str, Any]]:
    pixels = sum(p.shape[0] * p.shape[1] for p in photos.values())
    points = []
    for q in qualities:
        bits, pairs = 0, []
        for img in photos.values():
            decoded, size = reference_codecs.roundtrip(img, fmt, q)
            bits += 8 * size
            pairs.append((img, decoded))
        points.append({"quality": q, **_point(bits, pixels, pairs)})
    return points


def _matched(ours: list[dict[str, Any]], refs: dict[str, list[dict[str, Any]]]
             ) -> list[dict[str, Any]]:
    rows = []
    for p in ours:
        row = {"stages": p["stages"], "bits_per_pixel": p["bits_per_pixel"],
               "psnr": p["psnr"], "ssim": p["ssim"]}
        for fmt, curve in refs.items():
            for key in ("psnr", "ssim"):
                other = at_rate(curve, p["bits_per_pixel"], key)
                row[f"{fmt.lower()}_{key}"] = other
                row[f"{key}_gap_{fmt.lower()}"] = p[key] - other
        rows.append(row)
    return rows


def _acceptance(matched: list[dict[str, Any]]) -> dict[str, Any]:
    lo, hi = RATE_RANGE
    inside = [r for r in matched if lo <= r["bits_per_pixel"] <= hi]
    gaps = [r["psnr_gap_jpeg"] for r in inside]
    ssim_gaps = [r["ssim_gap_jpeg"] for r in inside]
    return {"rates_in_range": len(inside),
            "min_psnr_gap_jpeg": min(gaps, default=float("nan")),
            "min_ssim_gap_jpeg": min(ssim_gaps, default=float("nan")),
            "psnr_at_least_jpeg": bool(inside) and all(g >= 0 for g in gaps),
            "ssim_at_least_jpeg": bool(inside) and all(g >= 0 for g in ssim_gaps)}


def _timing(model, photo: np.ndarray, repeats: int) -> dict[str, float]:
    enc, dec = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        data = whole_file.compress(model, photo)
        enc.append(time.perf_counter() - start)
        start = time.perf_counter()
        whole_file.decompress(model, data)
        dec.append(time.perf_counter() - start)
    return {"height": photo.shape[0], "width": photo.shape[1],
            "encode_seconds": float(np.median(enc)), "decode_seconds": float(np.median(dec))}


def _photos(cfg: ImageCodecRunConfig, quick: bool) -> dict[str, np.ndarray]:
    from ..data.images import NATURAL_TEST_PHOTOS, natural_photos

    every = natural_photos()
    names = NATURAL_TEST_PHOTOS[:2] if quick else NATURAL_TEST_PHOTOS
    out = {}
    for name in names:
        img = (every[name] * 255.0).round().astype(np.uint8)
        out[name] = img[: cfg.quick_crop, : cfg.quick_crop] if cfg.quick_crop else img
    return out


def _quick_model():
    from ..apps.image_codec.config import ImageModelConfig, TrainConfig
    from ..apps.image_codec.data import AugmentedCrops
    from ..apps.image_codec.train import train
    from ..data.images import natural_photos, split_photos

    train_photos, _ = split_photos(natural_photos())
    cfg = ImageModelConfig(hidden=8, latent_dim=8, codebook_size=16, stages=4)
    tcfg = TrainConfig(steps=20, batch_size=4, lr=1e-3, lr_schedule="cosine")
    return train(cfg, tcfg, AugmentedCrops(train_photos[:3], 32)).model, {**tcfg.asdict()}


def run(out_dir: Path, *, quick: bool = False, seed: int = 0, allow_dirty: bool = False
        ) -> Path:
    """Evaluate the codec and the reference codecs; writes the JSON and two plots."""
    from ..apps.image_codec.network import (
        DEFAULT_IMAGE_MODEL,
        load_default_image_model,
        training_record,
    )

    cfg = QUICK if quick else CONFIG
    out_dir = Path(out_dir)
    record = Run(command=f"vqkit reproduce {NAME}" + (" --quick" if quick else ""), seeds=[seed],
                 allow_dirty=allow_dirty)
    if quick:
        model, training = _quick_model()
    else:
        model = load_default_image_model()
        training = training_record(DEFAULT_IMAGE_MODEL)
    photos = _photos(cfg, quick)
    ours = _ours(model, photos)
    formats = [f for f in reference_codecs.FORMATS if reference_codecs.available(f)]
    refs = {fmt: _reference(fmt, photos, cfg.qualities) for fmt in formats}
    matched = _matched(ours, refs)
    h, w = cfg.timing_size
    timed = next(p for p in photos.values() if p.shape[0] >= h and p.shape[1] >= w)
    results = {
        "photos": {name: list(p.shape) for name, p in photos.items()},
        "model": {"config": model.config.asdict(),
                  "fingerprint": whole_file.image_model_fingerprint(model).hex(),
                  "training": training},
        "vqkit": ours, "references": refs, "unavailable": sorted(
            set(reference_codecs.FORMATS) - set(formats)),
        "matched": matched, "acceptance": _acceptance(matched),
        "timing": _timing(model, timed[:h, :w], cfg.timing_repeats),
    }
    path = out_dir / RESULT_FILE
    write_json(path, record.record(results, config=asdict(cfg), quick=quick,
                                   threads=torch.get_num_threads()))
    _plots(out_dir, model, photos, ours, refs)
    return path


def _plots(out_dir: Path, model, photos, ours, refs) -> None:
    from ..plotting import figure, save_png

    fig, axes = figure(1, 2, size=(11, 4.2))
    for fmt, curve in [("vqkit", ours), *refs.items()]:
        for ax, key in zip(axes, ("psnr", "ssim"), strict=True):
            ax.plot([p["bits_per_pixel"] for p in curve], [p[key] for p in curve],
                    "o-" if fmt == "vqkit" else ".--", label=fmt, ms=4)
    for ax, key in zip(axes, ("PSNR of mean MSE (dB)", "mean SSIM"), strict=True):
        ax.set_xlabel("bits per pixel (whole files)")
        ax.set_ylabel(key)
        ax.axvspan(*RATE_RANGE, color="0.93", zorder=0)
        ax.set_xlim(0, 2.0)
        ax.grid(alpha=0.3)
    axes[0].legend()
    save_png(fig, out_dir / RD_PLOT)
    _crops_plot(out_dir, model, photos, ours, refs)


def _closest(curve, bpp: float) -> dict[str, Any]:
    return min(curve, key=lambda p: abs(p["bits_per_pixel"] - bpp))


def _crops_plot(out_dir: Path, model, photos, ours, refs, side: int = 160) -> None:
    from ..plotting import figure, save_png

    target = _closest(ours, 0.5)
    names = list(photos)[:3]
    columns = ["original", f"vqkit {target['stages']} stages", *refs]
    fig, axes = figure(len(names), len(columns), size=(2.6 * len(columns), 2.6 * len(names)))
    axes = np.asarray(axes).reshape(len(names), len(columns))
    for r, name in enumerate(names):
        img = photos[name]
        y = (img.shape[0] - min(side, img.shape[0])) // 2
        x = (img.shape[1] - min(side, img.shape[1])) // 2
        crop = (slice(y, y + side), slice(x, x + side))
        panels = [(img, "original"),
                  (whole_file.reconstruct(model, img, target["stages"]),
                   f"vqkit {target['bits_per_pixel']:.2f} bpp")]
        for fmt, curve in refs.items():
            q = _closest(curve, target["bits_per_pixel"])
            panels.append((reference_codecs.roundtrip(img, fmt, q["quality"])[0],
                           f"{fmt} q{q['quality']} {q['bits_per_pixel']:.2f} bpp"))
        for c, (panel, title) in enumerate(panels):
            axes[r, c].imshow(panel[crop])
            axes[r, c].set_title(title if r == 0 or c else f"{name}", fontsize=8)
            axes[r, c].axis("off")
    save_png(fig, out_dir / CROPS_PLOT)


def _render(data: dict[str, Any]) -> str:
    res = data["results"]
    refs = [f for f in reference_codecs.FORMATS if f not in res["unavailable"]]
    rows = []
    for r, p in zip(res["matched"], res["vqkit"], strict=True):
        row = [r["stages"], format_number(r["bits_per_pixel"], 3), format_number(r["psnr"], 2),
               format_number(r["ssim"], 3), format_number(p["grid_step_ratio_max"], 2)]
        for fmt in refs:
            row += [format_number(r[f"{fmt.lower()}_psnr"], 2),
                    format_number(r[f"{fmt.lower()}_ssim"], 3)]
        rows.append(row)
    head = ["stages", "bpp", "PSNR", "SSIM", "32-px grid step ratio (max)"]
    for fmt in refs:
        head += [f"{fmt} PSNR", f"{fmt} SSIM"]
    acc, t = res["acceptance"], res["timing"]
    lo, hi = RATE_RANGE
    gaps = [r["psnr_gap_jpeg"] for r in res["matched"] if lo <= r["bits_per_pixel"] <= hi]
    return "\n".join([
        f"## Image codec on held-out whole photos (`vqkit reproduce {NAME}`)", "",
        f"`results/{RESULT_FILE}`, command `{data['command']}`, commit `{data['git_commit']}`, "
        f"model fingerprint `{res['model']['fingerprint']}`. {len(res['photos'])} held-out "
        "photos as whole files; PSNR of the mean MSE, mean SSIM; each reference codec "
        "interpolated on its quality sweep at our rate.", "",
        *markdown_table(head, rows), "",
        f"Between {lo} and {hi} bpp ({acc['rates_in_range']} rates): PSNR minus JPEG's from "
        f"{format_number(min(gaps, default=float('nan')), 2)} to "
        f"{format_number(max(gaps, default=float('nan')), 2)} dB (at least JPEG's at every "
        f"rate: {'yes' if acc['psnr_at_least_jpeg'] else 'no'}); the worst SSIM gap "
        f"{format_number(acc['min_ssim_gap_jpeg'], 3)}. The grid step ratio is the largest over "
        f"the photos of the mean step across 32-pixel grid lines over the mean step elsewhere. "
        f"A {t['width']}x{t['height']} photo "
        f"encodes in {format_number(t['encode_seconds'], 2)} s and decodes in "
        f"{format_number(t['decode_seconds'], 2)} s on {data['threads']} thread(s).",
        "", f"![rate-distortion](../results/{RD_PLOT})", "",
        f"![crops](../results/{CROPS_PLOT})", ""])


REPRODUCTION = Reproduction(
    NAME, "the shipped whole-image codec against JPEG, WebP and AVIF on held-out whole photos",
    expected_minutes=1.5, quick_minutes=0.3, result_files=(RESULT_FILE,), run=run,
    report=json_report(NAME, RESULT_FILE, _render), config=ImageCodecRunConfig)
