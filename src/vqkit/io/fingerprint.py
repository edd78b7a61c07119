"""The model fingerprint: one SHA-256 over a model's description and its state tensors.

A file written with a model records the model's fingerprint, so it is never read back with
another one. Every kind of file hashes the same way -- the JSON of a description (``head``),
then each state tensor's raw bytes -- and differs only in how a tensor is introduced, a
:class:`TensorHashing` strategy that each file kind fixed when it first shipped (changing it
would orphan every file already written):

- :data:`TYPED` (quantizers, ``.vqc`` codes files): ``"{name}|{dtype}|{shape}|"`` then the bytes,
  names sorted;
- :data:`NAMED` (image-codec models, ``.vqi``): the name then the bytes, names sorted;
- :data:`BARE_FLOAT32` (speech-codec models, ``.vqs``): only the bytes of each tensor cast to
  float32, in ``state_dict`` order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..quantizers.base import Quantizer


@dataclass(frozen=True)
class TensorHashing:
    """How each state tensor enters the fingerprint.

    Attributes:
        label: the bytes hashed before a tensor, from its name and the tensor.
        sort_names: hash the tensors in sorted name order (else in the mapping's order).
        cast: the dtype tensors are converted to before hashing (None: as stored).
    """

    label: Callable[[str, Tensor], bytes]
    sort_names: bool = True
    cast: torch.dtype | None = None


def _typed_label(name: str, tensor: Tensor) -> bytes:
    return f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode()


def _name_label(name: str, tensor: Tensor) -> bytes:
    return name.encode()


def _no_label(name: str, tensor: Tensor) -> bytes:
    return b""


TYPED = TensorHashing(_typed_label)
NAMED = TensorHashing(_name_label)
BARE_FLOAT32 = TensorHashing(_no_label, sort_names=False, cast=torch.float32)


def tensor_bytes(tensor: Tensor) -> bytes:
    """The raw bytes of ``tensor`` in C order, on the CPU (any dtype, any layout)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def fingerprint(
    state: Mapping[str, Tensor], *, head: Any = None, hashing: TensorHashing = TYPED
) -> bytes:
    """The 32-byte SHA-256 fingerprint of a model: ``head`` then every tensor of ``state``.

    Args:
        state: the model's ``state_dict()`` (tensors of any shape and dtype).
        head: a JSON-able description (config, type name), hashed first as JSON with sorted
            keys (values JSON cannot hold are written with ``str``); None hashes nothing.
        hashing: how each tensor is introduced (:data:`TYPED`, :data:`NAMED`,
            :data:`BARE_FLOAT32`).

    Returns:
        the SHA-256 digest (32 bytes); file kinds store all of it or a prefix.

    Raises:
        TypeError: a value of ``state`` is not a tensor.

    Example:
        >>> a = fingerprint({"w": torch.zeros(2)}, head={"k": 1})
        >>> a == fingerprint({"w": torch.zeros(2)}, head={"k": 2}), len(a)
        (False, 32)
    """
    h = hashlib.sha256()
    if head is not None:
        h.update(json.dumps(head, sort_keys=True, default=str).encode())
    names = sorted(state) if hashing.sort_names else list(state)
    for name in names:
        tensor = state[name]
        if not isinstance(tensor, Tensor):
            raise TypeError(f"state entry {name!r} must be a tensor, got {type(tensor).__name__}")
        if hashing.cast is not None:
            tensor = tensor.to(hashing.cast)
        h.update(hashing.label(name, tensor))
        h.update(tensor_bytes(tensor))
    return h.digest()


def quantizer_digest(quantizer: Quantizer) -> str:
    """``"sha256:<hex>"``: the :data:`TYPED` fingerprint of a quantizer's type, config and state.

    Codes files record it, so a codes file is never decoded with another quantizer.

    Raises:
        TypeError: the quantizer's state holds a value that is not a tensor.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(4, 8)
        >>> before = quantizer_digest(vq)
        >>> before == quantizer_digest(vq.eval())   # the mode is not part of it
        True
        >>> with torch.no_grad():
        ...     _ = vq.codebook.codewords.add_(1e-6)
        >>> quantizer_digest(vq) == before
        False
    """
    head = {"type": type(quantizer).__name__, "config": quantizer.config()}
    return "sha256:" + fingerprint(quantizer.state_dict(), head=head, hashing=TYPED).hex()
