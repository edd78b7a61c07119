"""Paper reproductions, run by ``vqkit reproduce NAME`` and summarised by ``vqkit report``.

Every module in this package (except those starting with ``_``) is one reproduction and
defines:

- ``NAME``: the command-line name, e.g. ``"nsvq-toy"``;
- ``DESCRIPTION``: one line;
- ``EXPECTED_MINUTES``: the measured run time on the 2-core reference machine;
- ``run(out_dir: Path, *, quick: bool = False, seed: int = 0) -> Path``: runs it, writes
  ``out_dir/<file>.json`` (with :mod:`vqkit.training.provenance`) and any PNG plots, and
  returns the JSON path; ``quick=True`` is the seconds-long smoke version used by tests;
- ``RESULT_FILES``: the JSON file names it writes into ``results/``;
- ``report(results_dir: Path) -> str``: the Markdown section of ``docs/results.md``, built
  only from the JSON (and plots) in ``results_dir``, with the paper's numbers beside ours.

The registry is discovered when asked for, so adding a reproduction means adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

_REQUIRED = ("NAME", "DESCRIPTION", "EXPECTED_MINUTES", "RESULT_FILES", "run", "report")


def registry() -> dict[str, ModuleType]:
    """Reproductions by name, in module order."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        missing = [attr for attr in _REQUIRED if not hasattr(module, attr)]
        if missing:
            raise RuntimeError(f"reproduction module {module.__name__} lacks {missing}")
        found[module.NAME] = module
    return found
