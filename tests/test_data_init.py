"""Lazy data initialisation (``data_init=DataInit(...)``): the first training batch fits the
codebooks exactly as an explicit ``init_codebook_`` call on its kept vectors does, once; the
``initialised`` buffer survives save/load; an older state loads as initialised; eval mode
before initialisation warns; a first batch smaller than the codebook is filled up with
jittered copies (every kept vector gets a codeword, no masked one does); an empty one is
refused.

The oracle of every family is the explicit call: a twin quantizer with the same initial state
gets ``init_codebook_(x[mask], generator=Generator().manual_seed(seed), iters=...)`` and the
same forward, and both must hold bit-identical state.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import vqkit
from vqkit import (
    EMA,
    FSQ,
    AdditiveVQ,
    ChannelsFirst,
    Cosine,
    DataInit,
    Factorised,
    ProductVQ,
    ResidualVQ,
    SimVQ,
    StraightThrough,
    VectorQuantizer,
)
from vqkit.quantizers.adapters import Wrapper
from vqkit.quantizers.encoders import BeamSearch
from vqkit.strategy import to_config

D, K = 6, 8
LEGACY = Path(__file__).parent / "data" / "legacy"

#: Every family with data initialisation, and the parameterisations and learnings it takes.
BUILDERS = {
    "vq": lambda **kw: VectorQuantizer(D, K, **kw),
    "vq-ema": lambda **kw: VectorQuantizer(D, K, learning=EMA(), **kw),
    "vq-simvq": lambda **kw: VectorQuantizer(D, K, parameterisation=SimVQ(), **kw),
    "vq-cosine": lambda **kw: VectorQuantizer(D, K, parameterisation=Cosine(), **kw),
    "vq-factorised": lambda **kw: VectorQuantizer(D, K, parameterisation=Factorised(3), **kw),
    "rvq": lambda **kw: ResidualVQ(D, K, 3, **kw),
    "rvq-beam-simvq": lambda **kw: ResidualVQ(D, K, 2, encoder=BeamSearch(3),
                                              parameterisation=SimVQ(), **kw),
    "pvq": lambda **kw: ProductVQ(D, K, 2, **kw),
    "pvq-cosine": lambda **kw: ProductVQ(D, K, 3, parameterisation=Cosine(), **kw),
    "pvq-factorised-ema": lambda **kw: ProductVQ(D, K, 2, learning=EMA(),
                                                 parameterisation=Factorised(2), **kw),
    "avq": lambda **kw: AdditiveVQ(D, K, 2, encoder=BeamSearch(2), **kw),
}


def _batch(device, n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(4, n/4, D)`` vectors and a mask that drops a quarter of them; the dropped ones sit
    far away (offset 50), so a k-means that saw them would put centres there."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, n // 4, D, generator=g)
    mask = torch.rand(4, n // 4, generator=g) > 0.25
    x = x + 50.0 * (~mask)[..., None]
    return x.to(device), mask.to(device)


def _twins(name: str, device, data_init: DataInit):
    """The lazily initialised quantizer and an explicit twin with the same initial state."""
    torch.manual_seed(0)
    lazy = BUILDERS[name](data_init=data_init).to(device)
    twin = BUILDERS[name]().to(device)
    state = {k: v for k, v in lazy.state_dict().items() if k != "initialised"}
    twin.load_state_dict(state)
    return lazy, twin


def _same_state(a, b) -> None:
    sa = {k: v for k, v in a.state_dict().items() if k != "initialised"}
    sb = b.state_dict()
    assert sa.keys() == sb.keys()
    for key, value in sa.items():
        assert torch.equal(value, sb[key]), key


@pytest.mark.parametrize("name", list(BUILDERS))
def test_first_training_batch_equals_an_explicit_init_on_its_kept_vectors(name, device):
    data_init = DataInit(seed=5, iters=7)
    lazy, twin = _twins(name, device, data_init)
    x, mask = _batch(device)
    assert not bool(lazy.initialised)
    torch.manual_seed(1)  # the estimator's draws (NSVQ noise)
    out = lazy.train()(x, mask=mask)
    twin.init_codebook_(x[mask], generator=torch.Generator().manual_seed(5), iters=7)
    torch.manual_seed(1)
    want = twin.train()(x, mask=mask)
    assert bool(lazy.initialised)
    _same_state(lazy, twin)  # codebooks, usage counters, EMA statistics: bit for bit
    assert torch.equal(out.quantized, want.quantized) and torch.equal(out.indices, want.indices)
    # The masked-out vectors (50 away) were not samples: no codeword went near them.
    far = lazy.eval().decode(lazy.encode(x[~mask]))
    assert (far - x[~mask]).norm(dim=-1).min() > 20


def test_an_ignored_mask_would_be_seen(device):
    """The oracle above can fail: initialising on all vectors gives other codebooks."""
    lazy, twin = _twins("vq", device, DataInit(seed=5))
    x, mask = _batch(device)
    lazy.train()(x, mask=mask)
    twin.init_codebook_(x.reshape(-1, D), generator=torch.Generator().manual_seed(5))
    assert not torch.equal(lazy.codewords, twin.codewords)


@pytest.mark.parametrize("name", ["vq", "vq-ema", "rvq", "pvq", "avq"])
def test_it_runs_once(name, device):
    """A second training forward (no optimizer step) leaves Gradient codebooks as they are,
    and moves an EMA codebook only by its EMA update, as the explicit twin's."""
    lazy, twin = _twins(name, device, DataInit(seed=2))
    x, _ = _batch(device, seed=0)
    lazy.train()(x)
    twin.init_codebook_(x, generator=torch.Generator().manual_seed(2))
    twin.train()(x)
    before = lazy.codewords.detach().clone()
    x2 = 3.0 + _batch(device, seed=1)[0]  # another batch, elsewhere
    lazy(x2)
    twin(x2)
    _same_state(lazy, twin)
    if "ema" not in name:
        assert torch.equal(lazy.codewords, before)


