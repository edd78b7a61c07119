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
