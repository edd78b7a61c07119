"""Beam-trained residual k-means against brute-force oracles: what each codebook's k-means
receives (every tuple of the beam, or the best), the subsample drawn before the rows exist,
FAISS's seeding (the same draws for every codebook), and the least-squares refit (a float64
``numpy.linalg.lstsq`` on the explicit one-hot code matrix)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import vqkit.quantizers.composite as composite
from vqkit import AdditiveVQ, ProductVQ, ResidualVQ
from vqkit.functional.beam import residual_beam_search
from vqkit.functional.kmeans import kmeans, seed_centres, subsample
from vqkit.functional.least_squares import least_squares_codebooks
from vqkit.quantizers.beam_fit import BeamFit, BestTuple, WholeBeam, check_beam_fit, fit_rows

torch.set_num_threads(1)


def _data(n=120, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g) @ torch.randn(dim, dim, generator=g)


def _record_kmeans(monkeypatch):
    """Every k-means input of init_codebook_ (the real k-means still runs)."""
    seen = []

    def recording(x, k, **options):
        seen.append(x.clone())
        return kmeans(x, k, **options)

    monkeypatch.setattr(composite, "kmeans", recording)
    return seen


def _brute_force_beam(x, books, width):
    """Per vector, in float64: all tuples over ``books`` sorted by error, the best ``width``
    residuals (exact when the beam never prunes before its last stage)."""
    rows = []
    combos = list(itertools.product(*[range(b.shape[0]) for b in books]))
    for v in x.double():
        res = [v - sum(b.double()[i] for b, i in zip(books, c, strict=True)) for c in combos]
        errors = torch.stack([r.pow(2).sum() for r in res])
        order = torch.sort(errors, stable=True).indices[:width]
        rows += [res[int(j)] for j in order]
    return torch.stack(rows)


@pytest.mark.parametrize("width", [4, 5])
def test_each_stage_fits_every_residual_of_the_beam(monkeypatch, width):
    # K = 4: the beam keeps all 4 codewords of codebook 0 (width >= 4), so before codebook 2
    # it holds the best `width` of all 16 tuples: the brute force's.
    x = _data()
    seen = _record_kmeans(monkeypatch)
    q = ResidualVQ(3, 4, 3)
    q.init_codebook_(x, generator=torch.Generator().manual_seed(0), iters=3, beam=width,
                     fit_to=WholeBeam())
    books = [b for b in q.codewords.detach()]
    assert [r.shape[0] for r in seen] == [120, 120 * 4, 120 * width]
    torch.testing.assert_close(seen[0], x)
    for m in (1, 2):
        oracle = _brute_force_beam(x, books[:m], width).float()
        torch.testing.assert_close(seen[m], oracle, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fit_to", [BestTuple(), None])
def test_best_tuple_fits_the_best_residual_only_and_is_the_default(monkeypatch, fit_to):
    x = _data(seed=1)
    seen = _record_kmeans(monkeypatch)
    q = ResidualVQ(3, 4, 3)
    q.init_codebook_(x, generator=torch.Generator().manual_seed(0), iters=3, beam=5,
                     fit_to=fit_to)
    books = [b for b in q.codewords.detach()]
    assert [r.shape[0] for r in seen] == [120, 120, 120]
    for m in (1, 2):
        torch.testing.assert_close(seen[m], _brute_force_beam(x, books[:m], 1).float(),
                                   rtol=1e-5, atol=1e-5)


def test_the_fit_is_deterministic_and_differs_from_the_best_tuple_fit():
    x = _data(400, 4, seed=2)
    runs = []
    for fit_to in (WholeBeam(), WholeBeam(), BestTuple()):
        q = AdditiveVQ(4, 8, 3)
        q.init_codebook_(x, generator=torch.Generator().manual_seed(3), iters=5, beam=4,
                         fit_to=fit_to, max_points_per_centroid=30)
        runs.append(q.codewords.detach())
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0][0], runs[2][0])  # codebook 0: the data's k-means under both
    assert not torch.equal(runs[0][1:], runs[2][1:])


def test_the_subsample_is_drawn_before_the_rows_exist():
    # fit_rows(max_rows) returns exactly what subsample() of the full (N B, D) matrix returns
    # from the same generator state, and leaves the generator in the same state.
    x = _data(50, 3, seed=4)
    books = [torch.randn(6, 3, generator=torch.Generator().manual_seed(m)) for m in range(2)]
    tuples = WholeBeam().tuples(x, books, 5)
    full = fit_rows(x, books, tuples, None, None)
    assert full.shape == (250, 3)
    a, b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    got = fit_rows(x, books, tuples, 70, a)
    assert torch.equal(got, subsample(full, 70, b))
    assert torch.equal(a.get_state(), b.get_state())
    with pytest.raises(ValueError, match=r"tuples must be \(50, B, 2\)"):
        fit_rows(x, books, tuples[..., :1], None, None)


def test_the_subsample_reaches_the_kmeans(monkeypatch):
    seen = _record_kmeans(monkeypatch)
    q = ResidualVQ(3, 4, 3)
    q.init_codebook_(_data(), generator=torch.Generator().manual_seed(0), iters=2, beam=5,
                     max_points_per_centroid=10, fit_to=WholeBeam())
    assert [r.shape[0] for r in seen] == [120, 40, 40]  # the k-means subsamples stage 0


def test_bad_fit_strategy():
    with pytest.raises(TypeError, match="fit_to must be WholeBeam"):
        check_beam_fit("whole")
    with pytest.raises(TypeError, match="fit_to"):
        ResidualVQ(3, 4, 2).init_codebook_(_data(), beam=2, fit_to="best")
    with pytest.raises(NotImplementedError):
        BeamFit().tuples(_data(), [torch.zeros(2, 3)], 2)


# -- FAISS's seeding ---------------------------------------------------------------------------
def test_random_seeding_draws_rows_uniformly_without_repeats():
    x = torch.arange(40.0)[:, None]
    drawn = seed_centres(x, 40, seeding="random", generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn.flatten().sort().values, x.flatten())  # each row once
    # The second centre: uniform among the other rows for "random", far rows for k-means++.
    x = torch.tensor([[0.0], [0.1], [0.2], [10.0]])
    far = {"random": 0, "kmeans++": 0}
    for seed in range(400):
        for seeding in far:
            two = seed_centres(x, 2, seeding=seeding, generator=torch.Generator().manual_seed(seed))
            far[seeding] += int(two[1, 0] == 10.0 or two[0, 0] == 10.0)
    assert 140 < far["random"] < 260  # P = 1/4 + 3/4 * 1/3 = 1/2
    assert far["kmeans++"] > 380  # P > 0.99
    with pytest.raises(ValueError, match="seeding must be one of"):
        seed_centres(x, 2, seeding="forgy")


def test_random_seeding_draws_every_codebook_from_the_same_generator_state(monkeypatch):
    states = []

    def recording(x, k, *, generator, **options):
        states.append(generator.get_state())
        return kmeans(x, k, generator=generator, **options)

    monkeypatch.setattr(composite, "kmeans", recording)
    x = _data(300, 3, seed=5)
    g = torch.Generator().manual_seed(7)
    start = g.get_state()
    ResidualVQ(3, 8, 3).init_codebook_(x, generator=g, iters=3, seeding="random",
                                       max_points_per_centroid=20)
    assert all(torch.equal(s, start) for s in states) and len(states) == 3
    assert not torch.equal(g.get_state(), start)  # it ends after the last codebook's draws
    states.clear()
    ResidualVQ(3, 8, 3).init_codebook_(x, generator=torch.Generator().manual_seed(7), iters=3,
                                       max_points_per_centroid=20)  # k-means++: one stream
    assert not torch.equal(states[1], states[0]) and not torch.equal(states[2], states[1])


def test_random_seeding_without_a_generator_leaves_a_fresh_private_one():
    x = _data(300, 3, seed=5)
    torch.manual_seed(11)
    a = ResidualVQ(3, 8, 2)
    a.init_codebook_(x, iters=3, seeding="random", beam=2)
    torch.manual_seed(11)
    b = ResidualVQ(3, 8, 2)
    b.init_codebook_(x, iters=3, seeding="random", beam=2)
    assert torch.equal(a.codewords, b.codewords)
    with pytest.raises(ValueError, match="seeding must be one of"):
        a.init_codebook_(x, seeding="faiss")


# -- the least-squares refit -------------------------------------------------------------------
def _lstsq_oracle(x, codes, books):
    """numpy float64: min-norm lstsq of the one-hot system over the used codewords, unused
    codewords kept, then each codebook m >= 1's mean over its uses moved into codebook 0."""
    sizes = [b.shape[0] for b in books]
    offsets = np.cumsum([0, *sizes[:-1]])
    onehot = np.zeros((x.shape[0], sum(sizes)))
    for m, off in enumerate(offsets):
        onehot[np.arange(x.shape[0]), off + codes[:, m].numpy()] = 1.0
    used = onehot.sum(0) > 0
    sol = np.concatenate([b.double().numpy() for b in books])
    sol[used] = np.linalg.lstsq(onehot[:, used], x.double().numpy(), rcond=None)[0]
    out = np.split(sol, offsets[1:])
    uses = np.split(onehot.sum(0), offsets[1:])
    for m in range(1, len(out)):
        mean = (out[m] * uses[m][:, None]).sum(0) / uses[m].sum()
        out[m], out[0] = out[m] - mean, out[0] + mean
    return onehot, out


