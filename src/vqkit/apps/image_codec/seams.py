"""How visible a block grid is in a decoded image: the step across grid lines against the
step elsewhere.

A codec that works on independent ``P x P`` tiles leaves an edge at every tile border: the
difference between neighbouring pixels across the border is larger than between neighbours
inside a tile. :func:`grid_step_ratio` measures it: the mean absolute difference of
horizontally and vertically adjacent pixels that straddle a line at a multiple of ``period``,
over the mean absolute difference of all other adjacent pairs. A seamless image has a ratio
near 1 (the lines are no different from anywhere else); the tile codec's decoded photos
measured 3.2.
"""

from __future__ import annotations

import numpy as np


def grid_step_ratio(image: np.ndarray, period: int = 32) -> float:
    """Mean |step| across the lines at multiples of ``period`` over the mean |step| elsewhere.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array (any real dtype).
        period: grid spacing in pixels (the tile side of a tiled codec).

    Returns:
        The ratio (NaN where the image has no step elsewhere, e.g. a flat image).

    Raises:
        ValueError: ``period < 2`` or the image does not span at least one grid line in
            each direction (``H`` and ``W`` must exceed ``period``).

    Example:
        >>> img = np.zeros((64, 64))
        >>> img[:, 32:] = 1.0                 # an edge exactly on the grid line
        >>> img += np.indices((64, 64))[1] * 0.01
        >>> round(grid_step_ratio(img), 1)
        101.0
    """
    if not isinstance(period, int) or period < 2:
        raise ValueError(f"period must be an int >= 2, got {period!r}")
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[0] <= period or x.shape[1] <= period:
        raise ValueError(f"image must be (H, W[, C]) with H, W > {period}, got {x.shape}")
    across, other = [], []
    for axis in (0, 1):
        steps = np.abs(np.diff(x, axis=axis))  # step k is between pixels k and k + 1
        on_line = (np.arange(steps.shape[axis]) + 1) % period == 0
        across.append(np.compress(on_line, steps, axis=axis).ravel())
        other.append(np.compress(~on_line, steps, axis=axis).ravel())
    elsewhere = np.concatenate(other).mean()
    return float(np.concatenate(across).mean() / elsewhere) if elsewhere > 0 else float("nan")
