"""FSQ and ResidualFSQ against the paper's equations ([mentzer2024fsq] App. A.1) in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vqkit import (
    FSQ,
    ChannelsFirst,
    DiVeQ,
    DiVeQDetach,
    ExampleDepth,
    NoiseSubstitution,
    ResidualFSQ,
    RotationTrick,
    StraightThrough,
    pack_indices,
    unpack_indices,
)
from vqkit.functional.scalar import fsq_codes_to_indices, fsq_indices_to_integers

LEVELS = (3, 4, 5, 8, 2, 7)  # odd and even


def reference(z: np.ndarray, levels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's code in float64: bound, round, code in [-1, 1], mixed-radix index."""
    lv = np.asarray(levels, dtype=np.float64)
    half_l = (lv - 1) * (1 - 1e-3) / 2
    offset = np.where(lv % 2 == 1, 0.0, 0.5)
    shift = np.tan(offset / half_l)
    bounded = np.tanh(z + shift) * half_l - offset
    k = np.round(bounded)
    half_width = np.floor(lv / 2)
    basis = np.cumprod([1, *levels[:-1]])
    index = ((k + half_width) * basis).sum(axis=-1).astype(np.int64)
    return bounded, k / half_width, index


def test_bound_and_rounding_equal_the_float64_reference_for_odd_and_even_levels():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, len(LEVELS), generator=g, dtype=torch.float64) * 2
    bounded, code, index = reference(z.numpy(), LEVELS)
    # Leave out values within 1e-4 of a rounding boundary (fp32 may fall on either side).
    safe = torch.from_numpy((np.abs(bounded - np.floor(bounded) - 0.5) > 1e-4).all(axis=1))
    fsq = FSQ(len(LEVELS), LEVELS).eval()
    out = fsq(z.float())
    assert int(safe.sum()) > 3900
    assert torch.equal(out.quantized[safe], torch.from_numpy(code).float()[safe])  # k / floor(L/2)
    assert torch.equal(out.indices[safe], torch.from_numpy(index)[safe])
    assert torch.equal(fsq.encode(z.float())[safe], torch.from_numpy(index)[safe])


