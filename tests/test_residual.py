"""ResidualVQ: oracles for greedy and beam encoding, prefixes, dropout, gradients, EMA targets
(on the device of ``--device``; random draws stay on the CPU and are moved)."""

from __future__ import annotations

import itertools

import pytest
import torch

import vqkit
from vqkit import EMA, NoiseSubstitution, ResidualVQ, StraightThrough
from vqkit.quantizers.application import PerStage
from vqkit.quantizers.beam_fit import BestTuple
from vqkit.quantizers.dropout import BatchDepth, ExampleDepth, FractionDepth
from vqkit.quantizers.encoders import BeamSearch, Greedy

torch.set_num_threads(1)


def _randomise(rvq: ResidualVQ, seed: int, decay: float = 0.5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m, cb in enumerate(rvq.codebooks):  # copy_ moves the CPU draws to the device
            cb.codewords.copy_(torch.randn(cb.codewords.shape, generator=g) * decay**m)


def _reference_greedy(x: torch.Tensor, books: list[torch.Tensor]) -> torch.Tensor:
    """Stage by stage, float64, explicit squared distances."""
    r = x.double()
    out = []
    for c in books:
        d = ((r[:, None, :] - c.double()[None]) ** 2).sum(-1)
        i = d.argmin(dim=1)
        out.append(i)
        r = r - c.double()[i]
    return torch.stack(out, 1)


def _mse_per_vector(x, rvq, idx):
    return ((x - rvq.decode(idx)) ** 2).sum(-1)


def test_greedy_equals_stage_by_stage_reference(device):
    rvq = ResidualVQ(6, 16, 4).to(device)
    _randomise(rvq, 0)
    x = torch.randn(300, 6, generator=torch.Generator().manual_seed(1)).to(device)
    ref = _reference_greedy(x, [cb.codewords.detach() for cb in rvq.codebooks])
    assert torch.equal(rvq.encode(x), ref)


def test_exhaustive_beam_equals_brute_force(device):
    # 4*4 tuples after two stages
    rvq = ResidualVQ(3, 4, 3, encoder=BeamSearch(width=16)).to(device)
    _randomise(rvq, 2, decay=0.9)
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(3)).to(device)
    books = [cb.codewords.detach().double() for cb in rvq.codebooks]
    best = torch.full((200,), float("inf"), dtype=torch.float64, device=device)
    for combo in itertools.product(range(4), repeat=3):
        xh = sum(b[i] for b, i in zip(books, combo, strict=True))
        best = torch.minimum(best, ((x.double() - xh) ** 2).sum(-1))
    got = _mse_per_vector(x, rvq, rvq.encode(x)).double()
    torch.testing.assert_close(got, best, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_never_loses_to_greedy_in_mse(seed, device):
    greedy = ResidualVQ(8, 32, 4, encoder=Greedy()).to(device)
    _randomise(greedy, seed, decay=0.8)
    beam = ResidualVQ(8, 32, 4, encoder=BeamSearch(width=8)).to(device)
    beam.load_state_dict(greedy.state_dict())
    x = torch.randn(2000, 8, generator=torch.Generator().manual_seed(10 + seed)).to(device)
    e_greedy = _mse_per_vector(x, greedy, greedy.encode(x)).mean()
    e_beam = _mse_per_vector(x, beam, beam.encode(x)).mean()
    assert e_beam <= e_greedy
    assert e_beam < 0.99 * e_greedy  # the beam finds real improvements here


def test_prefix_decoding_and_bad_prefix(device):
    rvq = ResidualVQ(5, 8, 3).to(device)
    _randomise(rvq, 4)
    x = torch.randn(2, 7, 5).to(device)
    idx = rvq.encode(x)
    books = [cb.codewords.detach() for cb in rvq.codebooks]
    two = books[0][idx[..., 0]] + books[1][idx[..., 1]]
    assert torch.equal(rvq.decode(idx[..., :2]), two)
    masked = idx.clone()
    masked[..., 2] = -1
    assert torch.equal(rvq.decode(masked), two)
    with pytest.raises(ValueError, match="prefix"):
        rvq.decode(torch.zeros(2, 4, dtype=torch.long, device=device))
    with pytest.raises(ValueError, match=r"\[-1, 7\]"):
        rvq.decode(torch.full((2, 3), 8, device=device))


@pytest.mark.parametrize(
    "dropout", [BatchDepth(seed=3), ExampleDepth(min_depth=2, seed=3), FractionDepth(0.5, seed=3)]
)
def test_dropout_marks_suffixes_and_is_reproducible(dropout, device):
    a = ResidualVQ(4, 8, 4, dropout=dropout).to(device)
    # another "rank": same seed, same step counter
    b = ResidualVQ(4, 8, 4, dropout=dropout).to(device)
    x = torch.randn(400, 4).to(device)
    for _ in range(3):
        ia, ib = a(x).indices, b(x).indices
        assert torch.equal(ia < 0, ib < 0)
        depth = (ia >= 0).sum(1)
        # kept stages are a prefix: index -1 only after the last kept stage
        assert torch.equal(ia >= 0, torch.arange(4, device=device)[None, :] < depth[:, None])
        assert int(depth.min()) >= dropout.min_depth
    assert int(a.dropout_step) == 3
    assert not (a.eval()(x).indices < 0).any()  # no dropout in eval mode


def test_dropout_modes_distributions():
    g = torch.Generator().manual_seed(0)
    assert BatchDepth().depths(50, 6, g).unique().numel() == 1
    d = ExampleDepth().depths(6000, 6, g)
    assert d.unique().tolist() == [1, 2, 3, 4, 5, 6]
    f = FractionDepth(0.25).depths(20000, 6, g)
    # a quarter gets a uniform depth (1/6 of which is 6); the rest keeps all 6 stages
    assert abs(float((f < 6).float().mean()) - 0.25 * 5 / 6) < 0.02


def test_nsvq_gradient_reaches_every_stage_as_the_formula_says(device):
    torch.manual_seed(0)
    nsvq = NoiseSubstitution(generator=torch.Generator().manual_seed(1))
    rvq = ResidualVQ(5, 6, 3, estimator=nsvq).to(device)
    _randomise(rvq, 5)
    x = torch.randn(40, 5).to(device)
    out = rvq(x)
    g = torch.randn(40, 5).to(device)
    (out.quantized * g).sum().backward()
    idx = out.indices
    xhat = rvq.decode(idx).detach()
    err = x - xhat
    r = err.norm(dim=1, keepdim=True)
    u = (out.quantized.detach() - x) / r  # the unit noise direction
    coeff = -(g * u).sum(1, keepdim=True) / r
    for m, cb in enumerate(rvq.codebooks):
        expected = torch.zeros_like(cb.codewords).index_add_(0, idx[:, m], coeff * err)
        torch.testing.assert_close(cb.codewords.grad, expected, rtol=1e-4, atol=1e-5)


def test_ema_moves_each_codeword_to_mean_of_x_minus_the_others(device):
    rvq = ResidualVQ(3, 4, 2, estimator=StraightThrough(), learning=EMA(decay=0.0, eps=1e-9))
    rvq = rvq.to(device)
    _randomise(rvq, 6)
    before = [cb.codewords.clone() for cb in rvq.codebooks]
    x = torch.randn(64, 3).to(device)
    idx = rvq(x).indices
    for m, cb in enumerate(rvq.codebooks):
        other = before[1 - m][idx[:, 1 - m]]
        target = x - other
        for k in idx[:, m].unique():
            sel = idx[:, m] == k
            torch.testing.assert_close(cb.codewords[k], target[sel].mean(0), rtol=1e-4, atol=1e-5)


def test_per_stage_ste_forward_is_hard_and_losses_are_per_stage(device):
    rvq = ResidualVQ(4, 8, 3, estimator=PerStage(StraightThrough(beta=0.25))).to(device)
    _randomise(rvq, 7)
    x = torch.randn(50, 4).to(device).requires_grad_()
    out = rvq(x)
    assert torch.equal(out.quantized.detach(), rvq.decode(out.indices))
    books = [cb.codewords.detach() for cb in rvq.codebooks]
    r, commit = x.detach(), 0.0
    for m, c in enumerate(books):
        q = c[out.indices[:, m]]
        commit = commit + ((r - q) ** 2).mean()
        r = r - q
    torch.testing.assert_close(out.losses["commitment"], commit)
    g = torch.randn(50, 4).to(device)
    (out.quantized * g).sum().backward()
    torch.testing.assert_close(x.grad, g)  # straight through, unit scale


def test_seeded_nsvq_training_reaches_quality(device):
    torch.manual_seed(0)
    data = torch.randn(4096, 4, generator=torch.Generator().manual_seed(0)).to(device)
    nsvq = NoiseSubstitution(generator=torch.Generator().manual_seed(1))
    rvq = ResidualVQ(4, 16, 2, estimator=nsvq).to(device)
    opt = torch.optim.Adam(rvq.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(2)
    for step in range(600):
        batch = data[torch.randint(0, 4096, (128,), generator=g).to(device)]
        loss = ((rvq(batch).quantized - batch) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 99:
            rvq.replace_dead_codes_(0.01, generator=g)
    rvq.eval()
    mse = float(((rvq(data).quantized.detach() - data) ** 2).sum(-1).mean())
    # 8 bits for a 4-D unit Gaussian: the total variance is 4; high-rate theory gives ~0.3
    assert mse < 0.6, mse


def test_save_load_round_trip_keeps_encoder_and_dropout(tmp_path, device):
    rvq = ResidualVQ(4, 8, 3, encoder=BeamSearch(4), dropout=ExampleDepth(seed=9),
                     estimator=PerStage(StraightThrough()), learning=EMA()).to(device)
    rvq(torch.randn(10, 4).to(device))
    vqkit.save(rvq, tmp_path / "rvq.pt")
    back = vqkit.load(tmp_path / "rvq.pt", map_location=device)
    assert back.config() == rvq.config()
    assert int(back.dropout_step) == 1
    x = torch.randn(20, 4).to(device)
    assert torch.equal(back.encode(x), rvq.encode(x))


def test_dead_code_replacement_counts_every_codebook(device):
    rvq = ResidualVQ(2, 4, 2).to(device)
    with torch.no_grad():
        rvq.codebooks[0].codewords.copy_(torch.tensor([[0.0, 0], [5, 5], [9, 9], [-9, 9]]))
        rvq.codebooks[1].codewords.copy_(torch.tensor([[0.0, 0], [0.1, 0], [7, 7], [-7, 7]]))
    # stage 0 uses code 0; stage 1 codes 0 and 1
    rvq(torch.tensor([[0.0, 0.0], [0.1, 0.0]], device=device))
    assert rvq.replace_dead_codes_(0.5) == 3 + 2


def test_init_codebook_beats_random_init(device):
    data = torch.randn(2000, 6, generator=torch.Generator().manual_seed(0)).to(device)
    rvq = ResidualVQ(6, 16, 2).to(device)
    before = float(((rvq.eval()(data).quantized.detach() - data) ** 2).mean())
    rvq.init_codebook_(data, generator=torch.Generator().manual_seed(0), iters=10)
    after = float(((rvq(data).quantized.detach() - data) ** 2).mean())
    assert after < 0.7 * before


def test_bad_arguments(device):
    with pytest.raises(ValueError, match="num_codebooks"):
        ResidualVQ(4, 8, 0)
    with pytest.raises(TypeError, match="encoder"):
        ResidualVQ(4, 8, 2, encoder="beam")
    with pytest.raises(TypeError, match="dropout"):
        ResidualVQ(4, 8, 2, dropout=0.5)
    with pytest.raises(ValueError, match="width"):
        BeamSearch(0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        ResidualVQ(4, 8, 2).to(device)(torch.randn(3, 5, device=device))


def test_dropout_forward_makes_no_collective(monkeypatch, device):
    import torch.distributed as dist

    def forbidden(*args, **kwargs):
        raise AssertionError("a collective ran in forward")

    monkeypatch.setattr(dist, "all_reduce", forbidden)
    monkeypatch.setattr(dist, "broadcast", forbidden)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda *a: 2)
    rvq = ResidualVQ(4, 8, 3, dropout=FractionDepth(0.5, seed=1)).to(device)
    # gradient-learned codebooks: nothing to synchronise
    out = rvq(torch.randn(32, 4).to(device))
    assert (out.indices < 0).any()


def test_init_codebook_takes_samples_on_another_device(device):
    # Samples may stay on the CPU while the quantizer lives on the device.
    data = torch.randn(2000, 6, generator=torch.Generator().manual_seed(0))
    x = data.to(device)
    rvq = ResidualVQ(6, 16, 2).to(device).eval()
    before = float(((rvq.decode(rvq.encode(x)).detach() - x) ** 2).mean())
    rvq.init_codebook_(data, generator=torch.Generator().manual_seed(0), iters=10)
    assert all(cb.codewords.device == x.device for cb in rvq.codebooks)
    after = float(((rvq.decode(rvq.encode(x)).detach() - x) ** 2).mean())
    assert after < 0.7 * before


def test_beam_initialisation_fits_each_codebook_to_the_beams_best_residual():
    from vqkit.functional.beam import residual_beam_search
    from vqkit.functional.kmeans import kmeans

    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 4, generator=g) @ torch.randn(4, 4, generator=g)
    greedy, beam = (ResidualVQ(4, 8, 3) for _ in range(2))
    greedy.init_codebook_(x, generator=torch.Generator().manual_seed(1), iters=5)
    beam.init_codebook_(x, generator=torch.Generator().manual_seed(1), iters=5, beam=4,
                        fit_to=BestTuple())
    # Oracle: stage m's k-means runs on x minus the best tuple of a width-4 beam search over
    # the codebooks before it (after one codebook, that is the nearest codeword: greedy).
    g1, books = torch.Generator().manual_seed(1), []
    residual = x
    for _ in range(3):
        books.append(kmeans(residual, 8, iters=5, generator=g1))
        picked = residual_beam_search(x, books, 4)
        residual = x - sum(b[picked[:, j]] for j, b in enumerate(books))
    torch.testing.assert_close(beam.codewords, torch.stack(books))
    assert torch.equal(beam.codewords[:2], greedy.codewords[:2])
    assert not torch.equal(beam.codewords[2], greedy.codewords[2])
    with pytest.raises(ValueError, match="beam"):
        beam.init_codebook_(x, beam=0)
