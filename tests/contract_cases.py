"""Quantizers that the contract suite (tests/test_contract.py) checks.

Each :class:`Case` builds its quantizer for any estimator x codebook learning (returning
``None`` for a combination the quantizer rejects by design, with the reason in ``skip``)
and makes inputs that the quantizer must reproduce exactly in eval mode (vectors built from
its codewords). Add one Case per quantizer type. ``exact_inputs`` draws from the CPU
generator and moves the draws to the quantizer's device (``q.codewords.device``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from vqkit import SpaceFillingVQ, VectorQuantizer

DIM = 8


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[object, object], torch.nn.Module | None]
    exact_inputs: Callable[[torch.nn.Module, torch.Generator], torch.Tensor] | None
    skip: str = ""
    #: Why ``exact_inputs`` is None: the quantizer is not idempotent by design.
    not_idempotent: str = ""


def _vq_exact(q, g):
    idx = torch.randint(0, q.codebook_size, (6, 5), generator=g).to(q.codewords.device)
    return q.codebook.codewords.detach()[idx].clone()


CASES: list[Case] = [
    Case(
        "VectorQuantizer",
        lambda est, learn: VectorQuantizer(DIM, 16, estimator=est, learning=learn),
        _vq_exact,
    ),
]


def _sf_build(est, learn):
    # An EMA codebook cannot learn a curve (SpaceFillingVQ raises ValueError), by design.
    if learn is not None and not getattr(learn, "trained_by_gradient", True):
        return None
    return SpaceFillingVQ(DIM, 16, estimator=est, learning=learn)


def _sf_exact(q, g):
    # Corner points are points of the curve that both projections return exactly.
    idx = torch.randint(0, q.codebook_size, (6, 5), generator=g).to(q.codewords.device)
    return q.codewords.detach()[idx].clone()


CASES.append(
    Case(
        "SpaceFillingVQ",
        _sf_build,
        _sf_exact,
        skip="EMA codebook learning cannot train a curve: SpaceFillingVQ rejects it by design",
    )
)


def _separated_sum_exact(q, g):
    # Stage m's codewords live at scale 100**-m, so greedy and beam searches both recover the
    # indices of a sum of codewords, and decode rebuilds it with the same additions.
    device = q.codewords.device
    with torch.no_grad():
        for m, cb in enumerate(q.codebooks):
            rows = torch.arange(cb.codebook_size, device=device)
            values = torch.randn(cb.codebook_size, cb.dim, generator=g) * 100.0**-m
            cb.overwrite_(rows, values.to(device))
    idx = torch.randint(0, q.codebook_size, (6, 5, q.num_codebooks), generator=g)
    return q.decode(idx.to(device)).detach().clone()


def _rvq_cases():
    from vqkit import ResidualVQ
    from vqkit.quantizers.application import PerStage
    from vqkit.quantizers.encoders import BeamSearch

    return [
        Case("ResidualVQ", lambda est, learn: ResidualVQ(DIM, 16, 3, estimator=est, learning=learn),
             _separated_sum_exact),
        # (quantizer dropout sets -1 on unmasked vectors by design: tested in test_residual.py)
        Case("ResidualVQ-beam",
             lambda est, learn: ResidualVQ(DIM, 16, 3, estimator=est, learning=learn,
                                           encoder=BeamSearch(4)),
             _separated_sum_exact),
        Case("ResidualVQ-per-stage",
             lambda est, learn: ResidualVQ(DIM, 16, 3, estimator=PerStage(est), learning=learn),
             _separated_sum_exact),
    ]


CASES.extend(_rvq_cases())


def _pvq_exact(q, g):
    idx = torch.randint(0, q.codebook_size, (6, 5, q.num_codebooks), generator=g)
    return q.decode(idx.to(q.codewords.device)).detach().clone()


def _pvq_avq_cases():
    from vqkit import AdditiveVQ, ProductVQ
    from vqkit.quantizers.application import PerStage
    from vqkit.quantizers.encoders import BeamSearch, Greedy

    return [
        Case("ProductVQ", lambda est, learn: ProductVQ(DIM, 16, 4, estimator=est, learning=learn),
             _pvq_exact),
        Case("ProductVQ-per-stage",
             lambda est, learn: ProductVQ(DIM, 16, 2, estimator=PerStage(est), learning=learn),
             _pvq_exact),
        Case("AdditiveVQ",
             lambda est, learn: AdditiveVQ(DIM, 16, 3, estimator=est, learning=learn,
                                           encoder=BeamSearch(4)),
             _separated_sum_exact),
        Case("AdditiveVQ-greedy-per-stage",
             lambda est, learn: AdditiveVQ(DIM, 16, 3, estimator=PerStage(est), learning=learn,
                                           encoder=Greedy()),
             _separated_sum_exact),
    ]


CASES.extend(_pvq_avq_cases())


# -- implicit codebooks: FSQ, ResidualFSQ, LFQ, BSQ ------------------------------------------
_IMPLICIT_SKIP = ("no codebook to learn (EMA does not apply), and the rotation trick and DiVeQ "
                  "are refused by design (vqkit.quantizers.implicit)")
_FSQ_NOT_IDEMPOTENT = (
    "a code fed back in goes through the tanh bound again and may round to a neighbour "
    "(L=7: code 1 -> tanh(1)*3 = 2.28 -> 2/3), as in [mentzer2024fsq]; a projection likewise")


def _implicit(make):
    """``make(est)`` for the estimators an implicit codebook accepts, else None."""
    from vqkit import EMA
    from vqkit.quantizers.implicit import ACCEPTED_ESTIMATORS

    def build(est, learn):
        if isinstance(learn, EMA) or type(est) not in ACCEPTED_ESTIMATORS:
            return None
        return make(est)

    return build


def _signs_exact(q, g):
    # Codes of sign quantization are fixed points: sign(+-s) * s = +-s (BSQ: unit norm already).
    signs = torch.randint(0, 2, (6, 5, DIM), generator=g).float() * 2 - 1
    return (signs * q.scale).to(q.bit_values.device)


def _implicit_cases():
    from vqkit import BSQ, FSQ, LFQ, ResidualFSQ

    fsq_levels = (8, 5, 5, 5, 4, 3, 2, 7)  # odd and even, one per input channel
    return [
        Case("FSQ", _implicit(lambda est: FSQ(DIM, fsq_levels, estimator=est)), None,
             skip=_IMPLICIT_SKIP, not_idempotent=_FSQ_NOT_IDEMPOTENT),
        Case("FSQ-projected", _implicit(lambda est: FSQ(DIM, (8, 5, 5, 5), estimator=est)),
             None, skip=_IMPLICIT_SKIP, not_idempotent=_FSQ_NOT_IDEMPOTENT),
        Case("ResidualFSQ",
             _implicit(lambda est: ResidualFSQ(DIM, (7, 5, 5, 5, 3, 3, 3, 4), 3, estimator=est)),
             None, skip=_IMPLICIT_SKIP, not_idempotent=_FSQ_NOT_IDEMPOTENT),
        Case("ResidualFSQ-projected",
             _implicit(lambda est: ResidualFSQ(DIM, (5, 5, 5), 2, estimator=est)),
             None, skip=_IMPLICIT_SKIP, not_idempotent=_FSQ_NOT_IDEMPOTENT),
        Case("LFQ", _implicit(lambda est: LFQ(DIM, 2**DIM, estimator=est)), _signs_exact,
             skip=_IMPLICIT_SKIP),
        Case("LFQ-projected", _implicit(lambda est: LFQ(DIM, 2**5, estimator=est)), None,
             skip=_IMPLICIT_SKIP, not_idempotent="a code goes through the projections again"),
        Case("BSQ", _implicit(lambda est: BSQ(DIM, 2**DIM, estimator=est)), _signs_exact,
             skip=_IMPLICIT_SKIP),
        Case("BSQ-projected", _implicit(lambda est: BSQ(DIM, 2**12, estimator=est)), None,
             skip=_IMPLICIT_SKIP, not_idempotent="a code goes through the projections again"),
    ]


CASES.extend(_implicit_cases())


# -- codebook parameterisations (vqkit.parameterisations) -------------------------------------
_SIMVQ_SKIP = ("EMA cannot learn a SimVQ codebook (rows tied through W, learned by gradient): "
               "refused by design")
_FACTORISED_NOT_IDEMPOTENT = ("a decoded code goes through the projections in and out again, "
                              "which need not map it to itself")


def _param(make, parameterisation):
    """``make(est, learn, p)`` with a fresh ``parameterisation()``, None where refused."""
    from vqkit import EMA, SimVQ

    def build(est, learn):
        p = parameterisation()
        if isinstance(learn, EMA) and isinstance(p, SimVQ):
            return None
        return make(est, learn, p)

    return build


def _decoded_exact(q, g):
    # Decoded codes (unit rows for cosine, B W rows for SimVQ) are found again exactly.
    idx = torch.randint(0, q.codebook_size, (6, 5, *q.index_shape), generator=g)
    return q.decode(idx.to(q.codewords.device)).detach().clone()


def _simvq_separated_exact(q, g):
    # As _separated_sum_exact, with stage m's map W = 100**-m I, b = 0 over a N(0, 1) basis.
    device = q.codewords.device
    with torch.no_grad():
        for m, cb in enumerate(q.codebooks):
            cb.basis.copy_(torch.randn(cb.basis.shape, generator=g).to(device))
            cb.weight.copy_(torch.eye(cb.dim, device=device) * 100.0**-m)
            cb.bias.zero_()
    idx = torch.randint(0, q.codebook_size, (6, 5, q.num_codebooks), generator=g)
    return q.decode(idx.to(device)).detach().clone()


def _parameterisation_cases():
    from vqkit import Cosine, Factorised, ProductVQ, ResidualVQ, SimVQ

    def vq(est, learn, p):
        return VectorQuantizer(DIM, 16, estimator=est, learning=learn, parameterisation=p)

    def pvq(est, learn, p):
        return ProductVQ(DIM, 16, 2, estimator=est, learning=learn, parameterisation=p)

    def rvq(est, learn, p):
        return ResidualVQ(DIM, 16, 3, estimator=est, learning=learn, parameterisation=p)

    cases = []
    for name, make in (("VectorQuantizer", vq), ("ProductVQ", pvq)):
        cases += [
            Case(f"{name}-SimVQ", _param(make, SimVQ), _decoded_exact, skip=_SIMVQ_SKIP),
            Case(f"{name}-Cosine", _param(make, Cosine), _decoded_exact),
            Case(f"{name}-Factorised", _param(make, lambda: Factorised(3)), None,
                 not_idempotent=_FACTORISED_NOT_IDEMPOTENT),
            Case(f"{name}-Factorised-Cosine", _param(make, lambda: Factorised(3, Cosine())),
                 None, not_idempotent=_FACTORISED_NOT_IDEMPOTENT),
        ]
    cases.append(Case("ResidualVQ-SimVQ", _param(rvq, SimVQ), _simvq_separated_exact,
                      skip=_SIMVQ_SKIP))
    return cases


CASES.extend(_parameterisation_cases())
