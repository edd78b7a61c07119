"""Seeding and random-number state for training runs that resume bit-identically.

vqkit's code draws from explicit ``torch.Generator`` objects; the few places that use
torch's global generator (codebook initialisation, like ``nn.Linear``; estimator noise when no
generator is passed) are covered by saving and restoring the global state too. Python's and
NumPy's global generators are not used, so they are not saved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed derived from ``seed`` and ``keys`` (stable across runs and platforms).

    Independent streams (batches per rank, noise, dead-code replacement) get their own seed
    without the correlations of ``seed + rank``.

    Example:
        >>> derive_seed(0, "batches", 1) == derive_seed(0, "batches", 1)
        True
        >>> derive_seed(0, "batches", 0) == derive_seed(0, "batches", 1)
        False
    """
    text = repr((int(seed), *map(str, keys))).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def generator(seed: int, *keys: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`derive_seed` ``(seed, *keys)``.

    Example:
        >>> a, b = generator(3, "x"), generator(3, "x")
        >>> torch.equal(torch.rand(2, generator=a), torch.rand(2, generator=b))
        True
    """
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))


def offset_generator(seed: int, offset: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed + offset``.

    The derivation of the runs whose committed numbers were drawn before :func:`derive_seed`
    (the demo, the NSVQ toys, the image codec, the speech-envelope study): ``seed + offset``
    streams are correlated across seeds, so new code uses :func:`generator`; these keep it so
    that their results stay bit-identical.

    Example:
        >>> offset_generator(3, 1).initial_seed()
        4
    """
    return torch.Generator().manual_seed(int(seed) + int(offset))


def offset_seed_global(seed: int, offset: int = 0) -> None:
    """Seed torch's global CPU (and CUDA) generators with ``seed + offset``: the global
    counterpart of :func:`offset_generator`, for the same runs (layer and codebook
    initialisation drawn before :func:`derive_seed`).

    Example:
        >>> offset_seed_global(3, 1)
        >>> torch.initial_seed()
        4
    """
    torch.manual_seed(int(seed) + int(offset))


def consecutive_seeds(seed: int, count: int) -> list[int]:
    """The seeds of a run repeated ``count`` times: ``seed, seed + 1, ..., seed + count - 1``
    (each repetition then derives its own streams from its seed).

    Raises:
        ValueError: ``count < 1``.

    Example:
        >>> consecutive_seeds(5, 3)
        [5, 6, 7]
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an int >= 1, got {count!r}")
    return list(range(int(seed), int(seed) + count))


def seed_global(seed: int, *keys: object) -> None:
    """Seed torch's global CPU (and CUDA) generators with :func:`derive_seed` ``(seed, *keys)``."""
    torch.manual_seed(derive_seed(seed, *keys))


def rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """The state of torch's global generators and of ``generators``, as tensors.

    Example:
        >>> g = generator(0, "a")
        >>> state = rng_state({"a": g})
        >>> first = torch.rand(3, generator=g)
        >>> set_rng_state(state, {"a": g})
        >>> torch.equal(first, torch.rand(3, generator=g))
        True
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    state["generators"] = {name: g.get_state() for name, g in (generators or {}).items()}
    return state


def set_rng_state(
    state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None
) -> None:
    """Restore what :func:`rng_state` saved; every name in ``generators`` must be present.

    Raises:
        ValueError: ``state`` lacks the saved state of a generator named in ``generators``
            (the generators before it in ``generators`` are already restored then).
    """
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("generators", {})
    for name, g in (generators or {}).items():
        if name not in saved:
            raise ValueError(
                f"the saved random state lacks generator {name!r}; has {sorted(saved)}"
            )
        g.set_state(saved[name])
