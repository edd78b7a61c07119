"""Loaders for the real data sets that install offline (docs/references.md, Data).

Loaders never download: a missing package or data set raises :class:`MissingDataError`,
which names the pip or Debian package that installs it.
"""

from ._errors import MissingDataError

__all__ = ["MissingDataError"]
