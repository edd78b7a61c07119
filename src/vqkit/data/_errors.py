"""The error every loader raises when its data or package is not installed."""

from __future__ import annotations


class MissingDataError(FileNotFoundError):
    """A data set or optional package is missing; the message says what installs it."""


def require_module(name: str, install: str):
    """Import optional module ``name`` or raise ImportError naming ``install``."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"{name} is required here: install it with `{install}`") from err
