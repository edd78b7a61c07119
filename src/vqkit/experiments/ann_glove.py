"""ANN search on GloVe 6B 50-d: NSVQ-trained PQ / RVQ / AVQ against FAISS PQ, RQ and LSQ.

[vali2023rpavq] Fig. 5 (the thesis's SIFT1M Recall@T experiment) on other data: GloVe rows
normalised to unit length (cosine search as L2), [pennington2014glove]. The sizes are cut to
fit a small, heavily shared CPU: 10,000 training, 10,000 database and 500 query vectors,
disjoint random rows of the 400,000. 32 and 64 bits (4 and 8 codebooks of 256 entries).
"""

from __future__ import annotations

from ..apps.ann.config import BenchmarkConfig, Schedule, Split
from ._ann import ann_reproduction

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

REPRODUCTION = ann_reproduction(
    "ann-glove", "glove", title="ANN search on GloVe-50", settings=CONFIG, quick_settings=QUICK,
    description="ANN on GloVe-50 (cosine): vqkit PQ/RVQ/AVQ + NSVQ, exported to FAISS, vs FAISS",
    expected_minutes=31.0, quick_minutes=0.05,
)
