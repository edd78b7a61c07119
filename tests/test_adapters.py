"""ChannelsFirst is a Quantizer: the whole contract of the wrapped one, on (B, C, ...) tensors."""

from __future__ import annotations

import copy

import pytest
import torch

import vqkit
from vqkit import (
    AdditiveVQ,
    ChannelsFirst,
    NoiseSubstitution,
    Quantizer,
    ResidualVQ,
    SpaceFillingVQ,
    StraightThrough,
    VectorQuantizer,
)

C = 4


def _inner(kind: str, seed: int = 0) -> Quantizer:
    torch.manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1)
    if kind == "vq":
        return VectorQuantizer(C, 16, estimator=NoiseSubstitution(generator=noise))
    if kind == "rvq":
        return ResidualVQ(C, 8, 3, estimator=StraightThrough())
    if kind == "avq":
        return AdditiveVQ(C, 8, 2)
    return SpaceFillingVQ(C, 16, generator=noise)


KINDS = ["vq", "rvq", "avq", "sfvq"]


@pytest.mark.parametrize("kind", KINDS)
def test_attributes_are_the_wrapped_quantizers(kind):
    inner = _inner(kind)
    q = ChannelsFirst(inner)
    assert isinstance(q, Quantizer)
    assert (q.dim, q.index_shape, q.index_dtype) == (inner.dim, inner.index_shape,
                                                      inner.index_dtype)
    assert q.codebook_sizes == inner.codebook_sizes
    assert q.bits_per_vector == inner.bits_per_vector
    assert q.config() == {"quantizer": {"type": type(inner).__name__, "config": inner.config()}}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("training", [True, False])
def test_forward_follows_the_mode_like_the_wrapped_quantizer(kind, training):
    x = torch.randn(2, C, 3, 5, generator=torch.Generator().manual_seed(7))
    mask = torch.rand(2, 3, 5, generator=torch.Generator().manual_seed(8)) > 0.3
    plain, wrapped = _inner(kind), ChannelsFirst(_inner(kind))
    plain.train(training), wrapped.train(training)
    assert wrapped.quantizer.training is training
    torch.manual_seed(9)  # the noise of estimators without a generator
    want = plain(x.movedim(1, -1), mask=mask)
    torch.manual_seed(9)
    got = wrapped(x, mask=mask)
    assert torch.equal(got.quantized, want.quantized.movedim(-1, 1))
    assert torch.equal(got.indices, want.indices) and torch.equal(got.loss, want.loss)
    if not training:
        assert torch.equal(wrapped(x).quantized, wrapped.decode(wrapped.encode(x)))


@pytest.mark.parametrize("kind", KINDS)
def test_init_and_replacement_act_on_the_wrapped_quantizer(kind):
    samples = torch.randn(8, C, 4, 4, generator=torch.Generator().manual_seed(3))
    plain, wrapped = _inner(kind), ChannelsFirst(_inner(kind))
    plain.init_codebook_(samples.movedim(1, -1).reshape(-1, C),
                         generator=torch.Generator().manual_seed(4))
    wrapped.init_codebook_(samples, generator=torch.Generator().manual_seed(4))
    assert torch.equal(wrapped.quantizer.codewords, plain.codewords)
    plain.train(), wrapped.train()
    plain(samples.movedim(1, -1)[:1, :1, :1])  # one vector: most codewords stay unused
    wrapped(samples[:1, :, :1, :1])
    n_plain = plain.replace_dead_codes_(0.5, generator=torch.Generator().manual_seed(5))
    n_wrapped = wrapped.replace_dead_codes_(0.5, generator=torch.Generator().manual_seed(5))
    assert n_wrapped == n_plain
    assert torch.equal(wrapped.quantizer.codewords, plain.codewords)
    if kind != "sfvq":
        assert n_plain > 0


def test_replacement_options_reach_the_wrapped_quantizer():
    plain, wrapped = _inner("avq"), ChannelsFirst(_inner("avq"))
    x = torch.randn(1, C, generator=torch.Generator().manual_seed(2))
    for q, xs in ((plain, x), (wrapped, x)):
        q.train()
        q(xs)
    n = wrapped.replace_dead_codes_(0.5, pooled=True, generator=torch.Generator().manual_seed(1))
    assert n == plain.replace_dead_codes_(0.5, pooled=True,
                                          generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load(kind, tmp_path):
    q = ChannelsFirst(_inner(kind))
    q.train()
    q(torch.randn(2, C, 3, 3))
    vqkit.save(q, tmp_path / "q.pt")
    back = vqkit.load(tmp_path / "q.pt")
    assert isinstance(back, ChannelsFirst) and back.config() == q.config()
    for key, value in q.state_dict().items():
        assert torch.equal(back.state_dict()[key], value)
    x = torch.randn(2, C, 3, 3)
    assert torch.equal(back.eval()(x).quantized, q.eval()(x).quantized)


def test_bad_inputs_name_the_argument():
    q = ChannelsFirst(_inner("vq"))
    with pytest.raises(ValueError, match=r"x must be \(B, C, \.\.\.\)"):
        q(torch.randn(C))
    with pytest.raises(TypeError, match="samples must be a torch.Tensor"):
        q.init_codebook_([[0.0] * C])
    with pytest.raises(TypeError, match="quantizer must be a Quantizer"):
        ChannelsFirst(torch.nn.Linear(2, 2))


def test_the_image_model_replaces_through_its_quantizer():
    import numpy as np

    from vqkit.apps.image_codec.config import CodecConfig, TrainConfig
    from vqkit.apps.image_codec.data import PhotoCrops
    from vqkit.apps.image_codec.train import train

    src = PhotoCrops([np.random.default_rng(0).random((40, 40, 3), np.float32)], 16)
    cfg = CodecConfig(tile=16, hidden=8, latent_dim=4)
    res = train(cfg, TrainConfig(steps=6, batch_size=2, replace_every=2), src)
    assert isinstance(res.model.quantizer, Quantizer) and len(res.replaced) == 1
    assert copy.deepcopy(res.model.quantizer).replace_dead_codes_(0.0) == 0
