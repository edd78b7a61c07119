"""Beam-search encoding throughput: vqkit ResidualVQ / AdditiveVQ against FAISS ResidualQuantizer.

All three encode the same vectors with the same codebooks (k-means-initialised residual
codebooks from vqkit, copied into FAISS) and the same beam width W, in the same process, with
the thread count fixed for torch and FAISS alike. Throughput is vectors per second, the best of
``--repeats`` timed runs; the MSE of each encoding is recorded as a check that the searches are
equivalent: ResidualVQ and FAISS RQ run the same stage-ordered beam search (the fraction of
identical index tuples is recorded too); AdditiveVQ searches the same codebooks in a free order,
which is a different search (not a superset of the stage order under a finite beam: with
codebooks fitted for residual order it can do slightly worse).

Usage:
    python benchmarks/beam_encode.py [--vectors 4096] [--dim 128] [--codebooks 4]
        [--bits 8] [--widths 1 4 16] [--threads 1] [--out results/bench_beam.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from vqkit import AdditiveVQ, ResidualVQ
from vqkit.quantizers.encoders import BeamSearch, Greedy
from vqkit.training.provenance import Run, write_json
from vqkit.training.source_state import DirtyTreeError


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _data(n: int, dim: int, seed: int) -> torch.Tensor:
    """Gaussian vectors with a decaying spectrum (a SIFT-like anisotropy)."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, -1, dim)
    rot = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0]
    return (torch.randn(n, dim, generator=g) * scales) @ rot.t()


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=4096)
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--codebooks", type=int, default=4)
    parser.add_argument("--bits", type=int, default=8, help="bits per codebook")
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/bench_beam.json"))
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run even if the source tree has uncommitted changes "
                        "(recorded as dirty)")
    args = parser.parse_args(argv)
    try:
        import faiss
        import numpy as np
    except ImportError as err:
        raise ImportError("this benchmark needs FAISS: pip install 'vqkit[faiss]'") from err

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    try:
        run = Run(command="python benchmarks/beam_encode.py " + " ".join(argv or sys.argv[1:]),
                  seeds=[args.seed], allow_dirty=args.allow_dirty)
    except DirtyTreeError as err:
        parser.error(str(err))
    size = 2**args.bits
    train = _data(args.train, args.dim, args.seed)
    x = _data(args.vectors, args.dim, args.seed + 1)
    rvq = ResidualVQ(args.dim, size, args.codebooks)
    rvq.init_codebook_(train, generator=torch.Generator().manual_seed(args.seed), iters=10)
    avq = AdditiveVQ(args.dim, size, args.codebooks)
    avq.load_state_dict(rvq.state_dict(), strict=False)
    books = torch.cat([cb.codewords.detach() for cb in rvq.codebooks]).contiguous()

    rq = faiss.ResidualQuantizer(args.dim, args.codebooks, args.bits)
    faiss.copy_array_to_vector(books.numpy().ravel(), rq.codebooks)
    rq.is_trained = True
    x_np = x.numpy()

    def mse(xh: torch.Tensor) -> float:
        return float((x - xh).pow(2).sum(-1).mean())

    rows = []
    for width in args.widths:
        encoder = Greedy() if width == 1 else BeamSearch(width)
        rvq.encoder = avq.encoder = encoder
        rq.max_beam_size = width
        t_rvq, idx_rvq = _best_time(lambda: rvq.encode(x), args.repeats)
        t_avq, idx_avq = _best_time(lambda: avq.encode(x), args.repeats)
        t_rq, codes = _best_time(lambda: rq.compute_codes(x_np), args.repeats)
        xh_rq = torch.from_numpy(rq.decode(codes))
        unpacked = faiss.unpack_bitstrings(codes, args.codebooks, args.bits)
        same = float((torch.from_numpy(np.asarray(unpacked)).long() == idx_rvq).all(1)
                     .float().mean())
        row = {
            "beam_width": width,
            "vectors_per_s": {
                "vqkit_ResidualVQ": args.vectors / t_rvq,
                "vqkit_AdditiveVQ_free_order": args.vectors / t_avq,
                "faiss_ResidualQuantizer": args.vectors / t_rq,
            },
            "mse": {
                "vqkit_ResidualVQ": mse(rvq.decode(idx_rvq).detach()),
                "vqkit_AdditiveVQ_free_order": mse(avq.decode(idx_avq).detach()),
                "faiss_ResidualQuantizer": mse(xh_rq),
            },
            "fraction_same_indices_rvq_vs_faiss": same,
        }
        rows.append(row)
        print(f"W={width}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in
                                         row["vectors_per_s"].items()), flush=True)
    record = run.record(
        rows,
        config={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        faiss_version=faiss.__version__,
        note="Shared, loaded 2-core machine: compare rows of one run, not absolute numbers. "
             "FAISS RQ with default settings (use_beam_LUT=0).",
    )
    return write_json(args.out, record)


if __name__ == "__main__":
    print(main())
