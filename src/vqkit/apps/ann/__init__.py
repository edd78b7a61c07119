"""Approximate nearest-neighbour search with vqkit quantizers, exported to FAISS.

- :mod:`.faiss_bridge`: ProductVQ / ResidualVQ / AdditiveVQ <-> FAISS quantizers and indexes;
- :mod:`.evaluate`: exact ground truth, Recall@T, MSE and timings;
- :mod:`.train`: k-means initialisation and NSVQ training of the quantizers;
- :mod:`.config`: the sizes and schedules of a benchmark run;
- :mod:`.datasets`: GloVe and Fashion-MNIST splits (train / database / queries);
- :mod:`.benchmark`: the table of vqkit against FAISS's own quantizers;
- :mod:`.report`: its JSON, recall plot and Markdown (beside the thesis's SIFT1M numbers);
- :mod:`.experiment`: the shared body of the ``ann-glove`` / ``ann-fashion`` reproductions.

faiss is optional; only :mod:`.faiss_bridge` and :mod:`.benchmark` import it, when called.
"""
