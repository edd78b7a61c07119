"""LFQ / BSQ ([yu2024magvit], [zhao2024bsq]) and the entropy penalty against brute force over
all 2^d codes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import vqkit
from vqkit import BSQ, LFQ, EntropyPenalty, StraightThrough, VectorQuantizer
from vqkit.functional.entropy import binary_code_entropies


def all_codes(d: int, scale: float) -> torch.Tensor:
    """``(2^d, d)`` codes in index order: row k has +scale where bit i of k is set."""
    k = torch.arange(2**d)[:, None]
    bits = (k >> torch.arange(d)) & 1
    return (bits.double() * 2 - 1) * scale


def brute_force(z: torch.Tensor, scale: float, temperature: float):
    """Softmax of -||z - c||^2 / T over all 2^d codes: (E H(p), H(E p), marginal entropies)."""
    codes = all_codes(z.shape[1], scale)
    p = torch.softmax(-torch.cdist(z, codes).pow(2) / temperature, dim=1)
    per_sample = -(p * p.clamp_min(1e-300).log()).sum(1).mean()
    mean = p.mean(0)
    joint = -(mean * mean.clamp_min(1e-300).log()).sum()
    positive = (codes > 0).double()  # P(bit i = 1) = sum of the codes with bit i set
    m = mean @ positive
    marginal = -(m * m.log() + (1 - m) * (1 - m).log()).sum()
    return per_sample, joint, marginal


@pytest.mark.parametrize("cls", [LFQ, BSQ])
def test_indices_are_the_binary_code_of_the_signs(cls):
    z = torch.randn(300, 10, generator=torch.Generator().manual_seed(0))
    q = cls(10, 2**10)
    expected = sum(int(2**i) * (z[:, i] > 0).long() for i in range(10))
    assert torch.equal(q.encode(z), expected)
    out = q.eval()(z).quantized
    assert torch.equal(out, all_codes(10, q.scale).float()[expected])
    assert torch.equal(q.decode(expected), out)


def test_bsq_puts_input_and_codes_on_the_unit_sphere():
    q = BSQ(6, 2**6)
    z = torch.randn(50, 6) * 7
    out = q.eval()(z).quantized
    torch.testing.assert_close(out.norm(dim=1), torch.ones(50))
    assert torch.equal(out, torch.sign(z) * q.scale) and q.scale == pytest.approx(6**-0.5)
    x = z.clone().requires_grad_()
    q.train()(x).quantized.sum().backward()  # STE through the sign, then d(z/||z||)/dz
    u = z / z.norm(dim=1, keepdim=True)
    g = torch.ones(6)
    expected = (g - u * (u @ g)[:, None]) / z.norm(dim=1, keepdim=True)
    torch.testing.assert_close(x.grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("d", [1, 3, 6, 10])
@pytest.mark.parametrize("scale", [1.0, 0.37])
def test_closed_form_entropies_equal_brute_force_over_all_codes(d, scale):
    temperature = 0.5
    z = torch.randn(40, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64) * 0.4
    per_sample, joint, marginal = brute_force(z, scale, temperature)
    logits = z * 4 * scale / temperature
    ps, cb = binary_code_entropies(logits.double())
    torch.testing.assert_close(ps.double(), per_sample, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cb.double(), marginal, rtol=1e-5, atol=1e-6)
    assert float(cb) >= float(joint) - 1e-6  # the factorised codebook entropy bounds the joint
    one_ps, one_cb = binary_code_entropies(logits[:1])
    torch.testing.assert_close(one_cb.double(), brute_force(z[:1], scale, temperature)[1],
                               rtol=1e-5, atol=1e-6)  # equal for one sample (a product)


def test_penalty_gradient_equals_autograd_of_brute_force():
    d, temperature, scale = 4, 0.8, 1.0
    z = torch.randn(16, d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    pen = EntropyPenalty(weight=0.3, temperature=temperature, diversity=0.7)
    a = z.clone().requires_grad_()
    pen.on_bits(a, scale)[0].backward()
    b = z.clone().requires_grad_()
    per_sample, _, marginal = brute_force(b, scale, temperature)
    (0.3 * (per_sample - 0.7 * marginal)).backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-7)


def test_vq_entropy_penalty_equals_brute_force_and_round_trips(tmp_path):
    vq = VectorQuantizer(3, 5, estimator=StraightThrough(),
                         regulariser=EntropyPenalty(weight=0.2, temperature=0.5))
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(1))
    out = vq.train()(x)
    c = vq.codewords.detach()
    p = torch.softmax(-torch.cdist(x, c).pow(2) / 0.5, dim=1)
    per_sample = -(p * p.log()).sum(1).mean()
    codebook = -(p.mean(0) * p.mean(0).log()).sum()
    torch.testing.assert_close(out.losses["entropy_per_sample"], per_sample, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.losses["entropy_codebook"], codebook, rtol=1e-5, atol=1e-6)
    plain = StraightThrough()(x, c[out.indices], True).loss
    torch.testing.assert_close(out.loss, plain + 0.2 * (per_sample - codebook))
    vqkit.save(vq, tmp_path / "vq.pt")
    assert vqkit.load(tmp_path / "vq.pt").regulariser == vq.regulariser
    assert "regulariser" not in VectorQuantizer(3, 5).config()  # old configs unchanged


@pytest.mark.parametrize("cls", [LFQ, BSQ])
def test_a_bit_saturated_in_every_sample_keeps_the_penalty_and_its_gradient_finite(cls):
    """The network case that once gave NaN at the second step: every vector has a large
    positive first coordinate, so bit 0's batch-mean probability rounds to exactly 1 in fp32."""
    x = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    x[:, 0] = 50.0
    x.requires_grad_()
    q = cls(10, 2**10).train()
    logits = x.detach()[:, :1] * (4.0 / 0.01)
    assert float(torch.sigmoid(logits).mean()) == 1.0  # the saturated case
    out = q(x)
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(torch.isfinite(v) for v in out.losses.values())
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("cls", [LFQ, BSQ])
def test_masked_rows_do_not_enter_the_penalty(cls):
    q = cls(6, 2**6, estimator=StraightThrough(beta=0.0)).train()
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([True, False] * 5)
    masked, kept = q(x, mask=mask), q(x[mask])
    for name in ("entropy_per_sample", "entropy_codebook"):
        torch.testing.assert_close(masked.losses[name], kept.losses[name])
    torch.testing.assert_close(masked.loss, kept.loss)


