"""Save and load quantizers: ``{format_version, type, config, state_dict}``, atomically.

Files are read by :func:`vqkit.io.torch_file.read_torch_file` (``weights_only=True``, zip
CRC-32s verified): only tensors and plain values, never pickled code. The constructor arguments
come from ``config``; they are never inferred from weight shapes. Every record is checked by
:mod:`vqkit.io.validation` before the quantizer is built: config types and ranges, the state's
layout against a build on the ``meta`` device (no allocation), finite state.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..quantizers.base import Quantizer, quantizer_from_config, quantizer_to_config
from .torch_file import atomic_torch_save, read_torch_file
from .validation import build_checked, check_config, check_state

FORMAT_VERSION = 1
#: The ``format`` of a training checkpoint (``vqkit.training.checkpoint``), whose
#: ``quantizer`` entry :func:`load` reads.
CHECKPOINT_FORMAT = "vqkit-checkpoint"
#: Other vqkit files of ``torch.save`` and what loads them, for :func:`load`'s errors.
OTHER_FORMATS = {
    "vqkit-image-codec": "vqkit.apps.image_codec.model.load_checkpoint",
    "vqkit-image-model": "vqkit.apps.image_codec.network.load_image_model",
    "vqkit-speech-world-codec": "vqkit.apps.speech.codec.WorldCodec.load",
}


def quantizer_record(quantizer: Quantizer) -> dict[str, Any]:
    """The saved form of a quantizer (also embedded in training checkpoints).

    Raises:
        TypeError: the quantizer's configuration cannot be saved (a value that is not plain).
    """
    try:
        record = quantizer_to_config(quantizer)
    except TypeError as err:
        raise TypeError(f"cannot save {type(quantizer).__name__}: {err}") from err
    state = {k: v.detach().cpu() for k, v in quantizer.state_dict().items()}
    return {"format_version": FORMAT_VERSION, **record, "state_dict": state}


def quantizer_from_record(record: Any, source: str = "record") -> Quantizer:
    """Rebuild a quantizer from :func:`quantizer_record`'s output, checking every field.

    Raises:
        ValueError: ``record`` misses a field, has another ``format_version``, names an unknown
            type, holds a config value of the wrong type or range, a state that does not match
            the configuration (checked before the quantizer is allocated), or non-finite or
            negative-count state (:mod:`vqkit.io.validation`).
    """
    fields = {"format_version", "type", "config", "state_dict"}
    if not isinstance(record, dict) or not fields <= set(record):
        raise ValueError(f"{source} is not a vqkit quantizer file (missing fields)")
    version = record["format_version"]
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{source} has format_version {version!r}; this vqkit reads version {FORMAT_VERSION}"
        )
    if not isinstance(record["type"], str) or not isinstance(record["config"], dict):
        raise ValueError(f"{source}: type must be a name and config a dict")
    check_config(record["config"], source)
    state = record["state_dict"]
    check_state(state, source)
    quantizer = build_checked(lambda: quantizer_from_config(record), state, source)
    try:
        quantizer.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{source}: state_dict does not match its config: "
                         f"{' '.join(str(err).split())}") from err
    return quantizer


def save(quantizer: Quantizer, path: str | os.PathLike[str]) -> None:
    """Write ``quantizer`` to ``path`` atomically (an interrupted save leaves the old file).

    Raises:
        TypeError: the quantizer's configuration cannot be saved.
        OSError: the file cannot be written (the old file, if any, is left intact).

    Example:
        >>> import tempfile, os, vqkit
        >>> vq = vqkit.VectorQuantizer(dim=4, codebook_size=8)
        >>> p = os.path.join(tempfile.mkdtemp(), "vq.pt")
        >>> vqkit.save(vq, p)
        >>> torch.equal(vqkit.load(p).codewords, vq.codewords)
        True
    """
    atomic_torch_save(quantizer_record(quantizer), path)


def load(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Quantizer:
    """Read a quantizer written by :func:`save`, or the quantizer of a ``vqkit fit`` training
    checkpoint, onto the device ``map_location``.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: the file is truncated, corrupt, foreign, not a quantizer of this version,
            or another vqkit file (the message names the function that loads it).
    """
    record = read_torch_file(path, "vqkit quantizer file", map_location=map_location)
    kind = record.get("format") if isinstance(record, dict) else None
    if kind == CHECKPOINT_FORMAT:
        record = record.get("quantizer")
    elif kind in OTHER_FORMATS:
        raise ValueError(f"{path} is a {kind} file, not a quantizer; load it with "
                         f"{OTHER_FORMATS[kind]}")
    # The quantizer is built on the CPU and load_state_dict copies into it: move it after.
    return quantizer_from_record(record, str(path)).to(torch.device(map_location))
