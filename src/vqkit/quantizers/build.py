"""One constructor for every registered quantizer, used by the command line and the apps.

:func:`build_quantizer` takes the quantizer by registry name (``"vq"``, ``"rvq"``,
``"ResidualVQ"``, ...) or class and calls its constructor with the common arguments it has
(``dim``, ``codebook_size``, ``num_codebooks``, ``estimator``, ``learning``) plus any others,
so the same arguments always give the same constructor call, hence the same seeds and numbers.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from ..codebooks import CodebookLearning
from ..estimators import Estimator
from ..parameterisations import CodebookParameterisation, Factorised
from ..registry import ESTIMATORS, LEARNINGS, PARAMETERISATIONS, QUANTIZERS
from .application import EstimatorApplication
from .base import Quantizer


def quantizer_class(kind: str | type[Quantizer]) -> type[Quantizer]:
    """The quantizer class named ``kind`` in :data:`vqkit.registry.QUANTIZERS` (a class is
    returned as it is).

    Raises:
        ValueError: no quantizer has that name.
    """
    return QUANTIZERS.lookup(kind) if isinstance(kind, str) else kind


def takes_argument(kind: str | type[Quantizer], name: str) -> bool:
    """Whether the constructor of quantizer ``kind`` has a parameter called ``name``.

    Example:
        >>> takes_argument("rvq", "num_codebooks"), takes_argument("vq", "num_codebooks")
        (True, False)
    """
    return name in inspect.signature(quantizer_class(kind)).parameters


def build_estimator(
    estimator: str | Estimator, *, generator: torch.Generator | None = None
) -> Estimator:
    """The estimator named ``estimator`` (registry name or alias) with its default arguments.

    Args:
        estimator: a name of :data:`vqkit.registry.ESTIMATORS`, or an estimator (returned
            unchanged).
        generator: the noise source, given to the estimators that draw noise (those whose
            constructor takes a ``generator``: NSVQ, DiVeQ, SF-DiVeQ); the others do not use one.

    Raises:
        ValueError: unknown estimator name.

    Example:
        >>> build_estimator("ste"), build_estimator("nsvq")
        (StraightThrough(beta=0.25), NoiseSubstitution())
    """
    if not isinstance(estimator, str):
        return estimator
    cls = ESTIMATORS.lookup(estimator)
    if generator is not None and "generator" in inspect.signature(cls).parameters:
        return cls(generator=generator)
    return cls()


def build_parameterisation(
    name: str | CodebookParameterisation, codebook_dim: int | None = None
) -> CodebookParameterisation:
    """The codebook parameterisation called ``name`` (``"direct"``, ``"simvq"`` or
    ``"linear"``, ``"cosine"``, ``"factorised"``, or a class name).

    Args:
        name: a name of :data:`vqkit.registry.PARAMETERISATIONS`, or a parameterisation
            (returned unchanged).
        codebook_dim: d of ``"factorised"`` (None: its default, 8); only factorised takes it.

    Raises:
        ValueError: unknown name, or ``codebook_dim`` for a parameterisation other than
            factorised.

    Example:
        >>> build_parameterisation("simvq"), build_parameterisation("factorised", 4)
        (SimVQ(bias=True), Factorised(codebook_dim=4, inner={'type': 'Direct'}))
    """
    if not isinstance(name, str):
        return name
    cls = PARAMETERISATIONS.lookup(name)
    if cls is Factorised:
        return Factorised() if codebook_dim is None else Factorised(int(codebook_dim))
    if codebook_dim is not None:
        raise ValueError(f"codebook_dim applies to the factorised codebook only, not {name!r}")
    return cls()


def build_quantizer(
    kind: str | type[Quantizer],
    dim: int,
    codebook_size: int | None = None,
    num_codebooks: int | None = None,
    *,
    estimator: str | Estimator | EstimatorApplication | None = None,
    learning: str | CodebookLearning | None = None,
    **options: Any,
) -> Quantizer:
    """Construct the quantizer ``kind`` from the arguments every quantizer family shares.

    Args:
        kind: a name of :data:`vqkit.registry.QUANTIZERS` (``"vq"``, ``"rvq"``, ``"pvq"``,
            ``"avq"``, ``"sfvq"``, a class name, ...) or a quantizer class.
        dim: D.
        codebook_size: K per codebook (left out when None, for quantizers without one).
        num_codebooks: M, passed to the quantizers that take it; any other quantizer accepts
            only None or 1.
        estimator: an estimator (or estimator application) or an estimator name (built with
            its default arguments); None keeps the quantizer's default.
        learning: a codebook learning or its name (``"gradient"``, ``"ema"``); None keeps the
            default.
        **options: further constructor arguments (``encoder=``, ``init=``,
            ``initial_size=``, ...).

    Returns:
        ``cls(dim=dim, codebook_size=..., num_codebooks=..., estimator=..., learning=...,
        **options)``, with the arguments that are None left out.

    Raises:
        ValueError: unknown names, ``num_codebooks > 1`` for a one-codebook quantizer, or an
            estimator / learning for a quantizer that takes none.

    Example:
        >>> q = build_quantizer("rvq", 8, 16, 3, estimator="ste", learning="ema")
        >>> type(q).__name__, q.codebook_sizes, q.estimator, q.learning
        ('ResidualVQ', (16, 16, 16), StraightThrough(beta=0.25), EMA(decay=0.99, eps=1e-05))
    """
    cls = quantizer_class(kind)
    params = inspect.signature(cls).parameters
    args: dict[str, Any] = {"dim": dim}
    if codebook_size is not None:
        args["codebook_size"] = codebook_size
    if num_codebooks is not None:
        if "num_codebooks" in params:
            args["num_codebooks"] = num_codebooks
        elif num_codebooks != 1:
            raise ValueError(
                f"num_codebooks must be 1 for {cls.__name__} (one codebook), got {num_codebooks}"
            )
    for name, value in (("estimator", estimator), ("learning", learning)):
        if value is None:
            continue
        if name not in params:
            raise ValueError(f"{cls.__name__} takes no {name}, got {value!r}")
        if isinstance(value, str):
            value = build_estimator(value) if name == "estimator" else LEARNINGS.lookup(value)()
        args[name] = value
    return cls(**args, **options)