def test_refit_equals_the_float64_lstsq_oracle():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(300, 3, generator=g) * 2 + 1
    books = [torch.randn(k, 3, generator=g) for k in (5, 4, 6)]
    codes = torch.stack([torch.randint(0, k, (300,), generator=g) for k in (5, 4, 6)], dim=1)
    codes[:, 2] = codes[:, 2].clamp_max(4)  # codeword 5 of codebook 2 is unused: kept
    onehot, oracle = _lstsq_oracle(x, codes, books)
    new = least_squares_codebooks(x, codes, books)
    for got, want in zip(new, oracle, strict=True):
        torch.testing.assert_close(got.double(), torch.from_numpy(want), rtol=1e-5, atol=1e-5)
    fitted = sum(b[codes[:, m]] for m, b in enumerate(new))
    best = onehot @ np.linalg.lstsq(onehot, x.double().numpy(), rcond=None)[0]
    torch.testing.assert_close(fitted.double(), torch.from_numpy(best), rtol=1e-5, atol=1e-5)


def test_refit_lowers_the_error_of_the_codes_and_is_deterministic():
    x = _data(500, 4, seed=8) + 3.0
    q = ResidualVQ(4, 8, 3)
    q.init_codebook_(x, generator=torch.Generator().manual_seed(0), iters=5, beam=4)
    old = list(q.codewords.detach())
    codes = residual_beam_search(x, old, 4)  # the codes the refit sees

    def error(books):
        return float((x - sum(b[codes[:, m]] for m, b in enumerate(books))).pow(2).sum(1).mean())

    twin = ResidualVQ(4, 8, 3)
    twin.load_state_dict(q.state_dict())
    q.refit_codebooks_(x, beam=4)
    twin.refit_codebooks_(x, beam=4)
    assert torch.equal(q.codewords, twin.codewords)
    new = list(q.codewords.detach())
    assert error(new) < 0.98 * error(old)
    torch.testing.assert_close(new, least_squares_codebooks(x, codes, old))
    for m in (1, 2):  # the gauge: later codebooks have zero mean over their uses
        torch.testing.assert_close(new[m][codes[:, m]].mean(0), torch.zeros(4), atol=1e-4,
                                   rtol=0)


def test_refit_refuses_product_vq_and_bad_arguments():
    with pytest.raises(ValueError, match="concatenates"):
        ProductVQ(4, 8, 2).refit_codebooks_(_data(100, 4))
    with pytest.raises(ValueError, match="beam"):
        ResidualVQ(4, 8, 2).refit_codebooks_(_data(100, 4), beam=0)
    with pytest.raises(ValueError, match=r"indices must be \(3, 2\)"):
        least_squares_codebooks(torch.zeros(3, 2), torch.zeros(3, 1, dtype=torch.long),
                                [torch.zeros(2, 2)] * 2)
    with pytest.raises(ValueError, match=r"indices\[:, 1\] must lie in \[0, 2\)"):
        least_squares_codebooks(torch.zeros(3, 2), torch.tensor([[0, 0], [1, 2], [0, 1]]),
                                [torch.zeros(2, 2)] * 2)
