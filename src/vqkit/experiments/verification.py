"""Comparing a rerun's results JSON with a committed one: ``vqkit reproduce NAME --verify``.

Only numbers are compared (``bool`` included, exactly), and only results: the provenance
fields of a record (:data:`PROVENANCE_KEYS`, at the top level) and every key that holds a
timing or the machine's load (:data:`TIMING_KEY`, at any depth) are left out, because they
change from run to run by nature. Strings (labels, notes, file names) are not compared. A key
or list element present on one side only is a difference. Each reproduction states how close
its numbers must be (:class:`Tolerance`; exact unless an upstream library is not
deterministic).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .reproduction import Reproduction

#: Top-level keys of a results record that say how it was made, not what it found
#: (``workers``: how many processes shared independent points, which a reproduction records
#: only where its rows are tested not to depend on it).
PROVENANCE_KEYS = frozenset({
    "command", "git_commit", "dirty", "diff_sha256", "untracked_src", "seeds", "started_at",
    "wall_seconds", "environment", "libraries", "data_packages", "runs", "workers",
})
#: Keys (at any depth) of timings and machine load: ``*seconds*`` (wall, train, encode, per
#: configuration), ``load_average*``, throughput ``*_per_s`` / ``vectors_per_s``, and the
#: timing ratios of the benchmarks (``time_over_*``, ``*_over_vqp``, ``speedup*``), and the
#: peak memory a process measured (``*_mib``: the allocator's high-water mark varies too).
TIMING_KEY = re.compile(r"seconds|load_average|per_s$|^time_over_|_time_over_|_over_vqp$"
                        r"|^speedup|_mib$")
#: What stands in a difference for a value one side does not have.
MISSING = "<missing>"
#: Reproductions whose quick version takes less than this (minutes, ``quick_minutes``) have
#: their quick JSON committed in ``results/quick/`` (with every variant's) and are rerun by
#: the default tests.
FIXTURE_MAX_MINUTES = 1.0


#: Entries of a record's ``environment`` that decide its float32 results bit for bit.
PLATFORM_KEYS = ("cpu", "cpu_capability", "torch")


def platform_difference(committed: Mapping[str, Any], rerun: Mapping[str, Any]) -> str | None:
    """Why two records cannot be expected to agree bit for bit, or None: their environments
    differ in a :data:`PLATFORM_KEYS` entry, or the rerun records one that the committed
    record does not (an older record: its "AMD EPYC" ran with AVX2 or AVX512, nobody knows).
    Different CPUs run torch's float32 kernels with other instruction sets and summation
    orders, and a last-bit difference can move a nearest-neighbour choice and everything
    after it."""
    old, new = committed.get("environment") or {}, rerun.get("environment") or {}
    changed = [f"{key} {old.get(key, 'unrecorded')!r} -> {new[key]!r}" for key in PLATFORM_KEYS
               if key in new and old.get(key) != new[key]]
    return ("committed on another platform (" + ", ".join(changed) + ")") if changed else None


def fixture_runs(registry: Mapping[str, Reproduction]) -> list[tuple[str, str | None]]:
    """``(name, variant or None)`` of every quick run that has a committed JSON: the
    reproductions of ``registry`` measured under :data:`FIXTURE_MAX_MINUTES`, main run and
    variants."""
    return [(name, variant) for name, rep in registry.items()
            if rep.quick_minutes is not None and rep.quick_minutes < FIXTURE_MAX_MINUTES
            for variant in (None, *rep.variants)]


@dataclass(frozen=True)
class Tolerance:
    """How far a rerun's number may be from the committed one:
    ``|now - committed| <= abs + rel * |committed|``. The default is exact (both zero); NaN
    matches NaN, and an infinity only itself.

    Attributes:
        rel: relative tolerance, >= 0.
        abs: absolute tolerance, >= 0.
        reason: why the numbers are not exact (required when either tolerance is not 0).

    Raises:
        ValueError: a negative or non-finite tolerance, or a non-zero one without a reason.
    """

    rel: float = 0.0
    abs: float = 0.0
    reason: str = ""

    def __post_init__(self) -> None:
        for name, value in (("rel", self.rel), ("abs", self.abs)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"tolerance {name} must be a finite number >= 0, got {value!r}")
        if (self.rel or self.abs) and not self.reason:
            raise ValueError("a tolerance that is not exact needs a reason (which library is "
                             "not deterministic)")

    @property
    def exact(self) -> bool:
        return not (self.rel or self.abs)

    def allows(self, committed: float, now: float) -> bool:
        """Whether ``now`` is close enough to ``committed``."""
        if math.isnan(committed) or math.isnan(now):
            return math.isnan(committed) and math.isnan(now)
        if math.isinf(committed) or math.isinf(now):
            return committed == now
        return abs(now - committed) <= self.abs + self.rel * abs(committed)

    def describe(self) -> str:
        """One line: ``exact``, or the tolerances and their reason."""
        if self.exact:
            return "exact"
        return f"rel {self.rel:g}, abs {self.abs:g} ({self.reason})"


EXACT = Tolerance()


@dataclass(frozen=True)
class Difference:
    """One mismatch: where (``a.b[3].c``), the committed value and the rerun's."""

    path: str
    committed: Any
    now: Any

    def __str__(self) -> str:
        return f"{self.path}: committed {self.committed!r}, now {self.now!r}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float))


