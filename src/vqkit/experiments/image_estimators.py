"""[vali2022nsvq] Fig. 3 analogue: a VQ-VAE image codec trained with each estimator.

STE, STE + EMA, NSVQ without and with codebook replacement (CBR), the rotation trick and
DiVeQ (with CBR, its recipe in [vali2026diveqcode]), at several bits per latent vector; PSNR and
SSIM on the held-out photos' 32x32 tiles, with JPEG and WebP at matched bits per pixel.
One VectorQuantizer (K = 2^bits, D = 64) on an 8x8 latent grid per tile, so bits per pixel
= bits / 16. Network and schedule: :data:`._image_sweep.SWEEP_MODEL` / ``SWEEP_TRAIN``.

Run: ``vqkit reproduce image-estimators``; the follow-ups ``--variant gap-check`` (STE against
NSVQ + CBR trained 2 400 steps) and ``--variant dim-check-8`` / ``dim-check-64`` (the same at 9
bits with 8- or 64-dimensional latents).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..apps.image_codec.config import QuantizerSpec, TrainConfig
from ..reporting import format_number, markdown_table
from ..training.provenance import Run, read_json
from ._image_sweep import (
    CIFAR_NOTE,
    QUICK_TRAIN,
    SWEEP_MODEL,
    SWEEP_TRAIN,
    configuration,
    metric_tables,
    plotter,
    rows_by,
    source_paragraph,
    sweep,
    times_table,
)
from .reproduction import Reproduction, Variant

NAME = "image-estimators"
RESULT_FILE = "image_estimators.json"
PLOTS = ("image_estimators_psnr.png", "image_estimators_ssim.png")

#: (label, estimator, learning, codebook replacement)
METHODS = (
    ("STE", "ste", "gradient", False),
    ("NSVQ", "nsvq", "gradient", True),
    ("STE + EMA", "ste", "ema", False),
    ("NSVQ w/o CBR", "nsvq", "gradient", False),
    ("Rotation trick", "rotation", "gradient", False),
    ("DiVeQ", "diveq", "gradient", True),
)
#: Bits per latent vector, in the order they run (the acceptance point, 9 bits, first).
BITS = (9, 11, 6)

#: [vali2022nsvq] Fig. 3 (results JSON of [vali2022nsvqcode]); data set unknown.
PAPER = {
    "psnr": {6: (23.15, 23.03, 22.86, 22.95), 7: (23.50, 23.47, 23.34, 23.57),
             8: (23.68, 23.88, 23.67, 24.16), 9: (23.70, 23.96, 23.78, 24.60),
             10: (23.74, 24.28, 24.03, 24.96), 11: (23.67, 24.26, 24.02, 25.22)},
    "ssim": {6: (0.779, 0.777, 0.769, 0.774), 7: (0.798, 0.803, 0.791, 0.799),
             8: (0.810, 0.822, 0.804, 0.822), 9: (0.811, 0.829, 0.809, 0.840),
             10: (0.812, 0.843, 0.819, 0.854), 11: (0.808, 0.844, 0.819, 0.865)},
}
PAPER_METHODS = ("STE", "STE + EMA", "NSVQ w/o CBR", "NSVQ")


def run(out_dir: Path, *, quick: bool = False, seed: int = 0, allow_dirty: bool = False
        ) -> Path:
    """Train every method at every bit rate (quick: NSVQ + CBR at 6 bits, 20 steps)."""
    record = Run(command=f"vqkit reproduce {NAME}" + (" --quick" if quick else ""),
                 seeds=[seed], allow_dirty=allow_dirty)
    out_dir = Path(out_dir)
    methods = METHODS[1:2] if quick else METHODS
    bits_list = (6,) if quick else BITS
    points = []
    for bits in bits_list:
        for label, est, learning, replace in methods:
            spec = QuantizerSpec(bits=bits, estimator=est, learning=learning)
            points.append((label, *configuration(spec, replace=replace, quick=quick, seed=seed)))
    path = out_dir / RESULT_FILE
    draw = plotter(out_dir, PLOTS, "VQ-VAE estimators, natural-photo tiles (CIFAR-10 stand-in)")
    sweep(path, points, record, quick=quick, on_update=draw,
          extra={"model": SWEEP_MODEL, "train": SWEEP_TRAIN})
    return path


GAP_FILE = "image_estimators_gap.json"
DIM_FILE = "image_estimators_dim{dim}.json"
#: Bits of the variants' smoke runs (``--quick``).
QUICK_BITS = (6,)


def _ste_and_nsvq(bits: int, *, quick: bool, seed: int):
    """The (label, codec, train) points of STE and NSVQ + CBR at ``bits``."""
    for label, est, learning, cbr in (METHODS[0], METHODS[1]):
        spec = QuantizerSpec(bits=bits, estimator=est, learning=learning)
        yield (label, *configuration(spec, replace=cbr, quick=quick, seed=seed))


def _variant_command(variant: str, quick: bool) -> str:
    return f"vqkit reproduce {NAME} --variant {variant}" + (" --quick" if quick else "")


def run_dim_check(out_dir: Path, *, latent_dim: int = 8, bits: int = 9, quick: bool = False,
                  seed: int = 0, allow_dirty: bool = False) -> Path:
    """STE against NSVQ + CBR at ``bits`` bits with ``latent_dim``-dimensional latents (the
    main sweep uses 64): NSVQ's surrogate leaks more information through a wider latent.
    ``quick``: the smoke version (6 bits, the quick schedule)."""
    from dataclasses import replace

    record = Run(command=_variant_command(f"dim-check-{latent_dim}", quick), seeds=[seed],
                 allow_dirty=allow_dirty)
    points = [(label, replace(codec, latent_dim=latent_dim), tcfg) for label, codec, tcfg
              in _ste_and_nsvq(QUICK_BITS[0] if quick else bits, quick=quick, seed=seed)]
    path = Path(out_dir) / DIM_FILE.format(dim=latent_dim)
    sweep(path, points, record, quick=quick,
          extra={"model": {**SWEEP_MODEL, "latent_dim": latent_dim},
                 "train": QUICK_TRAIN if quick else SWEEP_TRAIN})
    return path


def run_gap_check(out_dir: Path, *, steps: int = 2400, bits: tuple[int, ...] = BITS,
                  quick: bool = False, seed: int = 0, allow_dirty: bool = False) -> Path:
    """STE against NSVQ + CBR at each of ``bits`` with ``steps`` training steps (the main
    sweep uses 800): does the gap between them depend on how long the models train?
    ``quick``: the smoke version (6 bits, the quick schedule with 3 times its steps)."""
    from dataclasses import replace

    record = Run(command=_variant_command("gap-check", quick), seeds=[seed],
                 allow_dirty=allow_dirty)
    if quick:
        steps, bits = 3 * QUICK_TRAIN["steps"], QUICK_BITS
    points = [(label, codec, replace(tcfg, steps=steps)) for b in bits
              for label, codec, tcfg in _ste_and_nsvq(b, quick=quick, seed=seed)]
    path = Path(out_dir) / GAP_FILE
    sweep(path, points, record, quick=quick,
          extra={"model": SWEEP_MODEL,
                 "train": {**(QUICK_TRAIN if quick else SWEEP_TRAIN), "steps": steps}})
    return path


def _check_section(data: dict, name: str, what: str) -> list[str]:
    """A follow-up run (longer training, other latent width) as a short table."""
    text = what.format(steps=data["train"]["steps"], dim=data["model"]["latent_dim"])
    rows = [[r["method"], r["bits"], format_number(r["psnr"]),
             format_number(r.get("hard_psnr_same_tiles")), format_number(r.get("surrogate_psnr")),
             format_number(r["ssim"], 3), format_number(r["perplexity"], 1),
             format_number(r["train_seconds"], 0)]
            for r in data["results"]["rows"]]
    return [f"**Follow-up** (`results/{name}`, command `{data['command']}`): STE and NSVQ + CBR "
            f"{text}. PSNR: the codec's (hard) on all test tiles, and on the first 512 test "
            "tiles beside the surrogate's there (the training-mode output: for NSVQ the "
            "decoder fed `x + ||x - q|| v/||v||`).", "",
            *markdown_table(["method", "bits", "PSNR", "PSNR (512)", "surrogate PSNR (512)",
                             "SSIM", "perplexity", "train s"], rows), ""]


def report(results_dir: Path) -> str:
    data = read_json(Path(results_dir) / RESULT_FILE)
    res = data["results"]
    rows = rows_by(res)
    methods = [m[0] for m in METHODS if any(k[0] == m[0] for k in rows)]
    bits_done = sorted({k[1] for k in rows})
    out = [
        f"## Image codec: estimators (`vqkit reproduce {NAME}`), [vali2022nsvq] Fig. 3 analogue",
        "",
        source_paragraph(data, RESULT_FILE),
        "",
        CIFAR_NOTE,
        "",
        f"Network: conv VQ-VAE, hidden {data['model']['hidden']}, 8x8 latent grid of "
        f"D = {data['model']['latent_dim']} per 32x32 tile; {data['train']['steps']} Adam steps "
        f"of batch {data['train']['batch_size']} (lr {data['train']['lr']}); CBR every 100 steps "
        f"(threshold 0.01, stopped 200 steps before the end). Test: {res['test_tiles']} tiles. "
        "bpp = bits / 16 (payload). JPEG/WebP: the same tiles, file bits, interpolated at our bpp.",
        "",
        "![PSNR](../results/image_estimators_psnr.png) "
        "![SSIM](../results/image_estimators_ssim.png)",
        "",
        *metric_tables(res, methods, PAPER, PAPER_METHODS,
                       "the paper's columns are on other data"),
    ]
    gaps = [(b, rows[("NSVQ", b)]["psnr"] - rows[("STE", b)]["psnr"]) for b in bits_done
            if ("NSVQ", b) in rows and ("STE", b) in rows]
    if gaps:
        out += ["NSVQ with CBR minus STE, PSNR: " + ", ".join(f"{g:+.2f} dB at {b} bits"
                                                              for b, g in gaps)
                + " (paper: +0.90 dB at 9 bits, +1.55 dB at 11 bits).", ""]
    checks = [(GAP_FILE, "trained for {steps} steps instead of 800")]
    checks += [(p.name, "with {dim}-dimensional latents")
               for p in sorted(Path(results_dir).glob(DIM_FILE.format(dim="*")))]
    for name, what in checks:
        extra = Path(results_dir) / name
        if extra.is_file():
            out += _check_section(read_json(extra), name, what)
    out += times_table(data, "index perplexity")
    return "\n".join(out)


REPRODUCTION = Reproduction(
    NAME, "[vali2022nsvq] Fig. 3 analogue: VQ-VAE codec, STE/EMA/NSVQ±CBR/rotation/DiVeQ",
    expected_minutes=5.0, quick_minutes=0.06, result_files=(RESULT_FILE,), run=run,
    report=report, config=TrainConfig,
    variants={
        "gap-check": Variant("STE vs NSVQ + CBR at every bit rate, trained 2400 steps instead "
                             f"of 800 (writes {GAP_FILE})", run_gap_check),
        **{f"dim-check-{d}": Variant(
            f"STE vs NSVQ + CBR at 9 bits with {d}-dimensional latents (writes "
            f"{DIM_FILE.format(dim=d)})", partial(run_dim_check, latent_dim=d)) for d in (8, 64)},
    })