def test_a_model_around_it_initialises_through_forward(device):
    """ChannelsFirst passes the channel vectors; the wrapped quantizer owns the buffer."""
    torch.manual_seed(0)
    inner = VectorQuantizer(3, K, data_init=DataInit(seed=4))
    twin = VectorQuantizer(3, K)
    twin.load_state_dict({k: v for k, v in inner.state_dict().items() if k != "initialised"})
    q, images = ChannelsFirst(inner).to(device), torch.rand(2, 3, 5, 5, device=device)
    q.train()(images)
    twin.to(device).init_codebook_(images.movedim(1, -1).reshape(-1, 3),
                                   generator=torch.Generator().manual_seed(4))
    assert bool(inner.initialised) and torch.equal(inner.codewords, twin.codewords)


class _Plain(Wrapper):
    """A wrapper with the base forward and Wrapper's hooks: its _train_forward calls the
    wrapped quantizer's hook directly, never its forward."""

    def __init__(self, quantizer):
        super().__init__()
        self.inner = self._adopt(quantizer, "quantizer")

    @property
    def wrapped(self):
        return self.inner


def test_a_wrapper_initialises_the_quantizer_it_wraps():
    from vqkit.apps.speech.quantizers import ScaledError

    for wrap in (_Plain, ScaledError):  # (ScaledError calls the inner forward itself)
        torch.manual_seed(0)
        inner = ResidualVQ(D, K, 2, data_init=DataInit(seed=1))
        twin = ResidualVQ(D, K, 2)
        twin.load_state_dict({k: v for k, v in inner.state_dict().items()
                              if k != "initialised"})
        x, mask = _batch("cpu")
        with pytest.warns(UserWarning, match="has not seen a training batch"):
            wrap(inner).eval()(x)
        wrap(inner).train()(x, mask=mask)
        twin.init_codebook_(x[mask], generator=torch.Generator().manual_seed(1))
        assert bool(inner.initialised) and torch.equal(inner.codewords, twin.codewords)


def test_the_flag_survives_save_and_load(tmp_path, device):
    vq = VectorQuantizer(D, K, data_init=DataInit(seed=3)).to(device)
    vq.train()(_batch(device)[0])
    vqkit.save(vq, tmp_path / "vq.pt")
    back = vqkit.load(tmp_path / "vq.pt").to(device)
    assert back.data_init == DataInit(seed=3) and bool(back.initialised)
    assert back.config()["data_init"] == {"type": "DataInit", "seed": 3, "iters": 50}
    before = back.codewords.detach().clone()
    back.train()(5.0 + _batch(device, seed=9)[0])  # a loaded quantizer never re-initialises
    assert torch.equal(back.codewords, before)
    # Without data_init the config and state are what they were (older files stay valid).
    plain = VectorQuantizer(D, K)
    assert "data_init" not in plain.config() and "initialised" not in plain.state_dict()


