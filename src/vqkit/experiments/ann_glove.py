"""ANN search on GloVe 6B 50-d: vqkit PQ / RVQ / AVQ against FAISS PQ, RQ and LSQ.

[vali2023rpavq] Fig. 5 (the thesis's SIFT1M Recall@T experiment) on other data, in the
standard protocol of ANN benchmarks ([pennington2014glove] raw vectors, L2): 10,000 random
query rows, the other 390,000 as the database, 100,000 training vectors drawn from the
database; Recall@T of the true nearest neighbour, one thread. 32 and 64 bits (4 and 8
codebooks of 256 entries). The ``small`` variant keeps the sizes the benchmark had before
(10,000 / 10,000 / 500) for quick runs.
"""

from __future__ import annotations

from ..apps.ann.config import BenchmarkConfig, Init, Schedule, Split
from ._ann import ann_reproduction

#: NSVQ and k-means settings (the progressive-dimension k-means of FAISS RQ, 10 steps of 10
#: Lloyd iterations) chosen on 5,000 validation vectors carved from the training vectors
#: (docs/ann.md, "How the recipe was chosen").
CONFIG = BenchmarkConfig(Split(n_train=100_000, n_database=390_000, n_queries=10_000),
                         Schedule(steps=2000, batch_size=1024, lr=3e-3, replace_every=0),
                         Init(iters=10, beam=8, dim_steps=10), validation=5_000,
                         encode_beam=8, rvq_encode_beam=32)
SMALL = BenchmarkConfig(Split(n_train=10_000, n_database=10_000, n_queries=500),
                        Schedule(steps=200, batch_size=1024, lr=1e-3, replace_every=0),
                        Init(beam=8), validation=1_000, encode_beam=8)
QUICK = BenchmarkConfig(
    Split(n_train=600, n_database=1_000, n_queries=50),
    Schedule(steps=10, batch_size=128, replace_every=0), Init(beam=2, dim_steps=3),
    validation=100,
    codebook_size=16, num_codebooks=(2, 4), encode_beam=2, rq_beams=(1, 5), recall_max=100,
)

REPRODUCTION = ann_reproduction(
    "ann-glove", "glove", title="ANN search on GloVe-50", settings=CONFIG, quick_settings=QUICK,
    small_settings=SMALL,
    description="ANN on GloVe-50 (raw, L2; 100k train, 390k database, 10k queries): vqkit "
    "PQ/RVQ/AVQ exported to FAISS, vs FAISS",
    expected_minutes=90.0, quick_minutes=0.05,
)