def _has_numbers(value: Any) -> bool:
    if _number(value):
        return True
    if isinstance(value, dict):
        return any(_has_numbers(v) for k, v in value.items() if not TIMING_KEY.search(str(k)))
    if isinstance(value, list):
        return any(_has_numbers(v) for v in value)
    return False


class Comparison:
    """The outcome of comparing two results records: the numbers compared and the
    differences found (in the committed record's order).

    Args:
        committed: the committed record (parsed JSON).
        now: the rerun's record.
        tolerance: how close the numbers must be.
    """

    def __init__(self, committed: Any, now: Any, tolerance: Tolerance = EXACT) -> None:
        self.tolerance = tolerance
        self.compared = 0
        self.differences: list[Difference] = list(self._walk(committed, now, ""))

    @property
    def matches(self) -> bool:
        """No difference, and at least one number compared (nothing compared proves nothing)."""
        return not self.differences and self.compared > 0

    def _walk(self, committed: Any, now: Any, path: str) -> Iterator[Difference]:
        if isinstance(committed, bool) or isinstance(now, bool):
            self.compared += 1
            if committed is not now:  # a bool matches only the same bool
                yield Difference(path, committed, now)
            return
        if _number(committed) and _number(now):
            self.compared += 1
            if not self.tolerance.allows(float(committed), float(now)):
                yield Difference(path, committed, now)
            return
        if isinstance(committed, dict) and isinstance(now, dict):
            for key in [*committed, *(k for k in now if k not in committed)]:
                if TIMING_KEY.search(str(key)) or (not path and key in PROVENANCE_KEYS):
                    continue
                sub = f"{path}.{key}" if path else str(key)
                yield from self._pair(committed, now, key, sub)
            return
        if isinstance(committed, list) and isinstance(now, list):
            for i in range(max(len(committed), len(now))):
                yield from self._pair(committed, now, i, f"{path}[{i}]")
            return
        if _has_numbers(committed) or _has_numbers(now):  # a number against another type
            yield Difference(path, committed, now)

    def _pair(self, committed: Any, now: Any, key: Any, path: str) -> Iterator[Difference]:
        """Compare ``committed[key]`` with ``now[key]`` (dict keys or list indices)."""
        has_old = key in committed if isinstance(committed, dict) else key < len(committed)
        has_new = key in now if isinstance(now, dict) else key < len(now)
        if has_old and has_new:
            yield from self._walk(committed[key], now[key], path)
        elif has_old and _has_numbers(committed[key]):
            yield Difference(path, committed[key], MISSING)
        elif has_new and _has_numbers(now[key]):
            yield Difference(path, MISSING, now[key])
