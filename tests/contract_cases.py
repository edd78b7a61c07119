"""Quantizers that the contract suite (tests/test_contract.py) checks.

Each :class:`Case` builds its quantizer for any estimator x codebook learning (returning
``None`` for a combination the quantizer rejects by design, with the reason in ``skip``)
and makes inputs that the quantizer must reproduce exactly in eval mode (vectors built from
its codewords). Add one Case per quantizer type.
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
    exact_inputs: Callable[[torch.nn.Module, torch.Generator], torch.Tensor]
    skip: str = ""


def _vq_exact(q, g):
    idx = torch.randint(0, q.codebook_size, (6, 5), generator=g)
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
    idx = torch.randint(0, q.codebook_size, (6, 5), generator=g)
    return q.codewords.detach()[idx].clone()


CASES.append(
    Case(
        "SpaceFillingVQ",
        _sf_build,
        _sf_exact,
        skip="EMA codebook learning cannot train a curve: SpaceFillingVQ rejects it by design",
    )
)
