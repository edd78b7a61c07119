"""Names of the quantizer and strategy classes, for configs, checkpoints and the command line.

A :class:`Registry` maps names to the classes of one kind. Each class registers itself where it
is defined, with :meth:`Registry.register` as a class decorator, exactly once: its canonical
name is its class name (what configs and saved files store) and its aliases are the short
names of the command line (``nsvq``, ``ste``, ``vq``, ``rvq``, ...). A lookup takes either.

There is one registry per kind, each a module constant here (aliases in brackets):

- ``QUANTIZERS``: the :class:`~vqkit.Quantizer` types (``vq``, ``rvq``, ``pvq`` or ``pq``,
  ``avq``, ``sfvq``, ``fsq``, ``rfsq``, ``lfq``, ``bsq``);
- ``ESTIMATORS``: the gradient estimators, the space-filling ones (``SFDiVeQ``, ``MSEFit``)
  included (``nsvq``, ``ste``, ``rotation``, ``diveq``, ``diveq-detach``);
- ``LEARNINGS``: codebook learning (``gradient``, ``ema``);
- ``PARAMETERISATIONS``: how a codebook's codewords are made (``direct``, ``simvq`` or
  ``linear``, ``factorised``, ``cosine``);
- ``ENCODERS``: the index search of multi-codebook quantizers (``greedy``, ``beam``);
- ``APPLICATIONS``: where a multi-codebook quantizer applies its estimator;
- ``DROPOUTS``: quantizer dropout; ``PROJECTIONS``: space-filling curve projections;
  ``REPLACEMENT_RULES``: dead-code replacement rules; ``REGULARISERS``: auxiliary losses on
  the code assignments (``entropy``); ``DATA_INITS``: lazy data initialisation on the first
  training batch; ``BEAM_FITS``: which residuals of a training beam the residual k-means
  initialisation fits each codebook to.

Why one registry per kind rather than one for everything: a config field knows its kind (an
``"estimator"`` field holds an estimator), so a lookup searches only that kind, a name can
never rebuild an object of the wrong kind, and an error lists the names that would have worked
in that place. Every :class:`~vqkit.strategy.Strategy` base class names its registry in its
``registry`` attribute, which :func:`vqkit.strategy.to_config` and
:func:`vqkit.strategy.from_config` use.

The core's classes are registered when ``vqkit`` is imported (which importing any ``vqkit``
module does first). A quantizer defined in an application (``vqkit.apps...``) registers when
its module is imported, so a file holding one loads once that module is imported.

Example:
    >>> from vqkit.registry import ESTIMATORS, QUANTIZERS
    >>> ESTIMATORS.lookup("nsvq").__name__, ESTIMATORS.name_of(ESTIMATORS.lookup("ste"))
    ('NoiseSubstitution', 'StraightThrough')
    >>> QUANTIZERS.lookup("rvq") is QUANTIZERS.lookup("ResidualVQ")
    True
    >>> QUANTIZERS.lookup("mystery")
    Traceback (most recent call last):
    ...
    ValueError: unknown quantizer type 'mystery'; known quantizer types: ...
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


class Registry:
    """Names -> classes of one kind, with aliases.

    Args:
        kind: what the classes are, for messages (``"estimator"``, ``"quantizer"``, ...).

    Example:
        >>> shapes = Registry("shape")
        >>> @shapes.register(aliases=("sq",))
        ... class Square:
        ...     pass
        >>> shapes.lookup("sq") is shapes.lookup("Square") is Square, shapes.name_of(Square)
        (True, 'Square')
        >>> list(shapes), shapes.aliases()
        (['Square'], {'sq': 'Square'})
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, str] = {}

    def register(self, cls: type | None = None, *, aliases: Iterable[str] = ()) -> Any:
        """Register ``cls`` under its class name and ``aliases``; usable as a class decorator
        (``@REGISTRY.register`` or ``@REGISTRY.register(aliases=("short",))``).

        Returns:
            ``cls`` itself (or, without ``cls``, the decorator).

        Raises:
            ValueError: ``cls`` is already registered here, or a name is taken.
        """
        names = tuple(aliases)

        def add(klass: type) -> type:
            if klass in self._classes.values():
                raise ValueError(f"{klass.__name__} is already a registered {self.kind} type")
            for name in (klass.__name__, *names):
                if name in self:
                    raise ValueError(f"{self.kind} name {name!r} is already taken by "
                                     f"{self.lookup(name).__name__}")
            if len(set(names)) != len(names) or klass.__name__ in names:
                raise ValueError(f"aliases of {klass.__name__} repeat a name: {names}")
            self._classes[klass.__name__] = klass
            self._aliases.update(dict.fromkeys(names, klass.__name__))
            return klass

        return add if cls is None else add(cls)

    def lookup(self, name: str) -> type:
        """The class called ``name`` (its class name or an alias).

        Raises:
            ValueError: no such name (the message names the kind and every known name).
        """
        canonical = self._aliases.get(name, name) if isinstance(name, str) else name
        if isinstance(canonical, str) and canonical in self._classes:
            return self._classes[canonical]
        known = sorted(self._classes)
        aliases = f" (or {', '.join(sorted(self._aliases))})" if self._aliases else ""
        raise ValueError(f"unknown {self.kind} type {name!r}; known {self.kind} types: "
                         f"{', '.join(known)}{aliases}")

    def name_of(self, cls: type) -> str:
        """The canonical name of the registered class ``cls`` (what configs store).

        Raises:
            TypeError: ``cls`` is not registered here.
        """
        name = cls.__name__
        if self._classes.get(name) is not cls:
            raise TypeError(
                f"{name} is not a registered {self.kind} type (known: "
                f"{', '.join(sorted(self._classes))}); register it with @<REGISTRY>.register "
                "from vqkit.registry to save or configure it by name"
            )
        return name

    def aliases(self) -> dict[str, str]:
        """``{alias: canonical name}``, in the order they were registered."""
        return dict(self._aliases)

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        """The canonical names, in the order they were registered."""
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._classes)})"


QUANTIZERS: Registry = Registry("quantizer")
ESTIMATORS: Registry = Registry("estimator")
LEARNINGS: Registry = Registry("codebook learning")
PARAMETERISATIONS: Registry = Registry("codebook parameterisation")
ENCODERS: Registry = Registry("encoder")
APPLICATIONS: Registry = Registry("estimator application")
DROPOUTS: Registry = Registry("quantizer dropout")
PROJECTIONS: Registry = Registry("projection")
REPLACEMENT_RULES: Registry = Registry("replacement rule")
REGULARISERS: Registry = Registry("regulariser")
DATA_INITS: Registry = Registry("data initialisation")
BEAM_FITS: Registry = Registry("beam fit")

#: Every registry, by the kind it holds.
REGISTRIES: dict[str, Registry] = {
    r.kind: r
    for r in (QUANTIZERS, ESTIMATORS, LEARNINGS, PARAMETERISATIONS, ENCODERS, APPLICATIONS,
              DROPOUTS, PROJECTIONS, REPLACEMENT_RULES, REGULARISERS, DATA_INITS,
              BEAM_FITS)
}

__all__ = [
    "APPLICATIONS",
    "BEAM_FITS",
    "DATA_INITS",
    "DROPOUTS",
    "ENCODERS",
    "ESTIMATORS",
    "LEARNINGS",
    "PARAMETERISATIONS",
    "PROJECTIONS",
    "QUANTIZERS",
    "REGISTRIES",
    "REGULARISERS",
    "REPLACEMENT_RULES",
    "Registry",
]
