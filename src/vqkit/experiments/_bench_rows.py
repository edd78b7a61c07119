"""The quantizers of ``vqkit reproduce quantizer-bench``: vqkit's and vector-quantize-pytorch's,
each built for a latent of ``dim`` channels and about ``codes`` codes.

Every row is a :class:`BenchRow`: a name, the library, a builder and the number of codes of
each of its codebooks. vqkit's codeword rows follow the recipe its README recommends (lazy
k-means on the first training batch, ``DataInit``, and dead-code replacement every 50 steps up
to one period before the end, ``CodeReplacer``, as the 300-step loop of the README); the
implicit-codebook rows (FSQ, LFQ) and SimVQ (whose codewords cannot be overwritten one at a
time) have neither. The peer's rows are configured as its README shows
([lucidrains2026vqpytorch]): ``VectorQuantize`` with its defaults (EMA decay 0.8, rotation
trick, commitment weight 1) and with k-means init, EMA 0.99, the straight-through estimator and
dead-code expiry (``threshold_ema_dead_code=2``); its ``FSQ``, ``LFQ`` (entropy loss weight
0.1, diversity gamma 1), ``SimVQ`` (its defaults: rotation trick) and ``ResidualVQ`` (k-means
init and dead-code expiry, as its README's residual example).

Equal bits per latent: 10 bits (1,024 codes) and 14 bits (16,384 codes) for every family; FSQ
takes the levels of [mentzer2024fsq] Table 1 for 2^10 and 2^14 (1,000 and 15,360 codes) and
residual VQ two stages of 32 or 128 codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from .. import (
    EMA,
    FSQ,
    LFQ,
    Cosine,
    DataInit,
    DiVeQ,
    Factorised,
    NoiseSubstitution,
    ResidualVQ,
    RotationTrick,
    SimVQ,
    StraightThrough,
    VectorQuantizer,
)
from ..data._errors import require_module
from ..types import QuantizerOutput

VQKIT = "vqkit"
PEER = "vector-quantize-pytorch"
#: FSQ levels for about 1,024 and 16,384 codes ([mentzer2024fsq] Table 1).
FSQ_LEVELS = {1024: (8, 5, 5, 5), 16384: (8, 8, 8, 6, 5)}
#: Replacement period of vqkit's recipe for a 300-step run (the README's and docs/training.md's
#: 300-step loops: ``CodeReplacer(vq, every=50, until=250)``).
REPLACE_EVERY = 50
#: Dimension of the factorised codes ([yu2022vitvqgan]: 8).
FACTORISED_DIM = 8


@dataclass(frozen=True)
class BenchRow:
    """One quantizer of the benchmark.

    Attributes:
        name: the row's label in the JSON, the table and the plots.
        library: :data:`VQKIT` or :data:`PEER`.
        build: ``build(dim, codes, seed) -> module`` called like a vqkit quantizer
            (channel-last ``(..., dim)`` in, a :class:`~vqkit.types.QuantizerOutput` out).
        sizes: ``sizes(codes)``: the codes of each of its codebooks (their product is the
            number of codes a latent vector can take).
        replace_every: dead-code replacement period of vqkit's recipe (0: none).
    """

    name: str
    library: str
    build: Callable[[int, int, int], nn.Module]
    sizes: Callable[[int], tuple[int, ...]]
    replace_every: int = 0


def _one(codes: int) -> tuple[int, ...]:
    return (codes,)


def _fsq_sizes(codes: int) -> tuple[int, ...]:
    return (math.prod(FSQ_LEVELS[codes]),)


def _two_stages(codes: int) -> tuple[int, ...]:
    per = math.isqrt(codes)
    if per * per != codes:
        raise ValueError(f"residual VQ rows need a square number of codes, got {codes}")
    return (per, per)


def _vq(**options) -> Callable[[int, int, int], nn.Module]:
    def build(dim: int, codes: int, seed: int) -> nn.Module:
        return VectorQuantizer(dim, codes, data_init=DataInit(seed=seed), **options)

    return build


def _rvq(dim: int, codes: int, seed: int) -> nn.Module:
    return ResidualVQ(dim, _two_stages(codes)[0], 2, data_init=DataInit(seed=seed))


VQKIT_ROWS = (
    BenchRow("NSVQ + replacement (default)", VQKIT, _vq(estimator=NoiseSubstitution()), _one,
             REPLACE_EVERY),
    BenchRow("STE + EMA", VQKIT, _vq(estimator=StraightThrough(), learning=EMA(decay=0.99)),
             _one, REPLACE_EVERY),
    BenchRow("rotation trick + EMA", VQKIT,
             _vq(estimator=RotationTrick(), learning=EMA(decay=0.99)), _one, REPLACE_EVERY),
    BenchRow("DiVeQ", VQKIT, _vq(estimator=DiVeQ()), _one, REPLACE_EVERY),
    BenchRow("SimVQ + NSVQ", VQKIT, _vq(estimator=NoiseSubstitution(), parameterisation=SimVQ()),
             _one),
    BenchRow("cosine + NSVQ", VQKIT, _vq(estimator=NoiseSubstitution(), parameterisation=Cosine()),
             _one, REPLACE_EVERY),
    BenchRow("factorised (8-dim codes) + NSVQ", VQKIT,
             _vq(estimator=NoiseSubstitution(), parameterisation=Factorised(FACTORISED_DIM)),
             _one, REPLACE_EVERY),
    BenchRow("FSQ", VQKIT, lambda dim, codes, seed: FSQ(dim, FSQ_LEVELS[codes]), _fsq_sizes),
    BenchRow("LFQ", VQKIT, lambda dim, codes, seed: LFQ(dim, codes), _one),
    BenchRow("residual VQ, 2 stages", VQKIT, _rvq, _two_stages, REPLACE_EVERY),
)


class PeerQuantizer(nn.Module):
    """A vector-quantize-pytorch layer called like a vqkit quantizer: channel-last
    ``(B, ..., D)`` in (flattened to the ``(B, N, D)`` the peer takes), a
    :class:`~vqkit.types.QuantizerOutput` out with the peer's summed auxiliary loss.

    Args:
        layer: the peer's module.
        losses: which item of the peer's output tuple is its loss (None: it has none, FSQ).
    """

    def __init__(self, layer: nn.Module, losses: int | None) -> None:
        super().__init__()
        self.layer = layer
        self.losses = losses

    def forward(self, x: Tensor) -> QuantizerOutput:
        lead = x.shape[:-1]
        out = self.layer(x.reshape(lead[0], -1, x.shape[-1]))
        loss = x.new_zeros(()) if self.losses is None else out[self.losses].sum()
        indices = out[1].reshape(*lead, *out[1].shape[2:])
        return QuantizerOutput(out[0].reshape(x.shape), indices, loss)


def _peer(name: str, losses: int | None, **options) -> Callable[[int, int, int], nn.Module]:
    def build(dim: int, codes: int, seed: int) -> nn.Module:
        peer = require_module("vector_quantize_pytorch",
                              "pip install 'vqkit[bench]' (vector-quantize-pytorch)")
        kwargs = dict(options)
        if name == "FSQ":
            kwargs["levels"] = list(FSQ_LEVELS[codes])
        elif name == "ResidualVQ":
            kwargs["codebook_size"] = _two_stages(codes)[0]
        else:
            kwargs["codebook_size"] = codes
        layers = {"VectorQuantize": peer.VectorQuantize, "FSQ": peer.FSQ, "LFQ": peer.LFQ,
                  "SimVQ": peer.SimVQ, "ResidualVQ": peer.ResidualVQ}
        return PeerQuantizer(layers[name](dim=dim, **kwargs), losses)

    return build


#: The peer's k-means initialisation and dead-code expiry, as its README shows them.
_PEER_RECIPE = dict(kmeans_init=True, kmeans_iters=10, threshold_ema_dead_code=2)

PEER_ROWS = (
    BenchRow("VQP VectorQuantize defaults", PEER, _peer("VectorQuantize", 2), _one),
    BenchRow("VQP k-means + EMA 0.99 + STE", PEER,
             _peer("VectorQuantize", 2, decay=0.99, rotation_trick=False, **_PEER_RECIPE), _one),
    BenchRow("VQP FSQ", PEER, _peer("FSQ", None), _fsq_sizes),
    BenchRow("VQP LFQ", PEER, _peer("LFQ", 2, entropy_loss_weight=0.1, diversity_gamma=1.0),
             _one),
    BenchRow("VQP SimVQ", PEER, _peer("SimVQ", 2), _one),
    BenchRow("VQP ResidualVQ, 2 stages", PEER,
             _peer("ResidualVQ", 2, num_quantizers=2, **_PEER_RECIPE), _two_stages),
)

ROWS = {row.name: row for row in VQKIT_ROWS + PEER_ROWS}


def build_row(name: str, dim: int, codes: int, seed: int) -> nn.Module:
    """Row ``name``'s quantizer for ``dim`` channels and ``codes`` codes, its random state
    drawn after ``torch.manual_seed`` by the caller.

    Raises:
        KeyError: no row is called ``name``.
        ImportError: a peer row without vector-quantize-pytorch installed.
    """
    return ROWS[name].build(dim, codes, seed)

#: Each vqkit row and the peer's row of the same family (the step-time ratios of the JSON).
PEER_EQUIVALENT = {
    "NSVQ + replacement (default)": "VQP VectorQuantize defaults",
    "STE + EMA": "VQP k-means + EMA 0.99 + STE",
    "SimVQ + NSVQ": "VQP SimVQ",
    "FSQ": "VQP FSQ",
    "LFQ": "VQP LFQ",
    "residual VQ, 2 stages": "VQP ResidualVQ, 2 stages",
}
