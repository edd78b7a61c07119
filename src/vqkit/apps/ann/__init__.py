"""Approximate nearest-neighbour search with vqkit quantizers, exported to FAISS.

- :mod:`.faiss_bridge`: ProductVQ / ResidualVQ / AdditiveVQ <-> FAISS quantizers and indexes;
- :mod:`.ivf`: IVF FAISS indexes with vqkit k-means coarse centroids and a vqkit quantizer's
  codes in the lists;
- :mod:`.evaluate`: exact ground truth, Recall@T, MSE and timings (wall and CPU);
- :mod:`.ground_truth`: the brute-force ground truth of a split, cached on disk by fingerprint;
- :mod:`.train`: FAISS-like residual k-means initialisation and NSVQ training;
- :mod:`.config`: the sizes and schedules of a benchmark run;
- :mod:`.datasets`: GloVe and Fashion-MNIST in the standard protocol (raw vectors; training
  vectors drawn from the database; queries apart);
- :mod:`.benchmark`: the table of vqkit against FAISS's own quantizers;
- :mod:`.report`: its JSON, recall plot and Markdown (beside the thesis's SIFT1M numbers);
- :mod:`.experiment`: the shared body of the ``ann-glove`` / ``ann-fashion`` reproductions.

faiss is optional; only :mod:`.faiss_bridge`, :mod:`.ivf` and :mod:`.benchmark` import it,
when called.
``vqkit index build`` / ``vqkit index search`` (:mod:`vqkit.cli.commands.index`) build and
search a flat or IVF FAISS index from a trained quantizer file.
"""
