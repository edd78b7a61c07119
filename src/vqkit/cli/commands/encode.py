"""``vqkit encode``: vectors -> a codes file, with a checkpoint's quantizer."""

from __future__ import annotations

import argparse

from ._common import (
    add_chunk_arguments,
    in_chunks,
    load_eval_quantizer,
    nonnegative_int,
    vectors_help,
)

NAME = "encode"
HELP = "compress vectors (.npy/.pt/.csv) into a codes file with a trained quantizer"
DESCRIPTION = """\
Encode the vectors of INPUT (.npy, .pt or .csv; shape (..., D)) with the quantizer in
CHECKPOINT (a `vqkit fit` checkpoint or a `vqkit.save` file) and write the packed indices to
OUTPUT, a codes file (docs/formats.md) that records the quantizer's digest so it is only ever
decoded with the same quantizer. The vectors are encoded --chunk at a time (the same indices
as all at once).

example:
  vqkit encode vq.ckpt vectors.npy vectors.vqc
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_chunk_arguments(p, ("checkpoint", "checkpoint or quantizer file"),
                        ("input", vectors_help("vectors (..., D)")),
                        ("output", "codes file to write"))
    p.add_argument("--position-bits", type=nonnegative_int, default=None, metavar="B",
                   help="space-filling VQ only: store each curve position on a grid of step "
                   "2**-B (0: the nearest corner point, at the quantizer's bits) instead of "
                   "64-bit floats (default: floats, exact)")


def run(args: argparse.Namespace) -> int:
    """Encode the vectors of ``args.input`` with ``args.checkpoint``'s quantizer into the codes
    file ``args.output``.

    Raises:
        FileNotFoundError / IsADirectoryError: CHECKPOINT or INPUT is missing or a directory.
        ValueError: ``--threads < 1``; CHECKPOINT is unreadable or holds no quantizer; INPUT
            has an unknown suffix, is unreadable, or holds no vectors, vectors of another
            dimension, NaN or Inf; ``--position-bits`` for a quantizer without curve
            positions, or above 32.
        ValueError / OSError: OUTPUT is an input, not a regular file, in a missing or
            read-only folder, or cannot be written (a full disk).
    """
    from ...data.named import read_vectors
    from ...io.codes_file import write_codes
    from ...io.paths import output_file

    output_file(args.output, inputs=(args.checkpoint, args.input))
    quantizer = load_eval_quantizer(args)
    x = read_vectors(args.input, dim=quantizer.dim, flatten=False)
    indices = in_chunks(quantizer.encode, x, args, "encode")
    codes = write_codes(args.output, indices, quantizer, position_bits=args.position_bits)
    n = indices.numel() // max(1, len(codes.codebook_sizes))
    raw = x.numel() * 4
    print(f"encoded {n} vectors of dimension {quantizer.dim} -> {args.output} "
          f"({codes.payload_bytes} payload bytes, {8 * codes.payload_bytes / max(n, 1):.2f} "
          f"bits/vector, {raw / max(codes.payload_bytes, 1):.1f}x smaller than float32)")
    return 0
