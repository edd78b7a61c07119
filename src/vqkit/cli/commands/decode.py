"""``vqkit decode``: a codes file -> vectors, with the checkpoint that made it."""

from __future__ import annotations

import argparse

from ...training.threads import add_threads, set_threads

NAME = "decode"
HELP = "reconstruct vectors from a codes file (writes .npy/.pt/.csv)"
DESCRIPTION = """\
Decode the codes file CODES with the quantizer in CHECKPOINT and write the reconstructed
vectors to OUTPUT (.npy or .pt keep the values exactly; .csv writes 9 significant digits).
The codes file's quantizer digest must match the checkpoint's: a codes file is never decoded
with another quantizer. The output equals the library's `quantizer.decode(indices)` exactly.

example:
  vqkit decode vq.ckpt vectors.vqc reconstructed.npy
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint or quantizer file that wrote the codes")
    p.add_argument("codes", help="codes file")
    p.add_argument("output", help="vectors file to write: .npy, .pt or .csv")
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from ...data.vectors import save_vectors
    from ...io.codes_file import read_codes
    from ...training.checkpoint import load_quantizer

    set_threads(args.threads)
    quantizer, _ = load_quantizer(args.checkpoint)
    quantizer.eval()
    codes = read_codes(args.codes, quantizer)
    if codes.dim != quantizer.dim:
        raise ValueError(f"{args.codes} holds {codes.dim}-d codes, quantizer has {quantizer.dim}")
    with torch.no_grad():
        x_hat = quantizer.decode(codes.indices)
    save_vectors(x_hat, args.output)
    print(f"decoded {tuple(x_hat.shape)} -> {args.output}")
    return 0
