"""Validation MSE of one ANN training setting (how docs/ann.md's recipe was chosen).

Holds ``--validation`` of the training vectors of the standard split out, trains vqkit RVQ or
AVQ (or FAISS RQ, ``--faiss-beam``) on the rest and prints the held-out MSE at each
``--encode-beam``: never the queries.

    python scripts/ann_validation_sweep.py glove avq --iters 25 --steps 2000 --lr 3e-3
    python scripts/ann_validation_sweep.py glove rvq --faiss-beam 32
"""

from __future__ import annotations

import argparse
import time

import torch

from vqkit.apps.ann.config import Init, Schedule, Split
from vqkit.apps.ann.datasets import load_split
from vqkit.apps.ann.evaluate import squared_error
from vqkit.apps.ann.train import build, initialise_, train_nsvq_
from vqkit.quantizers.encoders import BeamSearch

#: The splits of the sweeps in docs/ann.md (the query counts only move the random draw; the
#: queries are not used).
SPLITS = {"glove": Split(100_000, 390_000, 1_000), "fashion": Split(10_000, 60_000, 100)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(SPLITS))
    p.add_argument("kind", choices=("rvq", "avq"))
    p.add_argument("--validation", type=int, default=5000)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--init-beam", type=int, default=1)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--encode-beam", type=int, nargs="+", default=[8])
    p.add_argument("--faiss-beam", type=int, default=0, help="train FAISS RQ instead")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_split(args.dataset, SPLITS[args.dataset],
                      generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    held = torch.randperm(len(data.train), generator=g)
    val, fit = data.train[held[: args.validation]], data.train[held[args.validation :]]
    start = time.process_time()
    if args.faiss_beam:
        import faiss

        faiss.omp_set_num_threads(1)
        rq = faiss.ResidualQuantizer(data.dim, 8, 8)
        rq.max_beam_size = args.faiss_beam
        rq.train(fit.numpy())
        decoded = torch.from_numpy(rq.decode(rq.compute_codes(val.numpy())))
        print(f"FAISS RQ beam {args.faiss_beam}: train {time.process_time() - start:.1f} "
              f"CPU s, validation MSE {squared_error(val, decoded):.4f}")
        return
    q = build(args.kind, data.dim, 256, 8, generator=g)
    initialise_(q, fit, Init(iters=args.iters, beam=args.init_beam), beam=args.init_beam,
                generator=g)
    if args.steps:
        q.train()
        train_nsvq_(q, fit, Schedule(steps=args.steps, batch_size=args.batch, lr=args.lr,
                                     replace_every=0), generator=g, init=False, progress=False)
    seconds = time.process_time() - start
    for width in args.encode_beam:
        q.encoder = BeamSearch(width)
        with torch.no_grad():
            mse = squared_error(val, q.decode(q.encode(val)))
        print(f"{args.kind} iters {args.iters} init beam {args.init_beam} steps {args.steps} "
              f"lr {args.lr}: train {seconds:.1f} CPU s, encode beam {width}: validation MSE "
              f"{mse:.4f}")


if __name__ == "__main__":
    main()