def test_codebook_size_must_be_a_power_of_two_and_regulariser_typed():
    for bad in (0, 1, 12, 2**63, 3.0):
        with pytest.raises(ValueError, match="power of two"):
            LFQ(4, bad)
    with pytest.raises(TypeError, match="Regulariser"):
        LFQ(4, 16, regulariser="entropy")
    assert sorted(LFQ(4, 16, regulariser=None)(torch.randn(3, 4)).losses) == ["commitment"]
    with pytest.raises(ValueError, match="temperature"):
        EntropyPenalty(temperature=0.0)


def test_no_table_of_all_codes_is_built_at_18_bits():
    # N x 2^18 floats would be 4 GiB; FSQ with 8^8 = 2^24 codes likewise. Measured in a fresh
    # process: the rise of the peak resident size over one training step.
    script = textwrap.dedent("""
        import torch
        from vqkit import FSQ, LFQ, BSQ
        torch.set_num_threads(1)
        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        qs = [LFQ(18, 2**18), BSQ(18, 2**18), FSQ(8, (8,) * 8)]
        xs = [torch.randn(4096, q.dim, requires_grad=True) for q in qs]
        base = hwm()
        for q, x in zip(qs, xs):
            out = q(x)
            (out.quantized.sum() + out.loss).backward()
            assert out.indices.max() < q.codebook_size
        print(hwm() - base)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.split()[-1]) < 64 * 2**20


def test_faiss_has_no_equivalent_and_says_so():
    pytest.importorskip("faiss")
    from vqkit import FSQ, ResidualFSQ
    from vqkit.apps.ann.faiss_bridge import to_faiss, to_faiss_quantizer

    for q in (FSQ(4, (8, 5, 5, 5)), ResidualFSQ(4, (4, 4), 2), LFQ(8, 256), BSQ(8, 256)):
        for export in (to_faiss, to_faiss_quantizer):
            with pytest.raises(TypeError, match="ProductVQ, ResidualVQ or AdditiveVQ, got"):
                export(q)
