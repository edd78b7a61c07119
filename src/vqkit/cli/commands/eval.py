"""``vqkit eval``: MSE, SNR, usage, perplexity and bits of a checkpoint on data."""

from __future__ import annotations

import argparse

from ._common import (
    add_chunk_arguments,
    in_chunks,
    load_eval_quantizer,
    print_table,
    vectors_help,
)

NAME = "eval"
HELP = "measure MSE, SNR, usage, perplexity and bits of a quantizer on vectors"
DESCRIPTION = """\
Quantize the vectors of DATA (.npy, .pt or .csv) with the quantizer in CHECKPOINT, in eval
mode, and print: mse (mean over vectors of the squared error ||x - x_hat||^2), mse per
dimension, SNR in dB (10 log10 of signal energy over error energy), codebook usage (fraction
of codewords used, mean over codebooks), perplexity (mean over codebooks) and bits per vector.
The vectors are quantized --chunk at a time.

example:
  vqkit eval vq.ckpt vectors.npy --json eval.json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint or quantizer file")
    p.add_argument("data", help=vectors_help("vectors"))
    p.add_argument("--json", metavar="PATH",
                   help="also write the numbers with provenance (default: none written)")
    p.add_argument("--plot", metavar="PNG",
                   help="draw the usage histogram of every codebook (needs matplotlib; "
                   "default: no plot)")
    add_chunk_arguments(p)


def run(args: argparse.Namespace) -> int:
    """Print (and with ``--json`` write) the quantizer's metrics on ``args.data``; with
    ``--plot``, draw its codebooks' usage histogram.

    Raises:
        FileNotFoundError / IsADirectoryError: CHECKPOINT or DATA is missing or a directory.
        ValueError: ``--threads < 1``; CHECKPOINT is unreadable or holds no quantizer; DATA
            has an unknown suffix, is unreadable, or holds no vectors, vectors of another
            dimension, NaN or Inf.
        ImportError: ``--plot`` without matplotlib.
    """
    from ...data.named import read_vectors
    from ...progress import bar_callback
    from ...training.evaluate import evaluate
    from ...training.provenance import Run, write_json

    # A dirty tree is recorded, not refused: the user's own evaluation.
    record = Run(command=getattr(args, "command_line", None), allow_dirty=True)
    quantizer = load_eval_quantizer(args)
    x = read_vectors(args.data, dim=quantizer.dim)
    result = evaluate(quantizer, x, chunk=args.chunk,
                      progress=bar_callback("eval", enabled=not args.quiet, unit="vector"))
    print_table(result, f"{type(quantizer).__name__} on {args.data}:")
    if args.json:
        write_json(args.json, record.record({"checkpoint": str(args.checkpoint),
                                             "data": str(args.data), **result}))
        print(f"results: {args.json}")
    if args.plot:
        from ...plotting import usage_histogram
        from ...training.evaluate import index_histogram

        sizes = list(quantizer.codebook_sizes)
        counts = index_histogram(in_chunks(quantizer.encode, x, args, "encode for the plot"),
                                 sizes)
        flat = [int(c) for j, size in enumerate(sizes) for c in counts[j, :size]]
        used = sum(c > 0 for c in flat)
        usage_histogram(flat, args.plot, title=f"{type(quantizer).__name__}: {used} of "
                        f"{len(flat)} codewords used ({len(sizes)} codebook(s)) on {x.shape[0]} "
                        "vectors")
        print(f"plot: {args.plot}")
    return 0
