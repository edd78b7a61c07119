"""Training checkpoints: the quantizer plus everything a run needs to continue bit-identically.

A checkpoint is one ``torch.save`` file, written atomically (temporary file, then rename), read
by :func:`vqkit.io.torch_file.read_torch_file` (``weights_only=True``). Its fields:

- ``format`` = ``"vqkit-checkpoint"`` and ``version``;
- ``quantizer``: :func:`vqkit.io.serialization.quantizer_record` (``{format_version, type, config,
  state_dict}``), so ``vqkit encode/decode/eval`` read the quantizer from it directly; None for
  a run whose model holds no quantizer;
- ``model``: the ``state_dict`` of the whole trained model when it is more than the quantizer
  (an autoencoder around it), else None (files written before this field read as None);
- ``step``: optimizer steps taken; ``optimizer``: the optimizer's ``state_dict`` (or None);
- ``rng``: one :func:`vqkit.training.seed.rng_state` per rank;
- ``meters``: :class:`vqkit.training.meters.Meters` state; ``fit``: the training settings;
- ``data``: a fingerprint (shape and SHA-256) of the training vectors, checked on resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.serialization import CHECKPOINT_FORMAT, quantizer_from_record, quantizer_record
from ..io.torch_file import atomic_torch_save, read_torch_file
from ..io.validation import check_config, check_tensors
from ..quantizers import Quantizer

FORMAT = CHECKPOINT_FORMAT
VERSION = 1


@dataclass
class Checkpoint:
    """The contents of a checkpoint file (see the module docstring)."""

    quantizer: Quantizer | None
    step: int = 0
    optimizer: dict[str, Any] | None = None
    rng: list[dict[str, Any]] = field(default_factory=list)
    meters: dict[str, Any] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] | None = None


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike[str]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (an interrupted write keeps the old file).

    Raises:
        TypeError: the quantizer's configuration cannot be saved.
        ValueError: the checkpoint holds neither a quantizer nor a model state.
        OSError: the file cannot be written (the old file, if any, is left intact).

    Example:
        >>> import tempfile, os
        >>> from vqkit import VectorQuantizer
        >>> p = os.path.join(tempfile.mkdtemp(), "run.ckpt")
        >>> _ = save_checkpoint(Checkpoint(VectorQuantizer(4, 8), step=3), p)
        >>> load_checkpoint(p).step
        3
    """
    if checkpoint.quantizer is None and checkpoint.model is None:
        raise ValueError("a checkpoint holds neither a quantizer nor a model state")
    quantizer = checkpoint.quantizer
    record = {
        "format": FORMAT,
        "version": VERSION,
        "quantizer": None if quantizer is None else quantizer_record(quantizer),
        "model": None if checkpoint.model is None else dict(checkpoint.model),
        "step": int(checkpoint.step),
        "optimizer": checkpoint.optimizer,
        "rng": list(checkpoint.rng),
        "meters": dict(checkpoint.meters),
        "fit": dict(checkpoint.fit),
        "data": dict(checkpoint.data),
    }
    atomic_torch_save(record, path)
    return Path(path)


def _from_record(record: dict[str, Any], source: str) -> Checkpoint:
    if record.get("version") != VERSION:
        raise ValueError(
            f"{source} is checkpoint version {record.get('version')!r}; this vqkit reads {VERSION}"
        )
    missing = {"quantizer", "step", "optimizer", "rng", "meters", "fit", "data"} - set(record)
    if missing:
        raise ValueError(f"{source} is not a complete vqkit checkpoint (missing {sorted(missing)})")
    step = record["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"{source}: step must be an int >= 0, got {step!r}")
    kinds = {"optimizer": (dict, type(None)), "rng": list, "meters": dict, "fit": dict,
             "data": dict}
    for key, kind in kinds.items():
        if not isinstance(record[key], kind):
            raise ValueError(f"{source}: {key} must be a {kind}, got "
                             f"{type(record[key]).__name__}")
    model = record.get("model")
    if not isinstance(model, (dict, type(None))):
        raise ValueError(f"{source}: model must be a state dict, got {type(model).__name__}")
    if record["quantizer"] is None and model is None:
        raise ValueError(f"{source} holds neither a quantizer nor a model state")
    check_config(record["fit"], source, "fit.")
    check_tensors(record["optimizer"], source, "optimizer")
    check_tensors(model, source, "model")
    return Checkpoint(
        quantizer=None if record["quantizer"] is None
        else quantizer_from_record(record["quantizer"], source),
        model=model,
        step=int(record["step"]),
        optimizer=record["optimizer"],
        rng=list(record["rng"]),
        meters=dict(record["meters"]),
        fit=dict(record["fit"]),
        data=dict(record["data"]),
    )


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: the file is unreadable (truncated, corrupt: a zip CRC-32 mismatch,
            foreign), not a training checkpoint, of another version, incomplete, or holds a
            value of the wrong type or range (a negative step, non-finite optimizer state).
    """
    path = Path(path)
    record = read_torch_file(path, "vqkit checkpoint")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path} is not a vqkit training checkpoint")
    return _from_record(record, str(path))


def load_quantizer(path: str | os.PathLike[str]) -> tuple[Quantizer, Checkpoint | None]:
    """The quantizer in a training checkpoint or in a file of :func:`vqkit.save`.

    Returns:
        ``(quantizer, checkpoint)``; ``checkpoint`` is None for a plain quantizer file.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: the file is unreadable, or neither a checkpoint nor a quantizer file.
    """
    path = Path(path)
    record = read_torch_file(path, "vqkit checkpoint")
    if isinstance(record, dict) and record.get("format") == FORMAT:
        checkpoint = _from_record(record, str(path))
        return checkpoint.quantizer, checkpoint
    return quantizer_from_record(record, str(path)), None
