"""vqkit index: build a FAISS index from a trained quantizer, and search it.

examples:
  vqkit fit base.npy --quantizer avq --num-codebooks 8 --bits 8 --beam 8 -o avq.ckpt
  vqkit index build avq.ckpt base.npy -o base.faiss
  vqkit index search base.faiss queries.npy -k 10 --out neighbours.npy

`build` encodes the vectors with the quantizer itself (its own encoder and beam, never FAISS's)
and stores the codes in a flat FAISS index: IndexPQ (pvq), IndexResidualQuantizer (rvq) or
IndexLocalSearchQuantizer (avq, which FAISS only searches). `search` is FAISS's asymmetric
search: each raw query against every decoded database vector, squared L2. Needs faiss
(pip install faiss-cpu, or the vqkit extra faiss).
"""

from __future__ import annotations

import argparse
from typing import Any

from ...training.threads import add_threads, set_threads
from ._common import positive_int, vectors_help

NAME = "index"
HELP = "build a FAISS index from a trained quantizer (pvq, rvq, avq) and search it"


def _write_index(index: Any, path: str) -> None:
    """``faiss.serialize_index`` written atomically (no half-written index on a crash)."""
    from ...apps.ann.faiss_bridge import require_faiss
    from ...io.atomic import atomic_write

    data = require_faiss().serialize_index(index)
    atomic_write(path, lambda f: f.write(data.tobytes()))


def _read_index(path: str) -> Any:
    """The FAISS index in ``path``.

    Raises:
        FileNotFoundError / IsADirectoryError / ValueError: as :func:`input_file`, or the
            file is not a FAISS index.
    """
    import numpy as np

    from ...apps.ann.faiss_bridge import require_faiss
    from ...io.paths import input_file

    faiss = require_faiss()
    raw = np.fromfile(input_file(path, "FAISS index", "make one with `vqkit index build`"),
                      dtype=np.uint8)
    try:
        return faiss.deserialize_index(raw)
    except RuntimeError as err:
        raise ValueError(f"{path} is not a FAISS index: "
                         f"{str(err).strip().splitlines()[-1] if str(err) else err}") from None


def _build(args: argparse.Namespace) -> int:
    import torch

    from ...apps.ann.faiss_bridge import add_encoded, require_faiss, to_faiss
    from ...data.named import read_vectors
    from ...io.paths import output_file
    from ._common import in_chunks, load_eval_quantizer

    require_faiss()  # before any work: a missing faiss names its package
    output_file(args.out, inputs=(args.quantizer, args.vectors))
    args.checkpoint = args.quantizer
    quantizer = load_eval_quantizer(args)
    try:
        index = to_faiss(quantizer)
    except TypeError as err:  # FSQ, LFQ, ...: no FAISS equivalent
        raise ValueError(f"{args.quantizer}: {err}; FSQ/LFQ/BSQ/SFVQ have no FAISS "
                         "equivalent (docs/ann.md)") from None
    vectors = read_vectors(args.vectors, dim=quantizer.dim)
    indices = in_chunks(quantizer.encode, vectors, args, "encode")
    add_encoded(index, indices.to(torch.long))
    _write_index(index, args.out)
    print(f"{args.out}: {type(index).__name__} of {index.ntotal} vectors, "
          f"{index.sa_code_size()} bytes each")
    return 0


def _search(args: argparse.Namespace) -> int:
    import numpy as np

    from ...apps.ann.faiss_bridge import search
    from ...data.named import read_vectors
    from ...io.atomic import atomic_write
    from ...io.paths import output_file

    set_threads(args.threads)
    outputs = [p for p in (args.out, args.distances) if p is not None]
    for path in outputs:
        output_file(path, inputs=(args.index, args.queries))
    index = _read_index(args.index)
    queries = read_vectors(args.queries, dim=index.d)
    distances, ids = search(index, queries, args.k)

    def save(array: np.ndarray) -> Any:
        return lambda f: np.save(f, array, allow_pickle=False)

    atomic_write(args.out, save(ids.numpy()))
    if args.distances is not None:
        atomic_write(args.distances, save(distances.numpy()))
    print(f"{args.out}: the {args.k} nearest of {index.ntotal} database vectors for "
          f"{len(queries)} queries, ({len(queries)}, {args.k}) int64")
    return 0


def add_subcommands(sub: Any) -> None:
    """``vqkit index build`` and ``vqkit index search``."""
    p = sub.add_parser(NAME, help=HELP, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="index_command", metavar="SUBCOMMAND")
    b = cmds.add_parser("build", help="encode vectors with a quantizer into a flat FAISS index",
                        description="Encode VECTORS with the quantizer of QUANTIZER (a `vqkit "
                        "fit` checkpoint or a vqkit.save file: pvq, rvq or avq with 2**bits "
                        "codewords per codebook) and write a flat FAISS index holding their "
                        "codes.")
    b.add_argument("quantizer", help="a vqkit checkpoint or quantizer file")
    b.add_argument("vectors", help=vectors_help("the database (N, D)"))
    b.add_argument("-o", "--out", required=True, help="the index file to write")
    b.add_argument("--chunk", type=positive_int, default=65536, metavar="N",
                   help="vectors encoded at once (default: %(default)s)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_threads(b)
    b.set_defaults(func=_build)
    s = cmds.add_parser("search", help="the k nearest database vectors of each query",
                        description="Search INDEX (from `vqkit index build`) for the K "
                        "nearest database vectors of each query (squared L2 to the decoded "
                        "vectors) and write their ids as a (Q, K) int64 .npy file.")
    s.add_argument("index", help="a FAISS index file")
    s.add_argument("queries", help=vectors_help("query vectors (Q, D)"))
    s.add_argument("-k", type=positive_int, default=10, help="neighbours per query "
                   "(default: %(default)s)")
    s.add_argument("--out", required=True, help="the ids, (Q, K) int64 .npy")
    s.add_argument("--distances", help="also write the squared distances, (Q, K) float32 .npy "
                   "(default: not written)")
    add_threads(s)
    s.set_defaults(func=_search)
