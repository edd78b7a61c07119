"""The ANN table: vqkit PQ / RVQ / AVQ (NSVQ and k-means only) against FAISS's own quantizers.

Every method is trained on the same training rows, encodes the same database and answers the
same queries through a FAISS index (ours exported by :func:`.faiss_bridge.to_faiss`), in one
process with one thread count. Per method and bit rate it records Recall@T for T = 1 ..
``recall_max``, the database MSE, the training time and the database encoding time.

FAISS methods ([douze2024faiss]): ``ProductQuantizer`` (k-means per sub-space),
``ResidualQuantizer`` with ``max_beam_size`` 1 / 5 / 32 (used in training and encoding), and
``LocalSearchQuantizer`` (LSQ++) with its defaults; additive indexes store float norms.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...quantizers.encoders import BeamSearch
from ...training.seed import offset_generator
from .config import BenchmarkConfig
from .datasets import AnnData, pad_to
from .evaluate import adc_search, exact_nearest, recall_curve, squared_error, timed
from .faiss_bridge import add_encoded, require_faiss, search, to_faiss
from .ground_truth import cached_nearest
from .train import build, initialise_, train_nsvq_

logger = logging.getLogger(__name__)


def _entry(method: str, family: str, bits: int, found: Tensor, truth: Tensor, mse: float,
           times: dict[str, float], **extra: Any) -> dict[str, Any]:
    curve = recall_curve(found, truth)
    return {
        "method": method,
        "family": family,
        "bits": bits,
        "recall_at_1": curve[0],
        "recall_at_10": curve[min(10, len(curve)) - 1],
        "recall_at_100": curve[min(100, len(curve)) - 1],
        "mse": mse,
        "train_seconds": round(times.get("train", 0.0), 3),
        "encode_seconds": round(times.get("encode", 0.0), 3),
        "train_cpu_seconds": round(times.get("train_cpu", 0.0), 3),
        "encode_cpu_seconds": round(times.get("encode_cpu", 0.0), 3),
        "recall": [round(r, 5) for r in curve],
        **extra,
    }


def _np(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.numpy().astype(np.float32))


def _pq_dim(dim: int, num_codebooks: tuple[int, ...]) -> int:
    step = math.lcm(*num_codebooks)
    return -(-dim // step) * step


def _faiss_index(faiss: Any, method: str, dim: int, num: int, nbits: int) -> Any:
    if method == "pq":
        return faiss.IndexPQ(dim, num, nbits)
    norm = faiss.AdditiveQuantizer.ST_norm_float
    if method == "lsq":
        return faiss.IndexLocalSearchQuantizer(dim, num, nbits, faiss.METRIC_L2, norm)
    index = faiss.IndexResidualQuantizer(dim, num, nbits, faiss.METRIC_L2, norm)
    index.rq.max_beam_size = int(method.removeprefix("rq"))
    return index


FAISS_NAMES = {"pq": "FAISS PQ", "lsq": "FAISS LSQ (defaults)"}


def faiss_entry(data: AnnData, truth: Tensor, num: int, method: str, config: BenchmarkConfig
                ) -> dict[str, Any]:
    """One FAISS quantizer (``"pq"``, ``"rq<beam>"`` or ``"lsq"``) with M = ``num`` codebooks.

    FAISS trains it on the training rows and encodes the database itself; RQ uses its beam in
    training and encoding, as FAISS does.
    """
    faiss = require_faiss()
    nbits = int(math.log2(config.codebook_size))
    bits = num * nbits
    dim = _pq_dim(data.dim, config.num_codebooks) if method == "pq" else data.dim
    index = _faiss_index(faiss, method, dim, num, nbits)
    name = FAISS_NAMES.get(method, f"FAISS RQ (beam {method.removeprefix('rq')})")
    train, db, qu = (pad_to(t, dim) for t in (data.train, data.database, data.queries))
    times: dict[str, float] = {}
    logger.info("%s, %d bits: training", name, bits)
    with timed(times, "train"):
        index.train(_np(train))
    with timed(times, "encode"):
        index.add(_np(db))
    _, found = search(index, qu, config.recall_max)
    decoded = torch.from_numpy(index.reconstruct_n(0, index.ntotal))
    return _entry(name, "faiss", bits, found, truth, squared_error(db, decoded), times)


@dataclass
class _Row:
    """One rung of the ablation ladder: its label, training tag, model and timings."""

    how: str
    training: str
    model: Any
    times: dict[str, float]
    history: list[float] = field(default_factory=list)


def _ladder(kind: str, dim: int, num: int, fit: Tensor, config: BenchmarkConfig,
            gen: torch.Generator, progress: bool) -> list[_Row]:
    """k-means init only, + beam in training (RVQ / AVQ), + NSVQ from the previous rung."""
    rows = []
    beams = [1] + ([config.init.beam] if kind != "pq" and config.init.beam > 1 else [])
    for beam in beams:
        model, times = build(kind, dim, config.codebook_size, num,
                             width=config.avq_train_width, generator=gen), {}
        with timed(times, "train"):
            initialise_(model, fit, config.init, beam=beam, generator=gen)
        how = "k-means init only" if beam == 1 else f"+ beam {beam} in training"
        rows.append(_Row(how, "kmeans" if beam == 1 else "kmeans+beam", model, times))
    last = rows[-1]
    rows[-1] = _Row(last.how, last.training, copy.deepcopy(last.model), dict(last.times))
    with timed(last.times, "train"):  # cumulative: the NSVQ row includes its initialisation
        last.history = train_nsvq_(last.model, fit, config.schedule, generator=gen,
                                   init=False, progress=progress)
    rows.append(_Row("+ NSVQ", "nsvq", last.model, last.times, last.history))
    return rows


def _validation_recalls(models: list[Any], val: Tensor, fit: Tensor) -> list[float]:
    """Recall@10 of the validation vectors ``val`` ``(V, D)`` searched among each model's
    decoding of the training vectors ``fit`` ``(N, D)``, against their exact nearest rows of
    ``fit`` (found once for all models)."""
    truth = exact_nearest(val, fit)
    return [recall_curve(adc_search(val, m.decode(m.encode(fit)).float(), 10), truth)[9]
            for m in models]


def _recipe(recalls: list[float], mses: list[float]) -> int:
    """The index of the recipe row: the highest validation Recall@10, ties broken by the
    lower validation MSE (then the earlier row)."""
    return max(range(len(recalls)), key=lambda i: (recalls[i], -mses[i]))


def vqkit_entries(data: AnnData, truth: Tensor, num: int, kind: str, config: BenchmarkConfig,
                  *, seed: int, progress: bool = True) -> list[dict[str, Any]]:
    """vqkit ``kind`` (pq / rvq / avq) with M = ``num``: the ablation ladder k-means init only,
    + beam in training (RVQ / AVQ), + NSVQ.

    Every row trains on the training vectors less ``config.validation`` held-out ones. Each
    row records its validation MSE and its validation Recall@10 (the held-out vectors
    searched as queries among the other training vectors, all encoded with the database's
    beam, against their exact nearest neighbours there), and the row with the highest
    validation Recall@10 (ties: the lower MSE) is marked ``"selected"``: the recipe is chosen
    on the validation vectors, never on the queries, by the measure the benchmark reports
    (MSE and Recall@10 disagree on both standard data sets; docs/ann.md). Training times are
    cumulative along the ladder (the NSVQ row includes its initialisation).
    """
    nbits = int(math.log2(config.codebook_size))
    bits, k = num * nbits, config.recall_max
    dim = _pq_dim(data.dim, config.num_codebooks) if kind == "pq" else data.dim
    train, db, qu = (pad_to(t, dim) for t in (data.train, data.database, data.queries))
    gen = offset_generator(seed)  # the initialisation and the training of this system
    held = torch.randperm(len(train), generator=gen)
    val, fit = train[held[: config.validation]], train[held[config.validation :]]
    width = config.encode_width(kind)
    label = "PQ" if kind == "pq" else f"{kind.upper()} (beam {width})"
    logger.info("vqkit %s, %d bits: training", label, bits)
    ladder = _ladder(kind, dim, num, fit, config, gen, progress)
    if kind != "pq":
        for row in ladder:
            row.model.encoder = BeamSearch(width)
    with torch.no_grad():
        val_mse = [squared_error(val, r.model.decode(r.model.encode(val))) for r in ladder]
        val_recall = _validation_recalls([r.model for r in ladder], val, fit)
    chosen = _recipe(val_recall, val_mse)
    out = []
    for i, row in enumerate(ladder):
        logger.info("vqkit %s (%s), %d bits: encoding", label, row.how, bits)
        with timed(row.times, "encode"):
            indices = row.model.encode(db)
        index = to_faiss(row.model)
        add_encoded(index, indices)
        _, found = search(index, qu, k)
        with torch.no_grad():
            mse = squared_error(db, row.model.decode(indices))
        out.append(_entry(f"vqkit {label} ({row.how})", "vqkit", bits, found, truth, mse,
                          row.times, training=row.training, validation_mse=val_mse[i],
                          validation_recall_at_10=val_recall[i], selected=i == chosen,
                          loss_history=[round(v, 6) for v in row.history]))
    return out


def plan(config: BenchmarkConfig) -> list[tuple[int, str]]:
    """``(num_codebooks, method)`` in run order: the largest bit rate first and, within it,
    the goal's pair (FAISS RQ with the widest beam, vqkit AVQ) first and FAISS LSQ (the
    slowest) last, so an interrupted run has written the rows that matter most."""
    beams = sorted(config.rq_beams, reverse=True)
    order = [f"rq{beams[0]}", "avq", *(f"rq{b}" for b in beams[1:]), "pq", "rvq", "vq-pq",
             "lsq"]
    return [(num, m) for num in sorted(config.num_codebooks, reverse=True) for m in order]


def run_benchmark(data: AnnData, config: BenchmarkConfig, *, seed: int = 0,
                  progress: bool = True,
                  on_entry: Callable[[dict[str, Any]], None] | None = None,
                  cache_dir: Path | None = None) -> dict[str, Any]:
    """Every method at every bit rate of ``config`` on ``data``; returns the results dict.

    ``on_entry(partial_results)`` is called after every method (to save partial results).
    The ground truth comes from :func:`.ground_truth.cached_nearest` (in ``cache_dir``,
    default its default folder).

    Example:
        >>> from vqkit.apps.ann.config import Schedule, Split
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(700, 8, generator=g)
        >>> data = AnnData("toy", x[:300], x[:680], x[680:])
        >>> cfg = BenchmarkConfig(Split(300, 680, 20), Schedule(steps=10, batch_size=64),
        ...                       validation=50, codebook_size=16, num_codebooks=(2,),
        ...                       encode_beam=2, rq_beams=(1,), recall_max=10)
        >>> res = run_benchmark(data, cfg, progress=False)  # doctest: +SKIP
        >>> len(res["entries"])  # doctest: +SKIP
        11

        (FAISS PQ, RQ, LSQ; vqkit PQ after k-means only and + NSVQ; vqkit RVQ and AVQ after
        k-means only, + beam in training and + NSVQ.)
    """
    times: dict[str, float] = {}
    with timed(times, "truth"):
        truth = cached_nearest(data.queries, data.database, cache_dir=cache_dir)
    payload: dict[str, Any] = {
        "dataset": data.name,
        "dim": data.dim,
        "sizes": {"train": len(data.train), "database": len(data.database),
                  "queries": len(data.queries)},
        "config": config.to_dict(),
        "threads": {"torch": torch.get_num_threads(),
                    "faiss": require_faiss().omp_get_max_threads()},
        "ground_truth_seconds": round(times["truth"], 3),
        "complete": False,
        "entries": [],
    }
    for num, method in plan(config):
        if method in ("avq", "rvq", "vq-pq"):
            kind = "pq" if method == "vq-pq" else method
            payload["entries"] += vqkit_entries(data, truth, num, kind, config, seed=seed,
                                                progress=progress)
        else:
            payload["entries"].append(faiss_entry(data, truth, num, method, config))
        logger.info("%s: R@10 %.3f", payload["entries"][-1]["method"],
                    payload["entries"][-1]["recall_at_10"])
        if on_entry is not None:
            on_entry(payload)
    payload["complete"] = True
    return payload
