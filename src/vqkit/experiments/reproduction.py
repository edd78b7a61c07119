"""The declaration of one paper reproduction: what ``vqkit reproduce`` runs and ``vqkit report``
summarises.

Every reproduction module of :mod:`vqkit.experiments` defines one ``REPRODUCTION =
Reproduction(...)``; the registry collects them. A reproduction may have variants: follow-up
runs with other settings that write their own JSON (``vqkit reproduce NAME --variant X``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..training.provenance import read_json
from .verification import EXACT, Tolerance

#: ``run(out_dir, *, quick=False, seed=0, allow_dirty=False) -> Path``: constructs its
#: :class:`vqkit.training.provenance.Run` first (which reads the source tree's state and
#: refuses a dirty tree unless ``allow_dirty``), runs, writes ``out_dir/<file>.json`` and its
#: plots, returns the JSON path; ``quick=True`` is the short smoke version the tests run.
RunFunction = Callable[..., Path]
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{kind} name must be lower-case words joined by '-', got {name!r}")


@dataclass(frozen=True)
class Variant:
    """A follow-up run of a reproduction: other settings, its own results JSON.

    Attributes:
        description: one line for ``vqkit reproduce --list`` and the help.
        run: a :data:`RunFunction`.
    """

    description: str
    run: RunFunction


@dataclass(frozen=True)
class Reproduction:
    """One paper reproduction.

    Attributes:
        name: the command-line name, e.g. ``"nsvq-toy"``.
        description: one line.
        expected_minutes: the measured run time on the 2-core reference machine (1 thread).
        result_files: the JSON file names ``run`` writes into ``results/`` (and ``report`` reads).
        run: a :data:`RunFunction`.
        report: ``report(results_dir) -> str``: the Markdown section of ``docs/results.md``,
            built only from the JSON (and plots) in ``results_dir``, with the paper's numbers
            beside ours.
        config: the settings dataclass ``run`` reads (its full and quick instances are module
            constants), or None where the settings are plain values of the module.
        variants: the follow-up runs by name.
        quick_minutes: the measured run time of the ``--quick`` version (1 thread; for those
            with a committed ``results/quick/`` JSON, its ``wall_seconds`` / 60), or None where
            it could not be measured (a package it needs is not installed here).
        tolerance: how close a rerun of the quick version must come to the committed
            ``results/quick/`` JSON (``vqkit reproduce NAME --verify``): exact unless an
            upstream library is not deterministic.

    Raises:
        ValueError: on a malformed name, a non-positive ``expected_minutes`` or
            ``quick_minutes``, no result files or a result file that is not ``*.json``.
        TypeError: if ``config`` is not a dataclass type or ``tolerance`` not a
            :class:`~.verification.Tolerance`.
    """

    name: str
    description: str
    expected_minutes: float
    result_files: tuple[str, ...]
    run: RunFunction
    report: Callable[[Path], str]
    config: type | None = None
    variants: Mapping[str, Variant] = field(default_factory=dict)
    quick_minutes: float | None = None
    tolerance: Tolerance = EXACT

    def __post_init__(self) -> None:
        _check_name("reproduction", self.name)
        for variant in self.variants:
            _check_name("variant", variant)
        if not self.expected_minutes > 0:
            raise ValueError(f"expected_minutes must be positive, got {self.expected_minutes!r}")
        if self.quick_minutes is not None and not self.quick_minutes > 0:
            raise ValueError(f"quick_minutes must be positive or None, got "
                             f"{self.quick_minutes!r}")
        if not isinstance(self.tolerance, Tolerance):
            raise TypeError(f"tolerance must be a Tolerance, got {self.tolerance!r}")
        files = tuple(self.result_files)
        if not files or not all(isinstance(f, str) and f.endswith(".json") for f in files):
            raise ValueError(f"result_files must name one or more .json files, got {files!r}")
        if self.config is not None and not (isinstance(self.config, type)
                                            and is_dataclass(self.config)):
            raise TypeError(f"config must be a dataclass type or None, got {self.config!r}")
        object.__setattr__(self, "result_files", files)
        object.__setattr__(self, "variants", MappingProxyType(dict(self.variants)))

    def runner(self, variant: str | None = None) -> RunFunction:
        """The run function of the reproduction (``variant=None``) or of one variant.

        Raises:
            ValueError: if this reproduction has no variant ``variant``.
        """
        if variant is None:
            return self.run
        if variant not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise ValueError(f"{self.name} has no variant {variant!r}; its variants: {known}")
        return self.variants[variant].run


def no_results(title: str, name: str) -> str:
    """The report section of a reproduction whose JSON is not there yet."""
    return f"## {title}\n\nNo results yet: run `vqkit reproduce {name}`.\n"


def json_report(name: str, result_file: str, render: Callable[[dict[str, Any]], str]
                ) -> Callable[[Path], str]:
    """A ``report(results_dir)`` that renders the record of ``results_dir/result_file`` (read
    by :func:`vqkit.training.provenance.read_json`) with ``render``, or :func:`no_results`
    when the file is not there."""

    def report(results_dir: Path) -> str:
        path = Path(results_dir) / result_file
        if not path.is_file():
            return no_results(name, name)
        return render(read_json(path))

    report.__doc__ = f"Markdown section from ``{result_file}``."
    return report
