"""``vqkit decode``: a codes file -> vectors, with the checkpoint that made it."""

from __future__ import annotations

import argparse

from ._common import add_chunk_arguments, in_chunks, load_eval_quantizer

NAME = "decode"
HELP = "reconstruct vectors from a codes file (writes .npy/.pt/.csv)"
DESCRIPTION = """\
Decode the codes file CODES with the quantizer in CHECKPOINT and write the reconstructed
vectors to OUTPUT (.npy or .pt keep the values exactly; .csv writes 9 significant digits).
The codes file's quantizer digest must match the checkpoint's: a codes file is never decoded
with another quantizer. The output equals the library's `quantizer.decode(indices)` exactly,
whatever --chunk.

example:
  vqkit decode vq.ckpt vectors.vqc reconstructed.npy
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_chunk_arguments(p, ("checkpoint", "checkpoint or quantizer file that wrote the codes"),
                        ("codes", "codes file"),
                        ("output", "vectors file to write: .npy, .pt or .csv"))


def run(args: argparse.Namespace) -> int:
    """Decode ``args.codes`` with ``args.checkpoint``'s quantizer into ``args.output``.

    Raises:
        FileNotFoundError / IsADirectoryError: CHECKPOINT or CODES is missing or a directory.
        ValueError: ``--threads < 1``; CHECKPOINT is unreadable or holds no quantizer; CODES
            is not a valid codes file of that quantizer (digest, checksum, header) or holds
            codes of another dimension; or OUTPUT's suffix is not .npy, .pt or .csv.
        ValueError / OSError: OUTPUT is an input, not a regular file, in a missing or
            read-only folder, or cannot be written (a full disk).
    """
    from ...data.vectors import save_vectors
    from ...io.codes_file import read_codes
    from ...io.paths import output_file

    output_file(args.output, inputs=(args.checkpoint, args.codes))
    quantizer = load_eval_quantizer(args)
    codes = read_codes(args.codes, quantizer)
    if codes.dim != quantizer.dim:
        raise ValueError(f"{args.codes} holds {codes.dim}-d codes, quantizer has {quantizer.dim}")
    x_hat = in_chunks(quantizer.decode, codes.indices, args, "decode",
                      tail=len(codes.index_shape))
    save_vectors(x_hat, args.output)
    print(f"decoded {tuple(x_hat.shape)} -> {args.output}")
    return 0
