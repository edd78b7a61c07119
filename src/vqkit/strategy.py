"""Strategy objects: small option objects of the quantizers that save as plain-value configs.

Estimators, codebook learnings, encoders, curve projections, quantizer dropouts and
dead-code replacement rules are all :class:`Strategy` objects. ``config()`` returns the
constructor arguments as plain values; equality, hashing and ``repr`` follow from it.
:func:`to_config` and :func:`from_config` turn one into ``{"type": name, **arguments}`` (what
checkpoints store) and back, through the registry of its kind (:mod:`vqkit.registry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .registry import Registry


class Strategy:
    """Base class: a strategy is defined by its type and its ``config()``.

    Example:
        >>> class Beam(Strategy):
        ...     def __init__(self, width=8):
        ...         self.width = width
        ...     def config(self):
        ...         return {"width": self.width}
        >>> Beam(4), Beam(4) == Beam(4), Beam(4) == Beam(5)
        (Beam(width=4), True, False)
    """

    #: The registry of the strategy's kind (set on each kind's base class).
    registry: ClassVar[Registry | None] = None

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain values (generators and other state are not saved)."""
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Strategy:
        """Rebuild from :meth:`config`'s output (nested strategies override this)."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.config() == other.config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.config())))


def to_config(strategy: Strategy) -> dict[str, Any]:
    """``{"type": name, **arguments}`` of a strategy.

    Raises:
        TypeError: the strategy's class is not registered in the registry of its kind.
    """
    registry = type(strategy).registry
    if registry is None:
        raise TypeError(f"{type(strategy).__name__} is a Strategy of no registered kind")
    return {"type": registry.name_of(type(strategy)), **strategy.config()}


def from_config(config: Mapping[str, Any], registry: Registry) -> Any:
    """Rebuild a strategy of ``registry``'s kind from :func:`to_config`'s output.

    Raises:
        ValueError: the type is not in ``registry`` (the message names the kind and the
            known types).
    """
    args = dict(config)
    return registry.lookup(args.pop("type", None)).from_config(args)
