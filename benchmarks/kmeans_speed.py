"""k-means training time: vqkit's k-means against FAISS's, and where the difference lies.

One codebook of FAISS's residual quantizer training, in one process with the thread count
fixed for torch and FAISS alike: ``K`` centres of the Fashion-MNIST training images (60,000
raw 784-d pixel vectors, [xiao2017fashionmnist]) by

- the progressive-dimension k-means (``--dim-steps`` steps of ``--iters`` Lloyd iterations,
  random seeding): FAISS's ``ProgressiveDimClustering`` ([douze2024faiss]), the default
  training of its ``ResidualQuantizer``, against ``vqkit.functional.kmeans.kmeans`` with the
  same settings;
- plain k-means in all 784 dimensions (``--iters`` iterations): FAISS's ``Clustering`` against
  vqkit's ``lloyd`` from the same random rows, and the floor of any torch implementation,
  the ``--iters`` distance products alone (``torch.addmm`` of the data and the centres, the
  one operation both k-means share).

Times are CPU seconds of the process (the best of ``--repeats``), so that a loaded machine
inflates them less than wall time; the ratios are what to compare. The mean squared error of
the data to its nearest centre shows that both sides reach the same quality.

Usage:
    python benchmarks/kmeans_speed.py [--vectors 60000] [--centres 256] [--iters 10]
        [--dim-steps 10] [--threads 1] [--repeats 2] [--out results/bench_kmeans.json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import _cli
import numpy as np
import torch

from vqkit.data.fashion_mnist import load_fashion_mnist
from vqkit.functional.kmeans import kmeans, lloyd
from vqkit.functional.search import nearest_neighbor
from vqkit.training.provenance import write_json


def _best_cpu(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def _mse(x: torch.Tensor, centres: torch.Tensor) -> float:
    return float(nearest_neighbor(x, centres)[0].mean())


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=60_000,
                        help="training images used (the first ones)")
    parser.add_argument("--centres", type=int, default=256, help="K, centres per k-means")
    parser.add_argument("--iters", type=int, default=10, help="Lloyd iterations (per step)")
    parser.add_argument("--dim-steps", type=int, default=10,
                        help="steps of the progressive-dimension k-means (FAISS: 10)")
    _cli.add_record_options(parser, Path("results/bench_kmeans.json"))
    args = parser.parse_args(argv)
    run, faiss = _cli.start(parser, args, "kmeans_speed.py", argv)
    pixels, _ = load_fashion_mnist("train")
    pixels = pixels[: args.vectors]
    x_np = np.ascontiguousarray(pixels.reshape(len(pixels), -1), dtype=np.float32)
    x = torch.from_numpy(x_np)
    n, dim = x.shape
    k = args.centres

    def faiss_progressive() -> np.ndarray:
        params = faiss.ProgressiveDimClusteringParameters()
        params.progressive_dim_steps, params.niter, params.seed = (args.dim_steps, args.iters,
                                                                   args.seed)
        clus = faiss.ProgressiveDimClustering(dim, k, params)
        clus.train(n, faiss.swig_ptr(x_np), faiss.ProgressiveDimIndexFactory())
        return faiss.vector_to_array(clus.centroids).reshape(k, dim)

    def vqkit_progressive() -> torch.Tensor:
        return kmeans(x, k, iters=args.iters, dim_steps=args.dim_steps, seeding="random",
                      generator=torch.Generator().manual_seed(args.seed))

    start = x[torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))[:k]]

    def faiss_plain() -> np.ndarray:
        clus = faiss.Clustering(dim, k)
        clus.niter, clus.seed, clus.max_points_per_centroid = args.iters, args.seed, n
        # Centroids present before training are FAISS's starting point (not frozen).
        faiss.copy_array_to_vector(start.numpy().ravel(), clus.centroids)
        clus.train(x_np, faiss.IndexFlatL2(dim))
        return faiss.vector_to_array(clus.centroids).reshape(k, dim)

    def products_only() -> None:
        bias = start.pow(2).sum(dim=1)
        for _ in range(args.iters):
            torch.addmm(bias, x, start.t(), beta=1.0, alpha=-2.0)

    seconds, mse = {}, {}
    for name, fn in (("faiss_progressive", faiss_progressive),
                     ("vqkit_progressive", vqkit_progressive),
                     ("faiss_plain", faiss_plain),
                     ("vqkit_plain", lambda: lloyd(x, start, args.iters)),
                     ("torch_addmm_only", products_only)):
        seconds[name], centres = _best_cpu(fn, args.repeats)
        if centres is not None:
            mse[name] = _mse(x, torch.as_tensor(centres))
        print(f"{name}: {seconds[name]:.2f} CPU s" + (f", MSE {mse[name]:.1f}" if name in mse
                                                      else ""), flush=True)
    ratios = {
        "vqkit_over_faiss_progressive": seconds["vqkit_progressive"]
        / seconds["faiss_progressive"],
        "vqkit_over_faiss_plain": seconds["vqkit_plain"] / seconds["faiss_plain"],
        "addmm_only_over_faiss_plain": seconds["torch_addmm_only"] / seconds["faiss_plain"],
    }
    print(", ".join(f"{key} {value:.2f}x" for key, value in ratios.items()))
    record = run.record(
        {"cpu_seconds": seconds, "mse": mse, "ratios": ratios, "vectors": n, "dim": dim},
        config={key: (str(v) if isinstance(v, Path) else v) for key, v in vars(args).items()},
        faiss_version=faiss.__version__,
        note="Shared 2-core machine: compare the ratios of one run. 'plain' is k-means in all "
             "dimensions from the same random rows (FAISS Clustering vs vqkit lloyd); "
             "'torch_addmm_only' times only the distance products of those iterations.",
    )
    return write_json(args.out, record)


if __name__ == "__main__":
    print(main())
