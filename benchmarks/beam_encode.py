"""Beam-search encoding throughput: vqkit ResidualVQ / AdditiveVQ against FAISS ResidualQuantizer.

All encoders use the same codebooks (k-means-initialised residual codebooks from vqkit, copied
into FAISS) and the same beam width W, in one process, with the thread count fixed for torch
and FAISS alike. FAISS runs in both of its encodings: ``use_beam_LUT=0`` (its default: explicit
residuals, a D-dimensional product per beam and codeword) and ``use_beam_LUT=1`` (codeword
cross-product tables, after ``compute_codebook_tables``); the ratios are against the faster.
Throughput is vectors per second, the best of ``--repeats`` timed runs. ResidualVQ and FAISS
RQ run the same stage-ordered search, so the fraction of identical index tuples is recorded;
AdditiveVQ searches the same codebooks in a free order (a different, wider search), timed on
the first ``--avq-vectors`` database rows.

Data: GloVe 6B 50-d ([pennington2014glove], raw vectors; ``--unit-norm`` scales rows to unit
norm as the ANN app does), random disjoint training and database rows; ``--data synthetic``
draws anisotropic Gaussian vectors of ``--dim`` dimensions instead.

Usage:
    python benchmarks/beam_encode.py [--data glove] [--vectors 50000] [--codebooks 8]
        [--bits 8] [--widths 1 5 32] [--threads 1] [--out results/bench_beam.json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import _cli
import numpy as np
import torch

from vqkit import AdditiveVQ, ResidualVQ
from vqkit.quantizers.encoders import BeamSearch, Greedy
from vqkit.training.provenance import write_json


def _best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _synthetic(n: int, dim: int, seed: int) -> torch.Tensor:
    """Gaussian vectors with a decaying spectrum (a SIFT-like anisotropy)."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, -1, dim)
    rot = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0]
    return (torch.randn(n, dim, generator=g) * scales) @ rot.t()


def _data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """(training rows, database rows)."""
    if args.data == "synthetic":
        return (_synthetic(args.train, args.dim, args.seed),
                _synthetic(args.vectors, args.dim, args.seed + 1))
    from vqkit.data.glove import load_glove_vectors

    x = load_glove_vectors(normalize=args.unit_norm, mmap=not args.unit_norm)
    rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(args.seed))
    train, db = rows[: args.train].sort().values, rows[args.train :][: args.vectors].sort().values
    return torch.from_numpy(np.array(x[train.numpy()])), torch.from_numpy(np.array(x[db.numpy()]))


def _faiss_rq(faiss, books: torch.Tensor, dim: int, num: int, bits: int, lut: int):
    rq = faiss.ResidualQuantizer(dim, num, bits)
    faiss.copy_array_to_vector(books.numpy().ravel(), rq.codebooks)
    rq.is_trained = True
    rq.use_beam_LUT = lut
    if lut:
        rq.compute_codebook_tables()
    return rq


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("glove", "synthetic"), default="glove")
    parser.add_argument("--unit-norm", action="store_true", help="GloVe rows scaled to norm 1")
    parser.add_argument("--vectors", type=int, default=50000, help="database rows encoded")
    parser.add_argument("--avq-vectors", type=int, default=5000,
                        help="database rows AdditiveVQ encodes (it is much slower)")
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=128, help="synthetic data only")
    parser.add_argument("--codebooks", type=int, default=8)
    parser.add_argument("--bits", type=int, default=8, help="bits per codebook")
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 5, 32])
    _cli.add_record_options(parser, Path("results/bench_beam.json"))
    args = parser.parse_args(argv)
    run, faiss = _cli.start(parser, args, "beam_encode.py", argv)
    train, x = _data(args)
    n, dim = x.shape
    x_avq = x[: args.avq_vectors]
    rvq = ResidualVQ(dim, 2**args.bits, args.codebooks)
    rvq.init_codebook_(train, generator=torch.Generator().manual_seed(args.seed), iters=10)
    avq = AdditiveVQ(dim, 2**args.bits, args.codebooks)
    avq.load_state_dict(rvq.state_dict(), strict=False)
    books = torch.cat([cb.codewords.detach() for cb in rvq.codebooks]).contiguous()
    rqs = {f"faiss_RQ_lut{lut}": _faiss_rq(faiss, books, dim, args.codebooks, args.bits, lut)
           for lut in (0, 1)}
    x_np = x.numpy()

    def mse(xh: torch.Tensor, ref: torch.Tensor) -> float:
        return float((ref - xh).pow(2).sum(-1).mean())

    rows = []
    for width in args.widths:
        rvq.encoder = avq.encoder = Greedy() if width == 1 else BeamSearch(width)
        seconds, same, errors = {}, {}, {}
        seconds["vqkit_ResidualVQ"], idx_rvq = _best_time(lambda: rvq.encode(x), args.repeats)
        errors["vqkit_ResidualVQ"] = mse(rvq.decode(idx_rvq).detach(), x)
        for name, rq in rqs.items():
            rq.max_beam_size = width
            seconds[name], codes = _best_time(lambda rq=rq: rq.compute_codes(x_np), args.repeats)
            errors[name] = mse(torch.from_numpy(rq.decode(codes)), x)
            theirs = np.asarray(faiss.unpack_bitstrings(codes, args.codebooks, args.bits))
            same[name] = float((torch.from_numpy(theirs).long().reshape(n, -1) == idx_rvq)
                               .all(1).float().mean())
        t_avq, idx_avq = _best_time(lambda: avq.encode(x_avq), args.repeats)
        errors["vqkit_AdditiveVQ_free_order"] = mse(avq.decode(idx_avq).detach(), x_avq)
        per_s = {k: n / v for k, v in seconds.items()}
        per_s["vqkit_AdditiveVQ_free_order"] = len(x_avq) / t_avq
        fastest = max(per_s[name] for name in rqs)
        ratios = {
            "rvq_throughput_over_faiss": {k: per_s["vqkit_ResidualVQ"] / per_s[k] for k in rqs},
            "avq_time_over_fastest_faiss": fastest / per_s["vqkit_AdditiveVQ_free_order"],
        }
        rows.append({"beam_width": width, "vectors_per_s": per_s, "mse": errors,
                     "fraction_same_indices_rvq_vs_faiss": same, **ratios})
        print(f"W={width:>3}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in per_s.items())
              + " | RVQ/FAISS throughput "
              + ", ".join(f"{k[-4:]} {v:.2f}x" for k, v in
                          ratios["rvq_throughput_over_faiss"].items())
              + f" | AVQ time / fastest FAISS {ratios['avq_time_over_fastest_faiss']:.1f}x",
              flush=True)
    record = run.record(
        rows,
        config={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        faiss_version=faiss.__version__,
        note="Shared, loaded 2-core machine: compare rows of one run, not absolute numbers. "
             "ResidualVQ encodes greedily at W=1 (its Greedy encoder) and with "
             "vqkit.functional.beam.residual_beam_search above (cross-product tables when "
             "they pay); AdditiveVQ encodes with vqkit.functional.beam.additive_beam_search "
             "(free order, cross-product tables when they pay) at every width.",
    )
    return write_json(args.out, record)


if __name__ == "__main__":
    print(main())