def test_a_state_without_the_flag_loads_as_initialised():
    trained = vqkit.load(LEGACY / "vq.pt")  # written before data_init existed
    config = {**trained.config(), "data_init": to_config(DataInit())}
    q = VectorQuantizer.from_config(config)
    assert not bool(q.initialised)
    q.load_state_dict(trained.state_dict())  # strict: the missing entry is filled in
    assert bool(q.initialised)
    x = torch.randn(200, q.dim, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    q.train()(x)  # (its EMA codebook moves: the same step as the file's quantizer makes)
    torch.manual_seed(1)
    trained.train()(x)
    assert torch.equal(q.codewords, trained.codewords)
    # A state that has the entry keeps its value.
    fresh = VectorQuantizer(D, K, data_init=DataInit())
    q2 = VectorQuantizer(D, K, data_init=DataInit())
    q2.load_state_dict(fresh.state_dict())
    assert not bool(q2.initialised)


def test_eval_before_the_first_batch_warns_and_quantizes_with_the_initial_codewords(device):
    vq = VectorQuantizer(D, K, data_init=DataInit()).to(device)
    plain = VectorQuantizer(D, K).to(device)
    plain.load_state_dict({k: v for k, v in vq.state_dict().items() if k != "initialised"})
    x, _ = _batch(device)
    with pytest.warns(UserWarning, match="has not seen a training batch"):
        out = vq.eval()(x)
    assert torch.equal(out.quantized, plain.eval()(x).quantized)
    with pytest.warns(UserWarning, match="has not seen a training batch"):
        vq.encode(x)
    assert not bool(vq.initialised)  # eval mode never initialises
    vq.train()(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vq.eval()(x), vq.encode(x)


@pytest.mark.parametrize("name", ["vq", "rvq"])
def test_a_first_batch_smaller_than_the_codebook_is_filled_up(device, name):
    """40 vectors (about 30 kept) for 256 codewords: the explicit call on the jittered copies
    (their own generator, seed + 1; k-means seeded with the seed); the codewords are distinct,
    each lies near a kept vector (none near the masked-out ones at offset 50) and every kept
    vector has one, within a few jitters of the batch's spread."""
    from vqkit.quantizers.data_init import FILL_JITTER, FILL_SEED_OFFSET, filled_up

    build = {"vq": lambda **kw: VectorQuantizer(D, 256, **kw),
             "rvq": lambda **kw: ResidualVQ(D, 256, 2, **kw)}[name]
    torch.manual_seed(0)
    vq = build(data_init=DataInit(seed=3, iters=5)).to(device)
    twin = build().to(device)
    twin.load_state_dict({k: v for k, v in vq.state_dict().items() if k != "initialised"})
    x, mask = _batch(device, n=40)
    kept = x[mask]
    vq.train()(x, mask=mask)
    assert bool(vq.initialised)
    noise = torch.Generator().manual_seed(3 + FILL_SEED_OFFSET)
    twin.init_codebook_(filled_up(kept, -(-256 // len(kept)), noise),
                        generator=torch.Generator().manual_seed(3), iters=5)
    for key, value in twin.state_dict().items():
        if not key.endswith(("usage", "usage_batches")):
            assert torch.equal(value, vq.state_dict()[key]), key
    if name == "vq":
        codewords = vq.codewords.detach()
        assert codewords.unique(dim=0).shape[0] == 256  # no two copies alike
        spread = float((kept - kept.mean(0)).square().mean().sqrt())
        gap = torch.cdist(codewords.double(), kept.double())
        reach = 4 * FILL_JITTER * spread * D**0.5
        assert float(gap.min(1).values.max()) < reach  # every codeword near a kept vector
        assert float(gap.min(0).values.max()) < reach  # every kept vector near a codeword


def test_a_filled_up_batch_with_a_large_common_offset_keeps_every_vector_its_own_code():
    """The jitter scales with the spread, not with the offset: at +1e6, 63 vectors for 64
    codewords still get 63 different codes (scaled by each vector's size, the jitter swamped
    the data and k-means collapsed onto one codeword)."""
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 64, data_init=DataInit())
    x = torch.randn(63, 8, generator=torch.Generator().manual_seed(1)) + 1e6
    vq.train()(x)
    assert vq.eval().encode(x).unique().numel() == 63


def test_a_first_batch_with_no_vector_is_refused_and_changes_nothing(device):
    vq = VectorQuantizer(D, 32, data_init=DataInit()).to(device)
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    x, mask = _batch(device, n=40)
    with pytest.raises(ValueError, match="kept no vector"):
        vq.train()(x, mask=torch.zeros_like(mask))
    assert all(torch.equal(v, vq.state_dict()[k]) for k, v in before.items())
    vq(x[mask])
    assert bool(vq.initialised)


def test_bad_arguments_are_refused():
    for bad, message in ((dict(seed=-1), "seed must be an int >= 0"),
                         (dict(iters=0), "iters must be an int >= 1"),
                         (dict(seed=1.5), "seed must be an int")):
        with pytest.raises(ValueError, match=message):
            DataInit(**bad)
    with pytest.raises(TypeError, match="data_init must be None or a DataInit"):
        VectorQuantizer(D, K, data_init="kmeans")
    with pytest.raises(ValueError, match="FSQ has no data-driven initialisation"):
        FSQ(2, levels=(5, 4))._use_data_init_(DataInit())  # (no family without one takes it)


def test_compiled_training_forward_initialises_like_eager():
    torch.manual_seed(0)
    eager = VectorQuantizer(D, K, estimator=StraightThrough(), data_init=DataInit(seed=1))
    graph = VectorQuantizer(D, K, estimator=StraightThrough(), data_init=DataInit(seed=1))
    graph.load_state_dict(eager.state_dict())
    x, mask = _batch("cpu")
    want = eager.train()(x, mask=mask)
    got = torch.compile(graph.train(), backend="eager", fullgraph=False)(x, mask=mask)
    assert bool(graph.initialised)
    assert torch.equal(graph.codewords, eager.codewords)
    assert torch.equal(got.indices, want.indices)
