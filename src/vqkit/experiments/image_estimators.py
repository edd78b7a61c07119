"""[vali2022nsvq] Fig. 3 analogue: a VQ-VAE image codec trained with each estimator.

STE, STE + EMA, NSVQ without and with codebook replacement (CBR), the rotation trick and
DiVeQ (with CBR, its recipe in [vali2026diveqcode]), at several bits per latent vector; PSNR and
SSIM on the held-out photos' 32x32 tiles, with JPEG and WebP at matched bits per pixel.
One VectorQuantizer (K = 2^bits, D = 64) on an 8x8 latent grid per tile, so bits per pixel
= bits / 16. Network and schedule: :data:`._image_sweep.SWEEP_MODEL` / ``SWEEP_TRAIN``.

Run: ``vqkit reproduce image-estimators`` or
``python -m vqkit.experiments.image_estimators [--quick] [--out results]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..apps.image_codec.config import QuantizerSpec
from ..training.provenance import Run, read_json
from ._image_sweep import (
    CIFAR_NOTE,
    SWEEP_MODEL,
    SWEEP_TRAIN,
    configuration,
    fmt,
    plot_rate_distortion,
    sweep,
    table,
)

NAME = "image-estimators"
DESCRIPTION = "[vali2022nsvq] Fig. 3 analogue: VQ-VAE codec, STE/EMA/NSVQ±CBR/rotation/DiVeQ"
EXPECTED_MINUTES = 5.0
RESULT_FILES = ("image_estimators.json",)
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


def run(out_dir: Path, *, quick: bool = False, seed: int = 0) -> Path:
    """Train every method at every bit rate (quick: NSVQ + CBR at 6 bits, 20 steps)."""
    out_dir = Path(out_dir)
    methods = METHODS[1:2] if quick else METHODS
    bits_list = (6,) if quick else BITS
    points = []
    for bits in bits_list:
        for label, est, learning, replace in methods:
            spec = QuantizerSpec(bits=bits, estimator=est, learning=learning)
            points.append((label, *configuration(spec, replace=replace, quick=quick, seed=seed)))
    path = out_dir / RESULT_FILES[0]
    command = f"vqkit reproduce {NAME}" + (" --quick" if quick else "")

    def draw(results: dict) -> None:
        for plot, metric in zip(PLOTS, ("psnr", "ssim"), strict=False):
            plot_rate_distortion(out_dir / plot, results, metric,
                                 "VQ-VAE estimators, natural-photo tiles (CIFAR-10 stand-in)")

    sweep(path, points, Run(command=command, seeds=[seed]), quick=quick, on_update=draw,
          extra={"model": SWEEP_MODEL, "train": SWEEP_TRAIN})
    return path


GAP_FILE = "image_estimators_gap.json"


DIM_FILE = "image_estimators_dim{dim}.json"


def run_dim_check(out_dir: Path, *, latent_dim: int = 8, bits: int = 9, seed: int = 0) -> Path:
    """STE against NSVQ + CBR at ``bits`` bits with ``latent_dim``-dimensional latents (the
    main sweep uses 64): NSVQ's surrogate leaks more information through a wider latent."""
    from dataclasses import replace

    points = []
    for label, est, learning, cbr in (METHODS[0], METHODS[1]):
        spec = QuantizerSpec(bits=bits, estimator=est, learning=learning)
        codec, tcfg = configuration(spec, replace=cbr, quick=False, seed=seed)
        points.append((label, replace(codec, latent_dim=latent_dim), tcfg))
    path = Path(out_dir) / DIM_FILE.format(dim=latent_dim)
    command = f"python -m vqkit.experiments.image_estimators --dim-check {latent_dim}"
    sweep(path, points, Run(command=command, seeds=[seed]), quick=False,
          extra={"model": {**SWEEP_MODEL, "latent_dim": latent_dim}, "train": SWEEP_TRAIN})
    return path


def run_gap_check(out_dir: Path, *, steps: int = 2400, bits: tuple[int, ...] = BITS,
                  seed: int = 0) -> Path:
    """STE against NSVQ + CBR at each of ``bits`` with ``steps`` training steps (the main
    sweep uses 800): does the gap between them depend on how long the models train?"""
    from dataclasses import replace

    points = []
    for b in bits:
        for label, est, learning, cbr in (METHODS[0], METHODS[1]):
            spec = QuantizerSpec(bits=b, estimator=est, learning=learning)
            codec, tcfg = configuration(spec, replace=cbr, quick=False, seed=seed)
            points.append((label, codec, replace(tcfg, steps=steps)))
    path = Path(out_dir) / GAP_FILE
    command = f"python -m vqkit.experiments.image_estimators --gap-check --steps {steps}"
    sweep(path, points, Run(command=command, seeds=[seed]), quick=False,
          extra={"model": SWEEP_MODEL, "train": {**SWEEP_TRAIN, "steps": steps}})
    return path


