"""Exactness and cost of vqkit's nearest-neighbour search, side by side in one run.

Three searches on the same data, one thread:

- ``vqkit``: :func:`vqkit.functional.search.nearest_neighbor` (centred on the codebook mean,
  rows within the expansion's rounding bound re-ranked by direct distance);
- ``expansion``: the plain chunked ``||c||^2 - 2 x.c`` + argmin that vqkit used before (and
  that most VQ layers use), written out here as the baseline;
- ``faiss``: FAISS ``IndexFlatL2`` (exact search, the peer), when faiss-cpu is installed.

**Exactness**: Gaussian codebook and queries (unit spread) shifted by a common offset of 0,
1e2, 1e4 and 1e6, and the 3-D geographic case (300 codewords spread 1,000 around an ECEF
point); the share of queries whose returned codeword is as near as the float64 brute force's
(ties within fp32 resolution count as right), and the worst reported-distance error.
**Cost**: the median of interleaved repeats, reported as vqkit's time over the expansion's
(the machine is shared: ratios, not seconds, are the result), on centred data at N = 16,384,
D = 64, K = 8,192 and at training-batch shapes, and on two codebooks that stress the re-rank
(an early-training state and identical codewords).

Usage: ``python benchmarks/search_exactness.py [--quick] [--out results/bench_search.json]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vqkit.functional.search import DEFAULT_CHUNK_ELEMENTS, nearest_neighbor

OFFSETS = [0.0, 1e2, 1e4, 1e6]


def expansion_search(x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: chunked ``||c||^2 - 2 x.c``, argmin, ``+ ||x||^2`` (no centring)."""
    rows = max(1, DEFAULT_CHUNK_ELEMENTS // c.shape[0])
    c_sq, ct = c.pow(2).sum(1), c.t()
    dist, idx = [], []
    for s in range(0, x.shape[0], rows):
        xs = x[s : s + rows]
        v, i = torch.addmm(c_sq, xs, ct, beta=1.0, alpha=-2.0).min(dim=1)
        dist.append((v + xs.pow(2).sum(1)).clamp_min(0.0))
        idx.append(i)
    return torch.cat(dist), torch.cat(idx)


def faiss_search(x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        import faiss
    except ImportError:
        return None
    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatL2(c.shape[1])
    index.add(np.ascontiguousarray(c.numpy()))
    d, i = index.search(np.ascontiguousarray(x.numpy()), 1)
    return torch.from_numpy(d[:, 0]), torch.from_numpy(i[:, 0]).long()


def vqkit_search(x, c):
    d, i = nearest_neighbor(x, c)
    return d[:, 0], i[:, 0]


SEARCHES = {"vqkit": vqkit_search, "expansion": expansion_search, "faiss": faiss_search}


def score(x, c, found) -> dict:
    """Share of rows as near as the float64 brute force, and the worst distance error."""
    d, i = found
    full = ((x.double()[:, None, :] - c.double()[None]) ** 2).sum(-1)
    best = full.min(dim=1).values
    got = full.gather(1, i[:, None])[:, 0]
    resolution = 4 * 2.0**-24 * best.clamp_min(1e-30) * x.shape[1]
    right = (got - best).abs() <= resolution
    return {"share_exact": right.double().mean().item(),
            "worst_distance_error": (d.double() - got).abs().max().item(),
            "worst_chosen_over_true": (got.sqrt() - best.sqrt()).max().item()}


def exactness(n: int, k: int, d: int, seed: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(seed)
    for offset in OFFSETS:
        x = torch.randn(n, d, generator=g) + offset
        c = torch.randn(k, d, generator=g) + offset
        for name, fn in SEARCHES.items():
            found = fn(x, c)
            if found is not None:
                rows.append({"case": f"gaussian offset {offset:g}", "search": name,
                             **score(x, c, found)})
    centre = torch.tensor([4208848.0, 2334863.5, 4171170.2], dtype=torch.float64)
    c = (centre + 1000.0 * torch.randn(300, 3, generator=g, dtype=torch.float64)).float()
    pick = torch.randint(0, 300, (n,), generator=g)
    x = (c[pick].double() + 5.0 * torch.randn(n, 3, generator=g, dtype=torch.float64)).float()
    for name, fn in SEARCHES.items():
        found = fn(x, c)
        if found is not None:
            rows.append({"case": "geographic (ECEF, spread 1000)", "search": name,
                         **score(x, c, found)})
    return rows


def cost_case(name: str, x: torch.Tensor, c: torch.Tensor, repeats: int) -> dict:
    """Median seconds of each search on ``x``, ``c`` (interleaved repeats), and the ratios."""
    times: dict[str, list[float]] = {n: [] for n in SEARCHES}
    for _ in range(repeats + 1):  # interleaved, so load changes hit every search alike
        for search, fn in SEARCHES.items():
            t = time.perf_counter()
            if fn(x, c) is None:
                times.pop(search)
                continue
            times[search].append(time.perf_counter() - t)
    median = {n: statistics.median(ts[1:]) for n, ts in times.items()}
    out = {"case": name, "N": x.shape[0], "D": x.shape[1], "K": c.shape[0],
           "repeats": repeats, "median_seconds": median,
           "vqkit_over_expansion": median["vqkit"] / median["expansion"]}
    if "faiss" in median:
        out["vqkit_over_faiss"] = median["vqkit"] / median["faiss"]
    return out


def cost(quick: bool, repeats: int, seed: int) -> list[dict]:
    """Centred data at the benchmark shape and at training-batch shapes, and two states that
    stress the re-rank: an early-training codebook (64 codewords moved to the data, the rest
    still at vqkit's U(-1/K, 1/K) initialisation) and a codebook of identical codewords."""
    from vqkit.codebooks import initial_codewords

    g = torch.Generator().manual_seed(seed)
    shapes = [(2048, 32, 1024)] if quick else [(16384, 64, 8192), (4096, 64, 1024),
                                               (1024, 32, 512), (4096, 256, 1024)]
    rows = []
    for n, d, k in shapes:
        x, c = torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)
        rows.append(cost_case("centred Gaussian", x, c, repeats))
    n, d, k = (1024, 32, 1024) if quick else (4096, 64, 8192)
    early = initial_codewords(k, d, "uniform")
    early[:64] = torch.randn(64, d, generator=g)
    rows.append(cost_case("early training (64 codewords moved)",
                          torch.randn(n, d, generator=g), early, repeats))
    n, d, k = (512, 16, 256) if quick else (4096, 64, 1024)
    same = torch.randn(1, d, generator=g).expand(k, d).contiguous()
    rows.append(cost_case("identical codewords", torch.randn(n, d, generator=g), same,
                          max(1, repeats // 3)))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    p.add_argument("--repeats", type=int, default=9, help="timed repeats (default 9)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/bench_search.json"))
    p.add_argument("--allow-dirty", action="store_true",
                   help="run even if the source tree has uncommitted changes (recorded as dirty)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    from vqkit.training.provenance import Run, write_json
    from vqkit.training.source_state import DirtyTreeError

    try:
        run = Run(seeds=[args.seed], allow_dirty=args.allow_dirty)
    except DirtyTreeError as err:
        p.error(str(err))
    exact = exactness(500 if args.quick else 2000, 256, 16, args.seed)
    for row in exact:
        print(f"{row['case']:<32} {row['search']:<10} exact {row['share_exact']:.4f}  "
              f"worst distance error {row['worst_distance_error']:.3g}", flush=True)
    timing = cost(args.quick, 3 if args.quick else args.repeats, args.seed)
    for row in timing:
        print(f"{row['case']:<36} N={row['N']} D={row['D']} K={row['K']}, 1 thread: vqkit "
              f"takes {row['vqkit_over_expansion']:.3f}x the plain expansion"
              + (f", {row['vqkit_over_faiss']:.3f}x FAISS IndexFlatL2"
                 if "vqkit_over_faiss" in row else ""), flush=True)
    write_json(args.out, run.record({"exactness": exact, "cost": timing}, quick=args.quick))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
