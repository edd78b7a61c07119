"""vqkit index: build a FAISS index from a trained quantizer, and search it.

examples:
  vqkit fit base.npy --quantizer avq --num-codebooks 8 --bits 8 --beam 8 -o avq.ckpt
  vqkit index build avq.ckpt base.npy -o base.faiss
  vqkit index build avq.ckpt base.npy -o base-ivf.faiss --ivf 1024 --nprobe 16
  vqkit index search base.faiss queries.npy -k 10 --out neighbours.npy
  vqkit index search base-ivf.faiss queries.npy -k 10 --nprobe 64 --out neighbours.npy

`build` encodes the vectors with the quantizer itself (its own encoder and beam, never FAISS's)
and stores the codes in a flat FAISS index: IndexPQ (pvq), IndexResidualQuantizer (rvq) or
IndexLocalSearchQuantizer (avq, which FAISS only searches). With --ivf NLIST it writes an IVF
index instead (IndexIVFPQ, IndexIVFResidualQuantizer, IndexIVFLocalSearchQuantizer): NLIST
lists around the centroids of vqkit's k-means of the vectors, each vector's codes (of the raw
vector: by_residual off) in the list of its nearest centroid; a query scans the lists of its
nprobe nearest centroids. `search` is FAISS's asymmetric search: each raw query against the
decoded database vectors it scans, squared L2. Needs faiss (pip install faiss-cpu, or the
vqkit extra faiss).
"""

from __future__ import annotations

import argparse
from typing import Any

from ...training.threads import add_threads, set_threads
from ._common import nonnegative_int, positive_int, vectors_help

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

    from ...apps.ann.faiss_bridge import add_encoded, codebook_bits, require_faiss, to_faiss
    from ...apps.ann.ivf import add_to_lists
    from ...data.named import read_vectors
    from ...io.paths import output_file
    from ._common import in_chunks, load_eval_quantizer

    require_faiss()  # before any work: a missing faiss names its package
    ivf = _ivf_settings(args)
    output_file(args.out, inputs=(args.quantizer, args.vectors))
    args.checkpoint = args.quantizer
    quantizer = load_eval_quantizer(args)
    try:
        codebook_bits(quantizer)
    except TypeError as err:  # FSQ, LFQ, ...: no FAISS equivalent
        raise ValueError(f"{args.quantizer}: {err}; FSQ/LFQ/BSQ/SFVQ have no FAISS "
                         "equivalent (docs/ann.md)") from None
    vectors = read_vectors(args.vectors, dim=quantizer.dim)
    index = to_faiss(quantizer) if ivf is None else _empty_ivf(quantizer, vectors, args, *ivf)
    indices = in_chunks(quantizer.encode, vectors, args, "encode").to(torch.long)
    if ivf is None:
        add_encoded(index, indices)
        layout = f"{index.sa_code_size()} bytes each"
    else:
        add_to_lists(index, vectors, indices)
        layout = (f"{index.code_size} code bytes each in {index.nlist} lists "
                  f"(nprobe {index.nprobe})")
    _write_index(index, args.out)
    print(f"{args.out}: {type(index).__name__} of {index.ntotal} vectors, {layout}")
    return 0


def _ivf_settings(args: argparse.Namespace) -> tuple[int, int, int, int] | None:
    """``(nlist, nprobe, coarse iterations, seed)`` of ``--ivf``, or None for a flat index.

    Raises:
        ValueError: ``--nprobe``/``--coarse-iters``/``--seed`` without ``--ivf``, or
            ``--ivf`` below 1, or ``--nprobe`` not in ``[1, NLIST]``.
    """
    from ...apps.ann.ivf import COARSE_ITERS, check_nprobe

    if args.ivf is None:
        given = [f for f, v in (("--nprobe", args.nprobe), ("--coarse-iters", args.coarse_iters),
                                ("--seed", args.seed)) if v is not None]
        if given:
            raise ValueError(f"{'/'.join(given)} applies to an IVF index: add --ivf NLIST")
        return None
    if args.ivf < 1:
        raise ValueError(f"--ivf NLIST must be >= 1, got {args.ivf}")
    nprobe = check_nprobe(1 if args.nprobe is None else args.nprobe, args.ivf)
    iters = COARSE_ITERS if args.coarse_iters is None else args.coarse_iters
    return args.ivf, nprobe, iters, 0 if args.seed is None else args.seed


def _empty_ivf(quantizer: Any, vectors: Any, args: argparse.Namespace, nlist: int,
               nprobe: int, iters: int, seed: int) -> Any:
    """The empty IVF index: the coarse k-means of ``vectors``, the quantizer as the coder."""
    from ...apps.ann.ivf import coarse_centroids, ivf_index
    from ...progress import bar_callback

    bar = bar_callback("coarse k-means", enabled=not args.quiet, unit="step")
    centroids = coarse_centroids(vectors, nlist, iters=iters, seed=seed, progress=bar)
    return ivf_index(quantizer, centroids, nprobe=nprobe)


def _search(args: argparse.Namespace) -> int:
    import numpy as np

    from ...apps.ann.faiss_bridge import search
    from ...apps.ann.ivf import probe_params
    from ...data.named import read_vectors
    from ...io.atomic import atomic_write
    from ...io.paths import output_file

    set_threads(args.threads)
    outputs = [p for p in (args.out, args.distances) if p is not None]
    for path in outputs:
        output_file(path, inputs=(args.index, args.queries))
    index = _read_index(args.index)
    queries = read_vectors(args.queries, dim=index.d)
    params = None if args.nprobe is None else probe_params(index, args.nprobe)
    distances, ids = search(index, queries, args.k, params=params)

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
    b = cmds.add_parser("build", help="encode vectors with a quantizer into a FAISS index",
                        description="Encode VECTORS with the quantizer of QUANTIZER (a `vqkit "
                        "fit` checkpoint or a vqkit.save file: pvq, rvq or avq with 2**bits "
                        "codewords per codebook) and write a flat FAISS index holding their "
                        "codes, or with --ivf an IVF index holding them in NLIST lists.")
    b.add_argument("quantizer", help="a vqkit checkpoint or quantizer file")
    b.add_argument("vectors", help=vectors_help("the database (N, D)"))
    b.add_argument("-o", "--out", required=True, help="the index file to write")
    b.add_argument("--chunk", type=positive_int, default=65536, metavar="N",
                   help="vectors encoded at once (default: %(default)s)")
    b.add_argument("--ivf", type=int, metavar="NLIST",
                   help="an IVF index of NLIST lists (the centroids of a k-means of VECTORS) "
                   "instead of a flat one; the lists hold the quantizer's codes of the raw "
                   "vectors (by_residual off) (default: a flat index)")
    b.add_argument("--nprobe", type=int, metavar="P", help="with --ivf: lists a query scans, "
                   "stored in the index (default: 1, as FAISS)")
    b.add_argument("--coarse-iters", type=nonnegative_int, metavar="N", help="with --ivf: "
                   "Lloyd iterations of the coarse k-means (default: 10, as FAISS)")
    b.add_argument("--seed", type=int, help="with --ivf: seed of the coarse k-means "
                   "(default: 0)")
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
    s.add_argument("--nprobe", type=int, metavar="P", help="IVF indexes: lists each query "
                   "scans, in [1, NLIST] (default: the index's own)")
    add_threads(s)
    s.set_defaults(func=_search)
