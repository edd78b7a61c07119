"""Validation MSE and Recall@10 of ANN training settings (how docs/ann.md's recipe was chosen).

Holds ``--validation`` of the training vectors of the standard split out, trains vqkit RVQ or
AVQ with each ``--recipe`` (and FAISS RQ at each ``--faiss-beam``, in the same run, on the
same vectors) on the rest and prints the held-out MSE at each ``--encode-beam``: never the
queries. With ``--recall``, the held-out vectors are also searched as queries in the database
less the held-out vectors (encoded by each quantizer; with ``--unseen`` less every training
vector) and Recall@10 is printed.

A recipe is the beam fit (``best``: the beam's best tuple, ``whole``: every tuple, see
vqkit.quantizers.beam_fit), then optionally ``+random`` (FAISS's k-means seeding, see
``init_codebook_``), ``+pdN`` (progressive-dimension k-means in N steps, FAISS RQ's default
training) and ``+refitN`` (N least-squares refits, ``refit_codebooks_``), e.g.
``whole+random+pd10+refit2``.

    python scripts/ann_validation_sweep.py glove avq --iters 25 --steps 2000 --lr 3e-3
    python scripts/ann_validation_sweep.py glove rvq --iters 25 --init-beam 8 \\
        --recipe best whole whole+random whole+random+refit2 --faiss-beam 8 --recall
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import torch
from torch import Tensor

from vqkit.apps.ann.config import Init, Schedule, Split
from vqkit.apps.ann.datasets import load_split
from vqkit.apps.ann.evaluate import recall_curve, squared_error
from vqkit.apps.ann.train import build, initialise_, train_nsvq_
from vqkit.quantizers.encoders import BeamSearch

#: The splits of the sweeps in docs/ann.md (the query counts only move the random draw; the
#: queries are not used).
SPLITS = {"glove": Split(100_000, 390_000, 1_000), "fashion": Split(10_000, 60_000, 100)}
FITS = {"best": "BestTuple", "whole": "WholeBeam"}


def parse_recipe(text: str) -> tuple[str, str, int, int]:
    """``"whole+random+pd10+refit2"`` -> ``("whole", "random", 10, 2)``.

    Raises:
        ValueError: an unknown fit or part (``pdN`` needs N >= 1), naming it.
    """
    fit, *extras = text.split("+")
    if fit not in FITS:
        raise ValueError(f"a recipe starts with one of {sorted(FITS)}, got {text!r}")
    seeding, refits, dim_steps = "kmeans++", 0, 1
    for extra in extras:  # isdecimal, not isdigit: int() refuses digits such as "²"
        if extra == "random":
            seeding = "random"
        elif extra.startswith("refit") and extra[5:].isdecimal():
            refits = int(extra[5:])
        elif extra.startswith("pd") and extra[2:].isdecimal() and int(extra[2:]) >= 1:
            dim_steps = int(extra[2:])
        else:
            raise ValueError(f"unknown recipe part {extra!r} in {text!r}")
    return fit, seeding, dim_steps, refits


def top10(queries: Tensor, database: Tensor) -> Tensor:
    """The 10 database rows nearest to each query (FAISS's flat L2 search: the same
    answer as vqkit.apps.ann.evaluate.adc_search, an order of magnitude faster for k = 10)."""
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatL2(database.shape[1])
    index.add(database.numpy())
    return torch.from_numpy(index.search(queries.numpy(), 10)[1])


class Evaluation:
    """The held-out vectors, and (with ``recall``) the search database and ground truth."""

    def __init__(self, val: Tensor, database: Tensor, recall: bool, drop: Tensor) -> None:
        self.val = val
        self.database = None
        if recall:
            held = {row.numpy().tobytes() for row in drop}
            keep = torch.tensor([row.numpy().tobytes() not in held for row in database])
            self.database = database[keep]
            self.truth = top10(val, self.database)[:, 0]

    def report(self, name: str, encode, decode) -> str:
        mse = squared_error(self.val, decode(encode(self.val)))
        text = f"{name}: validation MSE {mse:.4f}"
        if self.database is not None:
            start = time.process_time()
            decoded = decode(encode(self.database))
            seconds = time.process_time() - start
            found = top10(self.val, decoded.float())
            text += (f", Recall@10 {recall_curve(found, self.truth)[9]:.4f} (database "
                     f"{len(self.database)}, encode {seconds:.1f} CPU s)")
        return text


def faiss_rows(evaluation: Evaluation, fit: Tensor, dim: int, beams: list[int]) -> None:
    import faiss

    faiss.omp_set_num_threads(1)
    for beam in beams:
        start = time.process_time()
        rq = faiss.ResidualQuantizer(dim, 8, 8)
        rq.max_beam_size = beam
        rq.train(fit.numpy())
        seconds = time.process_time() - start
        print(evaluation.report(
            f"FAISS RQ beam {beam} (train_type {rq.train_type}): train {seconds:.1f} CPU s",
            lambda x, rq=rq: rq.compute_codes(x.numpy()),
            lambda codes, rq=rq: torch.from_numpy(rq.decode(codes))), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(SPLITS))
    p.add_argument("kind", choices=("rvq", "avq"))
    p.add_argument("--validation", type=int, default=5000)
    p.add_argument("--n-train", type=int, default=0, help="training vectors (0: the standard)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--init-beam", type=int, nargs="+", default=[1])
    p.add_argument("--recipe", nargs="*", default=["whole"])
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--encode-beam", type=int, nargs="+", default=[8])
    p.add_argument("--faiss-beam", type=int, nargs="*", default=[],
                   help="FAISS RQ beams to train on the same vectors (its reference)")
    p.add_argument("--recall", action="store_true", help="also Recall@10 (slower)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="seeds of vqkit's training (k-means seeding, batches); the split and "
                        "the held-out vectors stay those of seed 0")
    p.add_argument("--unseen", action="store_true",
                   help="search a database without any training vector (default: without "
                        "the held-out ones only, as the benchmark's database holds the rest)")
    args = p.parse_args()
    try:  # before the data load and FAISS's rows, which take minutes
        recipes = {recipe: parse_recipe(recipe) for recipe in args.recipe}
    except ValueError as e:
        p.error(str(e))
    torch.set_num_threads(1)
    split = SPLITS[args.dataset]
    if args.n_train:
        split = dataclasses.replace(split, n_train=args.n_train)
    data = load_split(args.dataset, split, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    held = torch.randperm(len(data.train), generator=g)
    val, fit = data.train[held[: args.validation]], data.train[held[args.validation :]]
    evaluation = Evaluation(val, data.database, args.recall, data.train if args.unseen else val)
    faiss_rows(evaluation, fit, data.dim, args.faiss_beam)
    for seed, beam, recipe in itertools.product(args.seeds, args.init_beam, args.recipe):
        fit_to, seeding, dim_steps, refits = recipes[recipe]
        gen = torch.Generator().manual_seed(seed)
        start = time.process_time()
        q = build(args.kind, data.dim, 256, 8, generator=gen)
        init = Init(iters=args.iters, beam=beam, beam_fit=FITS[fit_to], seeding=seeding,
                    dim_steps=dim_steps)
        initialise_(q, fit, init, beam=beam, generator=gen)
        for _ in range(refits):
            q.refit_codebooks_(fit, beam=beam)
        if args.steps:
            q.train()
            train_nsvq_(q, fit, Schedule(steps=args.steps, batch_size=args.batch,
                                         lr=args.lr, replace_every=0),
                        generator=gen, init=False, progress=False)
        seconds = time.process_time() - start
        for width in args.encode_beam:
            q.encoder = BeamSearch(width)
            with torch.no_grad():
                print(evaluation.report(
                    f"{args.kind} {recipe} seed {seed} iters {args.iters} init beam {beam} steps "
                    f"{args.steps} lr {args.lr}: train {seconds:.1f} CPU s, encode beam "
                    f"{width}", q.encode, q.decode), flush=True)


if __name__ == "__main__":
    main()
