"""``vqkit demo``: the main job, a tour of the estimators on real photo patches."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ...training.threads import add_threads, set_threads
from ._common import positive_int

NAME = "demo"
HELP = "train a 1024-codeword VQ with each estimator on photo patches and compare them"
DESCRIPTION = """\
Train a 1024-codeword VectorQuantizer on 32x32 grey patches of the photographs bundled with
scikit-image (split into train and test by photo), once per estimator: NSVQ with dead-code
replacement, STE, STE with an EMA codebook, the rotation trick and DiVeQ, all for the same
number of steps from the same initial codebook. Prints a table (test MSE, PSNR, codebook usage,
perplexity, seconds) and writes demo.json and demo_test_mse.png into --out.

Then a short second part on 8x8 patches: a 256-codeword VQ against residual, product and
additive VQ with 4 codebooks of 64 (24 bits), and a space-filling VQ whose neighbouring curve
positions decode to similar patches; the residual VQ's test codes go through a codes file and
back exactly. It writes tour.json and tour_test.vqc (--tour-steps 0 skips it).

Takes about 2 minutes with the default single thread (--threads 2: about 1 minute on 2
idle cores, much longer on a busy machine)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...apps.demo import DemoConfig

    d = DemoConfig()
    parser.add_argument("--out", type=Path, default=Path("out/demo"),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--steps", type=positive_int, default=d.steps,
                        help="training steps per estimator (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed,
                        help="random seed (default: %(default)s)")
    add_threads(parser)
    parser.add_argument("--tour-steps", type=int, default=None,
                        help="training steps of each multi-codebook / SFVQ quantizer in the "
                        "second part (0 skips it; default: 200, or --steps if smaller)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run(args: argparse.Namespace) -> int:
    """Train each estimator's VQ on photo patches, print the table and write the results
    (then the multi-codebook / SFVQ tour unless ``--tour-steps 0``).

    Raises:
        ValueError: ``--threads < 1``.
        ImportError: scikit-image (the photos) or matplotlib (the plots) is not installed.
    """
    from ...apps.demo import DemoConfig, format_table, run_demo
    from ...training.provenance import read_json

    threads = set_threads(args.threads)
    cfg = dataclasses.replace(DemoConfig(), steps=args.steps, seed=args.seed)
    path = run_demo(args.out, cfg, progress=not args.no_progress)
    rows = read_json(path)["results"]
    print(f"\n{cfg.codebook_size}-codeword VQ of {cfg.patch}x{cfg.patch} photo patches, "
          f"{cfg.steps} steps each, {threads} thread(s):\n")
    print(format_table(rows))
    print("\nThe quantizer is fitted alone here, so STE and the rotation trick train the codebook"
          "\nthrough the same codebook loss and agree; they differ in the gradient they pass to"
          "\nan encoder. NSVQ and DiVeQ move the codebook through their own gradient.")
    print(f"\nwrote {path} and {path.parent / 'demo_test_mse.png'}")
    if args.tour_steps is None:
        args.tour_steps = min(200, args.steps)
    if args.tour_steps > 0:
        _tour(args)
    return 0


def _tour(args: argparse.Namespace) -> None:
    from ...apps.tour import format_tour, run_tour
    from ...training.provenance import Run, write_json

    record = Run(command=getattr(args, "command_line", None), seeds=[args.seed],
                 allow_dirty=True)  # a dirty tree is recorded, not refused: a demo
    result = run_tour(args.out, steps=args.tour_steps, seed=args.seed,
                      progress=not args.no_progress)
    path = write_json(Path(args.out) / "tour.json", record.record(result))
    print(f"\nMulti-codebook and space-filling VQ of 8x8 photo patches, {args.tour_steps} "
          "steps each:\n")
    print(format_tour(result))
    print(f"\nwrote {path}")