def _rows_by(results: dict) -> dict[tuple[str, int], dict]:
    return {(r["method"], r["bits"]): r for r in results["rows"]}


def _check_section(data: dict, name: str, what: str) -> list[str]:
    """A follow-up run (longer training, other latent width) as a short table."""
    text = what.format(steps=data["train"]["steps"], dim=data["model"]["latent_dim"])
    rows = [[r["method"], r["bits"], fmt(r["psnr"]), fmt(r.get("hard_psnr_same_tiles")),
             fmt(r.get("surrogate_psnr")),
             fmt(r["ssim"], 3), fmt(r["perplexity"], 1), fmt(r["train_seconds"], 0)]
            for r in data["results"]["rows"]]
    return [f"**Follow-up** (`results/{name}`, command `{data['command']}`): STE and NSVQ + CBR "
            f"{text}. PSNR: the codec's (hard) on all test tiles, and on the first 512 test "
            "tiles beside the surrogate's there (the training-mode output: for NSVQ the "
            "decoder fed `x + ||x - q|| v/||v||`).", "",
            table(["method", "bits", "PSNR", "PSNR (512)", "surrogate PSNR (512)", "SSIM",
                   "perplexity", "train s"],
                  rows), ""]


def report(results_dir: Path) -> str:
    data = read_json(Path(results_dir) / RESULT_FILES[0])
    res = data["results"]
    rows = _rows_by(res)
    methods = [m[0] for m in METHODS if any(k[0] == m[0] for k in rows)]
    bits_done = sorted({k[1] for k in rows})
    out = [
        f"## Image codec: estimators (`vqkit reproduce {NAME}`), [vali2022nsvq] Fig. 3 analogue",
        "",
        f"Source: `results/{RESULT_FILES[0]}` (command `{data['command']}`, commit "
        f"`{data['git_commit']}`, {data['environment']['threads']} thread(s) on the shared "
        f"2-core CPU, {data['wall_seconds']:.0f} s; {len(res['rows'])} of {res['planned']} "
        "configurations finished).",
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
    ]
    for metric, digits in (("psnr", 2), ("ssim", 3)):
        header = ["bits", "bpp", *methods, "JPEG", "WebP",
                  *[f"paper {m}" for m in PAPER_METHODS]]
        body = []
        for b in bits_done:
            any_row = next(r for (m, bb), r in rows.items() if bb == b)
            paper = PAPER[metric].get(b, (None,) * 4)
            body.append([b, fmt(any_row["bits_per_pixel"], 4),
                         *[fmt(rows.get((m, b), {}).get(metric), digits) for m in methods],
                         fmt(any_row[f"jpeg_{metric}_at_rate"], digits),
                         fmt(any_row[f"webp_{metric}_at_rate"], digits),
                         *[fmt(v, digits) for v in paper]])
        out += [f"**{metric.upper()}** (ours; the paper's columns are on other data):", "",
                table(header, body), ""]
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
    times = [[r["method"], r["bits"], fmt(r["train_seconds"], 0), fmt(r["perplexity"], 1)]
             for r in res["rows"]]
    threads = data["environment"]["threads"]
    out += [f"CPU training time per configuration ({threads} thread{'' if threads == 1 else 's'}, "
            "shared 2-core machine) and index "
            "perplexity on the test tiles:", "",
            table(["method", "bits", "train s", "perplexity"], times), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from ..training.threads import add_threads, set_threads

    parser = argparse.ArgumentParser(description=DESCRIPTION,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke version")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    add_threads(parser)
    parser.add_argument("--gap-check", action="store_true",
                        help="only STE vs NSVQ + CBR at every bit rate, trained for --steps steps")
    parser.add_argument("--steps", type=int, default=2400, help="training steps of --gap-check")
    parser.add_argument("--dim-check", type=int, default=0, metavar="D",
                        help="only STE vs NSVQ + CBR at 9 bits with D-dimensional latents")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.dim_check:
        print(run_dim_check(args.out, latent_dim=args.dim_check, seed=args.seed))
        return 0
    if args.gap_check:
        print(run_gap_check(args.out, steps=args.steps, seed=args.seed))
        return 0
    path = run(args.out, quick=args.quick, seed=args.seed)
    print(report(args.out) if path.exists() else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
