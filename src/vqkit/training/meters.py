"""Meters: running averages of training metrics and their history for curves and checkpoints.

A :class:`Meters` collects named scalars every step, reports their mean over the current
window (what the progress bar shows) and appends one history row per window (what the
training-curve plot and the results JSON hold). Its state is plain numbers, so it goes into
checkpoints and resumes exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Meters:
    """Windowed means of named scalars, with a history of one row per closed window.

    Example:
        >>> m = Meters()
        >>> m.update({"mse": 2.0}); m.update({"mse": 4.0})
        >>> m.means()
        {'mse': 3.0}
        >>> m.close_window(step=2)
        {'step': 2, 'mse': 3.0}
        >>> m.history
        [{'step': 2, 'mse': 3.0}]
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self.history: list[dict[str, float]] = []

    def update(self, values: Mapping[str, float], weight: int = 1) -> None:
        """Add one observation (``weight`` = how many items it averages) of each value."""
        for name, value in values.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value) * weight
            self._counts[name] = self._counts.get(name, 0) + weight

    def means(self) -> dict[str, float]:
        """Means over the current window."""
        return {k: self._sums[k] / self._counts[k] for k in self._sums if self._counts[k]}

    def close_window(self, step: int) -> dict[str, float]:
        """Append the window's means (with ``step``) to the history, start a new window."""
        row: dict[str, Any] = {"step": int(step), **self.means()}
        self.history.append(row)
        self._sums.clear()
        self._counts.clear()
        return row

    def last(self) -> dict[str, float]:
        """The most recent history row (empty before the first window closes)."""
        return dict(self.history[-1]) if self.history else {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "sums": dict(self._sums),
            "counts": dict(self._counts),
            "history": [dict(r) for r in self.history],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sums = {str(k): float(v) for k, v in state["sums"].items()}
        self._counts = {str(k): int(v) for k, v in state["counts"].items()}
        self.history = [dict(r) for r in state["history"]]
