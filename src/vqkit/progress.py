"""The one progress bar of vqkit: a tqdm bar that stays off when output is not a terminal.

Logs and CI capture stderr; a tqdm bar redraws there once per update and floods the file.
tqdm's ``disable=None`` turns the bar off when its stream is not a TTY (in Jupyter the
notebook bar still shows), so every bar of the package goes through :func:`progress_bar`.
"""

from __future__ import annotations

from typing import Any


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(iterable, **kwargs)``, shown only if ``enabled`` and the output is a
    terminal (a disabled bar still iterates and accepts ``update`` / ``set_postfix``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None if enabled else True, **kwargs)


class bar_callback:  # noqa: N801 - used like a function: progress=bar_callback("SFVQ")
    """A ``progress(done, total, info)`` callback drawing a :func:`progress_bar`.

    The core reports progress through such callbacks (it does not import tqdm); this adapter
    opens the bar on the first call, moves it to ``done``, shows ``info`` as the postfix and
    closes it when ``done == total``.

    Args:
        desc: the bar's label.
        enabled: False gives a callback that draws nothing.
        unit: the unit of ``done``.
    """

    def __init__(self, desc: str, *, enabled: bool = True, unit: str = "batch") -> None:
        self.desc, self.enabled, self.unit = desc, enabled, unit
        self._bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int, info: dict[str, Any] | None = None) -> None:
        if self._bar is None:
            self._bar = progress_bar(total=total, enabled=self.enabled, desc=self.desc,
                                     unit=self.unit)
        self._bar.update(done - self.done)
        self.done = done
        if info:
            self._bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v
                                   for k, v in info.items()}, refresh=False)
        if done >= total:
            self._bar.close()
