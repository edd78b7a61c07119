"""``vqkit info``: what a checkpoint, quantizer file or codes file holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import print_table

NAME = "info"
HELP = "show what a checkpoint, quantizer file, codes file, .vqi or .vqs file holds"
DESCRIPTION = """\
Print the contents of FILE: for a checkpoint or quantizer file, the quantizer's type,
configuration, codebook sizes, bits per vector, digest and (for checkpoints) the training
step, settings and last meters; for a codes file, its header (shape, codebook sizes, packing,
the digest of the quantizer it needs) after checking its checksum; for a .vqi image or .vqs
speech file, its header fields after checking its checksum.

examples:
  vqkit info vq.ckpt
  vqkit info vectors.vqc
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="checkpoint, quantizer file (vqkit.save) or codes file")


def _codes_info(path: Path) -> None:
    from ...io.codes_file import read_codes_header

    codes = read_codes_header(path)
    n = 1
    for s in codes.shape:
        n *= s
    print_table({
        "kind": "codes file (checksum ok)",
        "vectors": n,
        "shape": list(codes.shape),
        "dim": codes.dim,
        "index_shape": list(codes.index_shape),
        "codebook_sizes": codes.codebook_sizes,
        "packing": codes.packing,
        "payload_bytes": codes.payload_bytes,
        "quantizer": codes.quantizer_type,
        "quantizer_digest": codes.quantizer_digest,
    }, f"{path}:")


def _container_info(path: Path, kind: str) -> None:
    """A ``.vqi`` (tile or whole-image) or ``.vqs`` file: its header fields after the
    container's checks."""
    from ...apps.image_codec.codec import VQI, read_header
    from ...apps.image_codec.whole_file import VQIW, read_image_header
    from ...apps.speech.codec import VQS

    fmt = {"vqi": VQI, "vqiw": VQIW, "vqs": VQS}[kind]
    container = fmt.read(path)
    header = dict(container.header)
    check = {"vqi": read_header, "vqiw": read_image_header}.get(kind)
    if check is not None:
        check(path.read_bytes(), str(path))  # the header must describe an image
    rows = {"kind": f"{fmt.name} (checksum ok)", "version": container.version}
    rows.update({k: v.hex() if isinstance(v, bytes) else v for k, v in header.items()})
    rows["payload_bytes"] = len(container.payload)
    print_table(rows, f"{path}:")


def _quantizer_info(path: Path) -> None:
    from ...io.fingerprint import quantizer_digest
    from ...training.checkpoint import load_quantizer

    quantizer, checkpoint = load_quantizer(path)
    sizes = list(quantizer.codebook_sizes)
    rows = {
        "kind": "training checkpoint" if checkpoint is not None else "quantizer file",
        "quantizer": type(quantizer).__name__,
        "dim": quantizer.dim,
        "codebook_sizes": sizes,
        "bits_per_vector": quantizer.bits_per_vector,
        "parameters": sum(p.numel() for p in quantizer.parameters()),
        "digest": quantizer_digest(quantizer),
    }
    for key, value in quantizer.config().items():
        rows[f"config.{key}"] = value
    if checkpoint is not None:
        rows["step"] = checkpoint.step
        rows["data"] = f"{checkpoint.data.get('path')} {checkpoint.data.get('shape')}"
        for key, value in checkpoint.fit.items():
            if key != "loop":
                rows[f"fit.{key}"] = value
        history = checkpoint.meters.get("history") or []
        for key, value in (history[-1] if history else {}).items():
            rows[f"last.{key}"] = value
    print_table(rows, f"{path}:")


def run(args: argparse.Namespace) -> int:
    """Print what ``args.file`` holds (a codes file is told by its magic bytes).

    Raises:
        FileNotFoundError: FILE does not exist.
        IsADirectoryError: FILE is a directory.
        ValueError: FILE is empty, a corrupt codes, .vqi or .vqs file, or none of these, a
            checkpoint or a quantizer file; or a FIFO, a device or a symbolic-link loop.
    """
    from ...io.codes_file import MAGIC
    from ...io.paths import input_file

    path = input_file(args.file)
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
    if not head:
        raise ValueError(f"{path} is empty: no codes, .vqi, .vqs, checkpoint or quantizer file")
    if head == MAGIC:
        _codes_info(path)
    elif head.startswith(b"VQI\x01"):
        _container_info(path, "vqi")
    elif head.startswith(b"VQIW"):
        _container_info(path, "vqiw")
    elif head.startswith(b"VQS1"):
        _container_info(path, "vqs")
    else:
        _quantizer_info(path)
    return 0
