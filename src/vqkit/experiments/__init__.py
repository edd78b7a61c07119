"""Paper reproductions, run by ``vqkit reproduce NAME`` and summarised by ``vqkit report``.

Every module in this package (except :mod:`.reproduction`, :mod:`.verification` and those
starting with ``_``, which hold shared machinery) is one reproduction and declares it as
``REPRODUCTION =`` :class:`~.reproduction.Reproduction` ``(...)``: its name, description,
expected minutes (full and quick), result files, ``run``, ``report``, settings dataclass,
variants and the tolerance of ``--verify``.

The registry is collected when asked for, so adding a reproduction means adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil

from .reproduction import Reproduction, Variant

__all__ = ["Reproduction", "Variant", "registry"]

#: Modules of this package that are not reproductions.
_SUPPORT = {"reproduction", "verification"}


def registry() -> dict[str, Reproduction]:
    """Reproductions by name, in module order.

    Raises:
        RuntimeError: if a reproduction module declares no ``REPRODUCTION``.
        TypeError: if its ``REPRODUCTION`` is not a :class:`Reproduction`.
        ValueError: if two modules declare the same name.
    """
    found: dict[str, Reproduction] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _SUPPORT:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        try:
            declared = module.REPRODUCTION
        except AttributeError as err:
            raise RuntimeError(f"reproduction module {module.__name__} declares no "
                               "REPRODUCTION") from err
        if not isinstance(declared, Reproduction):
            raise TypeError(f"{module.__name__}.REPRODUCTION must be a Reproduction, got "
                            f"{type(declared).__name__}")
        if declared.name in found:
            raise ValueError(f"two reproductions are named {declared.name!r}")
        found[declared.name] = declared
    return found
