"""Checks of the values a loaded file holds, before they build anything.

A quantizer record (``vqkit.save`` files, checkpoints, codec models) is checked in three steps,
each failing with a one-line ``ValueError`` that names the file, the field and the value:

1. :func:`check_config`: every value of the configuration is a plain value; every float is
   finite (``beta = inf`` is refused); the size fields (:data:`COUNTS`) are ints (not ``"8"``,
   ``8.7`` or ``True``) in their range;
2. :func:`build_checked`: the quantizer is first built on the ``meta`` device (no memory), and
   the file's ``state_dict`` must have exactly its names, shapes and dtypes -- a configuration
   asking for 5e7 codewords is refused before anything is allocated;
3. :func:`check_state` (:func:`check_tensors`, also for optimizer states): every floating
   tensor is finite and every integer one (usage counters, steps, the active corner count) is
   non-negative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

#: Size fields of quantizer and strategy configurations: the smallest value of each.
COUNTS = {"dim": 1, "codebook_size": 1, "num_codebooks": 1, "initial_size": 1, "width": 1,
          "min_depth": 0, "chunk_elements": 1, "bits": 1, "penalty_dim": 1, "levels": 1}
_PLAIN = (str, bool, int, float, type(None))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(key: str, value: Any, where: str) -> None:
    values = value if key == "levels" and isinstance(value, (list, tuple)) else [value]
    least = COUNTS[key]
    if value is not None and not all(_is_int(v) and v >= least for v in values):
        raise ValueError(f"{where}{key} must be an int >= {least}, got {value!r}")


def check_config(config: Any, source: str, where: str = "config.") -> None:
    """Refuse a configuration holding a value of the wrong type or out of range.

    Args:
        config: the configuration (nested dicts and lists of plain values).
        source: the file, for errors.
        where: the path of ``config`` in the record, for errors.

    Raises:
        ValueError: a value that is not plain, a float that is NaN or infinite, or a size
            field (:data:`COUNTS`) that is not an int in its range.

    Example:
        >>> check_config({"dim": 4, "codebook_size": "8"}, "q.pt")
        Traceback (most recent call last):
        ...
        ValueError: q.pt: config.codebook_size must be an int >= 1, got '8'
    """
    if isinstance(config, Mapping):
        for key, value in config.items():
            if key in COUNTS:
                try:
                    _check_count(key, value, where)
                except ValueError as err:
                    raise ValueError(f"{source}: {err}") from None
            check_config(value, source, f"{where}{key}.")
    elif isinstance(config, (list, tuple)):
        for i, value in enumerate(config):
            check_config(value, source, f"{where}{i}.")
    elif not isinstance(config, _PLAIN):
        raise ValueError(f"{source}: {where.rstrip('.')} is a {type(config).__name__}, not a "
                         "plain value")
    elif isinstance(config, float) and not math.isfinite(config):
        raise ValueError(f"{source}: {where.rstrip('.')} must be finite, got {config}")


def check_tensors(value: Any, source: str, where: str = "state") -> None:
    """Refuse non-finite floats and negative integers in the tensors of ``value`` (nested
    dicts and lists: a ``state_dict``, an optimizer's state).

    Raises:
        ValueError: a floating tensor holds NaN or Inf, or an integer tensor (a counter, a
            step) holds a negative value; the message names the entry.
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_tensors(item, source, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_tensors(item, source, f"{where}.{i}")
    elif isinstance(value, Tensor) and value.numel():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{source}: {where} holds NaN or infinite values")
        if not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool) \
                and int(value.min()) < 0:
            raise ValueError(f"{source}: {where} holds a negative count ({int(value.min())})")


def check_state(state: Any, source: str) -> None:
    """Refuse a ``state_dict`` that is not a dict of tensors, or holds non-finite floats or
    negative counters (:func:`check_tensors`).

    Raises:
        ValueError: as said, naming the entry.
    """
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{source}: state_dict must map names to tensors")
    check_tensors(state, source, "state_dict")


def _layout(state: Mapping[str, Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


def build_checked(build: Callable[[], torch.nn.Module], state: Mapping[str, Tensor],
                  source: str) -> torch.nn.Module:
    """``build()``, after a build on the ``meta`` device showed ``state`` fits it exactly.

    Args:
        build: makes the module from the configuration (raises ValueError/TypeError on bad
            arguments).
        state: the ``state_dict`` the file holds.
        source: the file, for errors.

    Raises:
        ValueError: the configuration is refused by the constructor, or ``state`` has other
            names, shapes or dtypes than the module it describes.
    """
    try:
        with torch.device("meta"):
            expected = _layout(build().state_dict())
    except (ValueError, TypeError) as err:
        raise ValueError(f"{source}: {err}") from err
    except (NotImplementedError, RuntimeError):  # an op without a meta kernel: build for real
        expected = None
    if expected is not None:
        found = _layout(state)
        if found != expected:
            name = sorted(set(found) ^ set(expected)) or [
                k for k in expected if found[k] != expected[k]]
            key = name[0]
            raise ValueError(
                f"{source}: state_dict does not match its config: {key} is "
                f"{found.get(key, 'missing')}, the config needs {expected.get(key, 'nothing')}")
    try:
        return build()
    except (ValueError, TypeError) as err:
        raise ValueError(f"{source}: {err}") from err
