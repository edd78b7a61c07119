"""Codebook parameterisations (vqkit.parameterisations) against their definitions.

SimVQ's codewords are ``B W`` ([zhu2024simvq]); cosine search is an argmax of cosine similarity
(float64 oracle, ties to the lowest index); factorised codes search in the projected space and
decode through the out-projection ([yu2022vitvqgan]); every estimator runs in the code space;
refusals say why. The contract suite (tests/test_contract.py) covers shapes, masks, save/load
and bf16 for each parameterisation.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vqkit
from vqkit import (
    EMA,
    AdditiveVQ,
    ChannelsFirst,
    Cosine,
    Direct,
    DiVeQ,
    Factorised,
    NoiseSubstitution,
    ProductVQ,
    ResidualVQ,
    RotationTrick,
    SimVQ,
    StraightThrough,
    VectorQuantizer,
)
from vqkit.functional.kmeans import kmeans
from vqkit.functional.search import nearest_neighbor
from vqkit.registry import PARAMETERISATIONS
from vqkit.strategy import from_config, to_config

D, K = 8, 32


def _x(n=64, seed=0, dim=D):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


# -- SimVQ --------------------------------------------------------------------------------------
def test_simvq_codewords_are_basis_times_w_plus_b_and_every_codeword_learns():
    torch.manual_seed(0)
    vq = VectorQuantizer(D, K, estimator=NoiseSubstitution(), init="normal",
                         parameterisation=SimVQ())
    cb = vq.codebook
    assert not cb.basis.requires_grad and cb.weight.requires_grad and cb.bias.requires_grad
    assert [n for n, _ in vq.named_parameters()] == ["codebook.weight", "codebook.bias"]
    before = vq.codewords.detach().clone()
    opt = torch.optim.SGD(vq.parameters(), lr=0.1)
    x = _x(4, 11)  # four vectors pick at most four codewords...
    out = vq(x)
    out.quantized.pow(2).sum().backward()
    opt.step()
    after = vq.codewords.detach()
    # ...yet every codeword moved: they share W (the point of SimVQ).
    assert bool(((after - before).abs().sum(dim=1) > 0).all())
    oracle = cb.basis.double() @ cb.weight.detach().double() + cb.bias.detach().double()
    torch.testing.assert_close(after.double(), oracle, rtol=1e-6, atol=1e-7)
    assert {"codebook.basis", "codebook.weight", "codebook.bias"} <= set(vq.state_dict())


def test_simvq_without_bias_is_basis_times_w():
    vq = VectorQuantizer(D, K, parameterisation=SimVQ(bias=False))
    cb = vq.codebook
    assert cb.bias is None and [n for n, _ in vq.named_parameters()] == ["codebook.weight"]
    torch.testing.assert_close(vq.codewords.double(),
                               cb.basis.double() @ cb.weight.detach().double())
    with pytest.raises(TypeError, match="bias must be a bool"):
        SimVQ(bias=1)


def test_simvq_initialisation_follows_the_papers_code():
    # [zhu2024simvq]'s released code: basis ~ N(0, 1/d), frozen; the map is nn.Linear(d, d)'s
    # default initialisation, U(-1/sqrt(d), 1/sqrt(d)) for the weight and the bias.
    torch.manual_seed(0)
    d, k = 16, 4096
    cb = VectorQuantizer(d, k, parameterisation=SimVQ(), init="uniform").codebook
    assert abs(float(cb.basis.std()) - d**-0.5) < 0.02 * d**-0.5
    assert abs(float(cb.basis.mean())) < 0.01
    bound = d**-0.5
    for p in (cb.weight.detach(), cb.bias.detach()):
        assert float(p.abs().max()) <= bound and float(p.abs().max()) > 0.8 * bound
    assert abs(float(cb.weight.detach().std()) - bound / 3**0.5) < 0.15 * bound / 3**0.5
    # Not the identity and not the codebook's init: the codewords are a small cloud.
    assert not torch.allclose(cb.weight, torch.eye(d))
    assert float(cb.effective_codewords().detach().std()) < 0.5


def test_simvq_kmeans_fits_w_and_b_by_least_squares_and_refuses_replacement():
    torch.manual_seed(0)
    vq = VectorQuantizer(D, K, parameterisation=SimVQ(), init="normal")
    samples = _x(400, 1) * 3 + 5.0  # off-centre: the offset b is needed
    vq.init_codebook_(samples, generator=torch.Generator().manual_seed(0))
    centres = kmeans(
        samples, K, iters=50, generator=torch.Generator().manual_seed(0))
    basis = vq.codebook.basis.double()
    design = torch.cat([basis, torch.ones(K, 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, centres.double()).solution
    torch.testing.assert_close(vq.codebook.weight.double(), solution[:D], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(vq.codebook.bias.double(), solution[D], rtol=1e-5, atol=1e-6)
    vq.train()(samples[:32])
    with pytest.raises(ValueError, match="SimVQ cannot replace dead codes.*shared map W"):
        vq.replace_dead_codes_(0.5)
    avq = AdditiveVQ(D, 4, 2, parameterisation=SimVQ())
    with pytest.raises(ValueError, match="SimVQ cannot replace"):
        avq.replace_dead_codes_(0.5, pooled=True)


def test_simvq_with_ema_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="SimVQ cannot be learned by EMA.*gradient only"):
        VectorQuantizer(D, K, learning=EMA(), parameterisation=SimVQ())
    with pytest.raises(ValueError, match="SimVQ cannot be learned by EMA"):
        ProductVQ(D, K, 2, learning=EMA(), parameterisation=Factorised(3, SimVQ()))


def test_simvq_residual_kmeans_chain_subtracts_the_fit():
    # Stage 2 is fitted to what stage 1's *fitted* codewords leave, not its k-means centres.
    torch.manual_seed(0)
    rvq = ResidualVQ(D, 8, 2, parameterisation=SimVQ(), init="normal")
    samples = _x(300, 2)
    rvq.init_codebook_(samples, generator=torch.Generator().manual_seed(0))
    c1 = rvq.codebooks[0].effective_codewords().detach()
    residual = samples - c1[nearest_neighbor(samples, c1)[1][:, 0]]
    stage2 = kmeans(
        residual, 8, iters=50, generator=_generator_after_first_stage(samples))
    cb2 = rvq.codebooks[1]
    design = torch.cat([cb2.basis.double(), torch.ones(8, 1, dtype=torch.float64)], dim=1)
    fit = torch.linalg.lstsq(design, stage2.double()).solution
    torch.testing.assert_close(cb2.weight.double(), fit[:D], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cb2.bias.double(), fit[D], rtol=1e-4, atol=1e-5)


def _generator_after_first_stage(samples):
    g = torch.Generator().manual_seed(0)
    kmeans(samples, 8, iters=50, generator=g)
    return g


# -- cosine -----------------------------------------------------------------------------------
def _argmax_cosine(x, c):
    """float64 oracle: the lowest index of the largest cosine similarity."""
    x64, c64 = x.double(), c.double()
    cos = (x64 / x64.norm(dim=1, keepdim=True)) @ (c64 / c64.norm(dim=1, keepdim=True)).T
    best = cos.max(dim=1, keepdim=True).values
    ties = cos >= best - 1e-12
    return torch.arange(c.shape[0]).expand_as(cos).where(ties, c.shape[0]).min(dim=1).values


def test_cosine_search_is_the_argmax_of_cosine_similarity_with_ties_to_the_lowest():
    torch.manual_seed(0)
    vq = VectorQuantizer(D, K, parameterisation=Cosine(), init="normal").eval()
    with torch.no_grad():  # ties: codeword 7 = 4 * codeword 3, codeword 9 = codeword 2
        vq.codebook.codewords[7] = vq.codebook.codewords[3] * 4
        vq.codebook.codewords[9] = vq.codebook.codewords[2]
    c = vq.codebook.codewords.detach()
    x = torch.cat([_x(500, 3) * 5 + 2, c[[3, 7, 2, 9]] * 0.5, c[[7]] * 8])
    idx = vq.encode(x)
    assert torch.equal(idx, _argmax_cosine(x, c))
    assert idx[-5:].tolist() == [3, 3, 2, 2, 3]  # the tied ones: the lowest index
    # The output is the unit codeword, whatever the input's norm.
    out = vq(x * 1000).quantized
    torch.testing.assert_close(out, F.normalize(c[idx], dim=-1))


def test_cosine_ema_averages_normalised_inputs_and_renormalises():
    vq = VectorQuantizer(2, 2, estimator=StraightThrough(), learning=EMA(decay=0.5, eps=1e-9),
                         parameterisation=Cosine())
    with torch.no_grad():
        vq.codebook.codewords.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        vq.codebook.ema_sums.copy_(vq.codebook.codewords)
    x = torch.tensor([[10.0, 1.0], [3.0, -1.0]])  # both nearest to codeword 0 in angle
    vq.train()(x)
    unit = F.normalize(x, dim=-1)
    sums = 0.5 * torch.tensor([1.0, 0.0]) + 0.5 * unit.sum(0)
    torch.testing.assert_close(vq.codebook.ema_sums[0], sums)
    torch.testing.assert_close(vq.codewords[0], F.normalize(sums, dim=0))


def test_cosine_and_factorised_are_refused_by_the_sum_type_quantizers():
    for cls in (ResidualVQ, AdditiveVQ):
        for p in (Cosine(), Factorised(3)):
            with pytest.raises(ValueError, match="summed in the data space.*Direct\\(\\) or "
                                                 "SimVQ\\(\\)"):
                cls(D, 8, 2, parameterisation=p)
    ResidualVQ(D, 8, 2, parameterisation=SimVQ())  # accepted


# -- factorised ---------------------------------------------------------------------------------
def test_factorised_searches_in_the_projected_space_and_decodes_through_the_projection():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, K, parameterisation=Factorised(4), init="normal").eval()
    cb = vq.codebook
    assert vq.dim == 16 and vq.codewords.shape == (K, 4)
    x = _x(200, 4, dim=16)
    z = x.double() @ cb.project_in.weight.double().T + cb.project_in.bias.double()
    c = cb.codewords.double()
    idx = torch.cdist(z, c).argmin(dim=1)
    assert torch.equal(vq.encode(x), idx)
    expected = c[idx] @ cb.project_out.weight.double().T + cb.project_out.bias.double()
    torch.testing.assert_close(vq(x).quantized.double(), expected, rtol=1e-5, atol=1e-6)


def test_factorised_kmeans_fits_the_projected_samples():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 8, parameterisation=Factorised(4))
    samples = _x(300, 5, dim=16)
    vq.init_codebook_(samples, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = vq.codebook.project_in(samples)
    ref = kmeans(z, 8, iters=50, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(vq.codewords.detach(), ref)


def test_dead_code_replacement_works_in_the_code_space():
    for p in (Cosine(), Factorised(3), Factorised(3, Cosine())):
        torch.manual_seed(0)
        vq = VectorQuantizer(D, K, parameterisation=p, init="normal")
        vq.train()(_x(3, 6))  # three inputs: at most three codewords used
        used = set(vq.codebook.usage.nonzero().flatten().tolist())
        before = vq.codewords.detach().clone()
        n = vq.replace_dead_codes_(0.5, generator=torch.Generator().manual_seed(0))
        assert n == K - len(used)
        after = vq.codewords.detach()
        dead = [k for k in range(K) if k not in used]
        for k in dead:  # each dead codeword is now (almost) a used one
            gap = (after[k] - before[sorted(used)]).norm(dim=1).min()
            assert gap < 1e-2 * before[sorted(used)].norm(dim=1).max()


def test_factorised_inner_must_not_be_factorised_and_dim_is_checked():
    with pytest.raises(ValueError, match="inner must not be Factorised"):
        Factorised(4, Factorised(2))
    with pytest.raises(ValueError, match="codebook_dim must be an int >= 1, got 0"):
        Factorised(0)
    with pytest.raises(TypeError, match="inner must be a CodebookParameterisation"):
        Factorised(4, "cosine")
    with pytest.raises(TypeError, match="parameterisation must be a CodebookParameterisation"):
        VectorQuantizer(D, K, parameterisation="cosine")


# -- estimators in the code space ---------------------------------------------------------------
@pytest.mark.parametrize("p", [Cosine(), Factorised(3), Factorised(3, Cosine()), SimVQ()],
                         ids=repr)
def test_nsvq_substitutes_noise_in_the_code_space(p):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    vq = VectorQuantizer(D, K, estimator=NoiseSubstitution(generator=g), parameterisation=p,
                         init="normal")
    x = _x(16, 8)
    out = vq.train()(x)
    cb = vq.codebook
    with torch.no_grad():
        z = cb.to_code(x)
        q = cb.effective_codewords()[out.indices]
        v = torch.randn(z.shape, generator=torch.Generator().manual_seed(7))
        expected = z + (z - q).norm(dim=1, keepdim=True) * v / v.norm(dim=1, keepdim=True)
        torch.testing.assert_close(out.quantized, cb.from_code(expected))


@pytest.mark.parametrize("est", [StraightThrough(), RotationTrick(), DiVeQ(sigma=0.0)], ids=repr)
@pytest.mark.parametrize("p", [Cosine(), Factorised(3, Cosine()), SimVQ()], ids=repr)
def test_hard_estimators_output_the_decoded_code_and_train_everything(est, p):
    torch.manual_seed(0)
    vq = VectorQuantizer(D, K, estimator=est, parameterisation=p, init="normal")
    x = _x(32, 9).requires_grad_()
    out = vq.train()(x)
    expected = vq.decode(out.indices).detach()
    torch.testing.assert_close(out.quantized, expected, rtol=1e-5, atol=1e-5)
    (out.quantized.pow(2).sum() + out.loss).backward()
    assert x.grad.abs().sum() > 0
    for name, param in vq.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_rotation_on_the_sphere_has_gain_one():
    # Rotation trick x cosine x factorised: unit input and unit code, so ||grad z|| = ||grad out||.
    torch.manual_seed(0)
    vq = VectorQuantizer(D, K, estimator=RotationTrick(beta=0.0),
                         parameterisation=Factorised(3, Cosine()), init="normal")
    z = vq.codebook.to_code(_x(5, 10)).detach().requires_grad_()
    q = vq.codebook.effective_codewords()[:5]  # any unit codewords
    out = vq.estimator(z, q.detach(), True)
    g = torch.randn(out.quantized.shape, generator=torch.Generator().manual_seed(1))
    out.quantized.backward(g)
    torch.testing.assert_close(z.grad.norm(dim=1), g.norm(dim=1), rtol=1e-5, atol=1e-6)


# -- configs, saving, the registry, adapters ----------------------------------------------------
def test_default_configs_are_unchanged_and_others_round_trip(tmp_path):
    assert "parameterisation" not in VectorQuantizer(D, K).config()
    assert "parameterisation" not in ResidualVQ(D, K, 2, parameterisation=Direct()).config()
    p = Factorised(3, Cosine())
    vq = VectorQuantizer(D, K, parameterisation=p)
    assert vq.config()["parameterisation"] == {
        "type": "Factorised", "codebook_dim": 3, "inner": {"type": "Cosine"}}
    assert VectorQuantizer.from_config(vq.config()).codebook.parameterisation == p
    pvq = ProductVQ(D, K, 2, parameterisation=SimVQ())
    vqkit.save(pvq, tmp_path / "p.pt")
    assert vqkit.load(tmp_path / "p.pt").parameterisation == SimVQ()


def test_registry_aliases():
    assert PARAMETERISATIONS.aliases() == {"direct": "Direct", "simvq": "SimVQ",
                                           "linear": "SimVQ", "factorised": "Factorised",
                                           "cosine": "Cosine"}
    assert from_config(to_config(Factorised(5, SimVQ())), PARAMETERISATIONS) == Factorised(
        5, SimVQ())


def test_channels_first_around_a_factorised_cosine_quantizer():
    torch.manual_seed(0)
    q = ChannelsFirst(VectorQuantizer(D, K, parameterisation=Factorised(3, Cosine())))
    x = torch.randn(2, D, 5, 4)
    out = q.train()(x)
    assert out.quantized.shape == x.shape and out.indices.shape == (2, 5, 4)
    q.eval()
    assert torch.equal(q.decode(q.encode(x)), q(x).quantized)
