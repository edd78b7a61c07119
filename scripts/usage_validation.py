"""One point of the codebook-usage schedule search, on the validation split (never the test set).

Trains one method of ``vqkit.experiments.codebook_usage`` at one size on the first 50,000
Fashion-MNIST training images and measures usage on the last 10,000; prints one line. Used to
choose the reproduction's schedule and to try alternatives (learning rate, steps, batch, width
of the autoencoder) without looking at the test images.

Example::

    OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/usage_validation.py FSQ 16384 \\
        --steps 8000 --batch 16 --lr 2e-3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from vqkit.experiments import codebook_usage as cu


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("method", choices=cu.METHODS)
    p.add_argument("codes", type=int, choices=[size for size, _ in cu.SIZES])
    p.add_argument("--steps", type=int, default=cu.CONFIG.steps)
    p.add_argument("--batch", type=int, default=cu.CONFIG.batch)
    p.add_argument("--lr", type=float, default=cu.CONFIG.lr)
    p.add_argument("--hidden", type=int, default=cu.CONFIG.hidden)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--levels", type=lambda text: tuple(int(v) for v in text.split(",")),
                   help="FSQ levels instead of the reproduction's, e.g. 16,16,8,8")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    levels = args.levels or dict(cu.SIZES)[args.codes]
    images = cu._images("train", 60_000)
    train, validation = images[:50_000], images[50_000:]
    cfg = replace(cu.CONFIG, steps=args.steps, batch=args.batch, lr=args.lr, hidden=args.hidden,
                  train_usage_images=1)
    start = time.perf_counter()
    row = cu.run_point(args.method, args.codes, levels, train, validation, cfg, args.seed)
    print(f"{args.method} K={row['codes']} levels={levels} steps={args.steps} "
          f"batch={args.batch} lr={args.lr} hidden={args.hidden}: "
          f"validation usage {row['usage']:.4f}, "
          f"perplexity {row['perplexity']:.0f}, MSE {row['test_mse']:.5f} "
          f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