def test_each_channel_takes_exactly_its_levels():
    z = torch.linspace(-20, 20, 20001)[:, None].expand(-1, len(LEVELS))
    fsq = FSQ(len(LEVELS), LEVELS)
    ints = fsq_indices_to_integers(fsq.encode(z.contiguous()), fsq.levels_buffer)
    for i, level in enumerate(LEVELS):
        got = sorted(set(ints[:, i].tolist()))
        assert got == list(range(-(level // 2), level - level // 2)), (level, got)
    # bound(0) rounds to the middle level (0) for odd and even L: the half-level shift
    assert torch.equal(fsq.eval()(torch.zeros(1, len(LEVELS))).quantized,
                       torch.zeros(1, len(LEVELS)))


def test_indices_are_a_bijection_onto_the_implicit_codebook():
    levels = torch.tensor((3, 4, 2, 5))
    all_indices = torch.arange(math.prod((3, 4, 2, 5)))
    ints = fsq_indices_to_integers(all_indices, levels)
    assert len({tuple(r) for r in ints.tolist()}) == 120
    assert torch.equal(fsq_codes_to_indices(ints, levels), all_indices)
    assert torch.equal(ints[1], torch.tensor([-1 + 1, -2, -1, -2]))  # first channel least


def test_decode_encode_is_the_eval_forward_and_minus_one_decodes_to_zero():
    fsq = FSQ(16, (8, 5, 5, 5))  # projections 16 -> 4 -> 16 (with bias)
    assert fsq.project_in is not None and fsq.project_in.bias is not None
    x = torch.randn(3, 7, 16)
    assert torch.equal(fsq.decode(fsq.encode(x)), fsq.eval()(x).quantized)
    assert torch.equal(fsq.decode(torch.tensor([-1, 3])[:1]), torch.zeros(1, 16))
    assert FSQ(4, (8, 5, 5, 5)).project_in is None


def test_ste_gradient_is_identity_through_the_rounding():
    # d out / d z = bound'(z) / floor(L/2): the rounding passes the gradient unchanged.
    levels = (3, 4, 5, 8)
    z = (torch.randn(64, 4, generator=torch.Generator().manual_seed(1)) * 1.5)
    fsq = FSQ(4, levels).train()
    x = z.clone().requires_grad_()
    fsq(x).quantized.sum().backward()
    lv = torch.tensor(levels, dtype=torch.float64)
    half_l = (lv - 1) * (1 - 1e-3) / 2
    shift = torch.tan(torch.where(lv % 2 == 0, 0.5, 0.0) / half_l)
    expected = (1 - torch.tanh(z.double() + shift) ** 2) * half_l / torch.floor(lv / 2)
    torch.testing.assert_close(x.grad.double(), expected, rtol=1e-5, atol=1e-7)
    # and the forward value is the hard code
    assert torch.equal(fsq(z).quantized, fsq.eval()(z).quantized)


def test_pack_indices_uses_prod_levels_as_the_size():
    fsq = FSQ(4, (8, 5, 5, 5))
    idx = fsq.encode(torch.randn(100, 4) * 3)
    codes = pack_indices(idx[:, None], fsq.codebook_sizes)
    assert len(codes) == math.ceil(100 * 10 / 8)  # ceil(log2(1000)) = 10 bits per vector
    assert torch.equal(unpack_indices(codes, fsq.codebook_sizes, (100,))[:, 0], idx)


def test_estimators_accepted_and_refused():
    assert isinstance(FSQ(4, (3, 3, 3, 3)).estimator, StraightThrough)
    FSQ(4, (3, 3, 3, 3), estimator=NoiseSubstitution())
    for est in (RotationTrick(), DiVeQ(), DiVeQDetach()):
        with pytest.raises(ValueError, match=f"cannot use {type(est).__name__}"):
            FSQ(4, (3, 3, 3, 3), estimator=est)
        with pytest.raises(ValueError, match="cannot use"):
            ResidualFSQ(4, (3, 3, 3, 3), 2, estimator=est)
    with pytest.raises(TypeError, match="Estimator"):
        FSQ(4, (3, 3), estimator="ste")


@pytest.mark.parametrize("levels", [(), (1, 3), (2.5,), "85", (3, True)])
def test_bad_levels_raise(levels):
    with pytest.raises(ValueError, match="levels"):
        FSQ(4, levels)


def test_residual_fsq_refuses_two_levels_and_no_data_init():
    with pytest.raises(ValueError, match=r"levels must be ints >= 3"):
        ResidualFSQ(4, (2, 3), 2)
    fsq = FSQ(4, (3, 3, 3, 3))
    with pytest.raises(NotImplementedError, match="no data-driven initialisation"):
        fsq.init_codebook_(torch.randn(10, 4))
    assert fsq.replace_dead_codes_(0.5) == 0


def _residual_reference(z: torch.Tensor, levels, stages: int) -> torch.Tensor:
    """sum_m s_m code(r_m / s_m), s_m = (L-1)^-m, in float64 from the paper's equations."""
    lv = np.asarray(levels, dtype=np.float64)
    residual, total = z.double().numpy(), 0.0
    for m in range(stages):
        scale = (lv - 1) ** -m
        q = reference(residual / scale, levels)[1] * scale
        total, residual = total + q, residual - q
    return torch.from_numpy(np.asarray(total))


def test_residual_fsq_equals_the_reference_and_prefixes_refine():
    levels = (5, 5, 7, 4)
    rfsq = ResidualFSQ(4, levels, 3).eval()
    x = torch.rand(500, 4, generator=torch.Generator().manual_seed(2)) * 1.6 - 0.8
    torch.testing.assert_close(rfsq(x).quantized.double(), _residual_reference(x, levels, 3),
                               rtol=0, atol=1e-5)
    idx = rfsq.encode(x)
    errors = [float((rfsq.decode(idx[:, :m]) - x).pow(2).mean()) for m in (1, 2, 3)]
    assert errors[0] > 2 * errors[1] > 4 * errors[2], errors
    padded = torch.cat([idx[:, :2], torch.full_like(idx[:, :1], -1)], dim=1)
    assert torch.equal(rfsq.decode(idx[:, :2]), rfsq.decode(padded))
    with pytest.raises(ValueError, match="prefix"):
        rfsq.decode(torch.zeros(2, 4, dtype=torch.long))


def test_residual_fsq_dropout_is_shared_with_residual_vq():
    from vqkit import ResidualVQ

    rfsq = ResidualFSQ(4, (5, 5, 5, 5), 4, dropout=ExampleDepth(seed=3)).train()
    rvq = ResidualVQ(4, 8, 4, dropout=ExampleDepth(seed=3)).train()
    x = torch.randn(200, 4)
    for _ in range(2):
        a, b = rfsq(x).indices, rvq(x).indices
        assert torch.equal(a < 0, b < 0)  # the same depths from the same seed and step
        assert (a < 0).any() and (a >= 0).all(dim=1).any()
    assert int(rfsq.dropout_step) == 2
    depth = (a >= 0).sum(dim=1)
    assert torch.equal(a >= 0, torch.arange(4)[None] < depth[:, None])  # prefixes


def test_channels_first_and_masks():
    fsq = ChannelsFirst(FSQ(4, (8, 5, 5, 5)))
    x = torch.randn(2, 4, 3, 5)
    out = fsq(x)
    assert out.quantized.shape == x.shape and out.indices.shape == (2, 3, 5)
    mask = torch.rand(2, 3, 5) > 0.5
    masked = fsq.eval()(x, mask=mask)
    assert (masked.indices[~mask] == -1).all()
    assert torch.equal(masked.indices[mask], fsq(x).indices[mask])


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (64,) * 5, (256,) * 7])  # fp32, fp64, int64
def test_mixed_radix_is_exact_in_every_precision_path(levels):
    lv = torch.tensor(levels)
    g = torch.Generator().manual_seed(4)
    ints = torch.stack([torch.randint(-(n // 2), n - n // 2, (500,), generator=g)
                        for n in levels], dim=1)
    ints[0] = torch.tensor([n - 1 - n // 2 for n in levels])  # the largest index
    expected = sum((ints[:, i] + n // 2) * math.prod(levels[:i]) for i, n in enumerate(levels))
    assert int(expected[0]) == math.prod(levels) - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fsq_codes_to_indices(ints.float() if math.prod(levels) < 2**53 else ints, lv)
    assert torch.equal(got, expected)
    assert torch.equal(fsq_indices_to_integers(expected, lv), ints)
