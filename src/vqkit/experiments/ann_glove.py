"""ANN search on GloVe 6B 50-d: NSVQ-trained PQ / RVQ / AVQ against FAISS PQ, RQ and LSQ.

[vali2023rpavq] Fig. 5 (the thesis's SIFT1M Recall@T experiment) on other data: GloVe rows
normalised to unit length (cosine search as L2), [pennington2014glove]. The sizes are cut to
fit a small, heavily shared CPU: 10,000 training, 10,000 database and 500 query vectors,
disjoint random rows of the 400,000. 32 and 64 bits (4 and 8 codebooks of 256 entries).
"""

from __future__ import annotations

from pathlib import Path

from ..apps.ann.config import BenchmarkConfig, Schedule, Split
from ..apps.ann.experiment import report_experiment, run_experiment

NAME = "ann-glove"
DESCRIPTION = "ANN on GloVe-50 (cosine): vqkit PQ/RVQ/AVQ + NSVQ, exported to FAISS, vs FAISS"
EXPECTED_MINUTES = 31.0
RESULT_FILES = ("ann_glove.json",)
PLOT_FILE = "ann_glove_recall.png"

CONFIG = BenchmarkConfig(
    Split(n_train=10_000, n_database=10_000, n_queries=500),
    Schedule(steps=200, batch_size=512, lr=1e-3, replace_every=50),
    avq_width=8,
)
QUICK = BenchmarkConfig(
    Split(n_train=600, n_database=1_000, n_queries=50),
    Schedule(steps=10, batch_size=128, replace_every=0),
    codebook_size=16, num_codebooks=(2, 4), avq_width=2, rq_beams=(1, 5), recall_max=100,
)


def run(out_dir: Path, *, quick: bool = False, seed: int = 0) -> Path:
    """Run the benchmark (``quick``: a seconds-long smoke version) and write the JSON + plot."""
    return run_experiment(NAME, "glove", QUICK if quick else CONFIG, out_dir, seed=seed,
                          result_file=RESULT_FILES[0], plot_file=PLOT_FILE)


def report(results_dir: Path) -> str:
    return report_experiment(results_dir, RESULT_FILES[0], PLOT_FILE,
                             f"ANN search on GloVe-50 (`vqkit reproduce {NAME}`)")
