"""ANN search on Fashion-MNIST 784-d: NSVQ-trained PQ / RVQ / AVQ against FAISS PQ, RQ, LSQ.

[vali2023rpavq] Fig. 5 (the thesis's SIFT1M Recall@T experiment) on other data: Fashion-MNIST
pixels scaled to [0, 1], L2. The sizes are cut hard to fit a small shared CPU
(784-d makes every method about 16 times costlier than GloVe): 2,500 training and 2,500
database vectors (disjoint rows of the 60,000 training images) and 250 queries (test images).
32 and 64 bits (4 and 8 codebooks of 256 entries); AVQ encodes with beam 4.
"""

from __future__ import annotations

from ..apps.ann.config import BenchmarkConfig, Schedule, Split
from ._ann import ann_reproduction

CONFIG = BenchmarkConfig(
    Split(n_train=2_500, n_database=2_500, n_queries=250),
    Schedule(steps=100, batch_size=256, lr=1e-3, replace_every=25),
    avq_width=4,
)
QUICK = BenchmarkConfig(
    # FAISS RQ's progressive-dimension training runs a PCA: it needs n_train >= D = 784.
    Split(n_train=800, n_database=600, n_queries=50),
    Schedule(steps=10, batch_size=128, replace_every=0),
    codebook_size=16, num_codebooks=(2, 4), avq_width=2, rq_beams=(1, 5), recall_max=100,
)

REPRODUCTION = ann_reproduction(
    "ann-fashion", "fashion", title="ANN search on Fashion-MNIST-784", settings=CONFIG,
    quick_settings=QUICK,
    description="ANN on Fashion-MNIST-784 (L2): vqkit PQ/RVQ/AVQ + NSVQ, exported to FAISS, "
    "vs FAISS",
    expected_minutes=35.0, quick_minutes=0.32,
)
