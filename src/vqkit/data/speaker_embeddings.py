"""256-d speaker embeddings of the offline speech corpora ([wan2018speaker]).

The embeddings come from resemblyzer's GE2E speaker encoder, which ships inside the PyPI wheel
(``pip install resemblyzer 'setuptools<81'``). They are cached per file in one torch file
(default ``~/.cache/vqkit/resemblyzer-embeddings.pt``), so a rerun only embeds new files.
Torch runs with one thread while embedding: with two, a loaded 2-core machine makes the LSTM
50-100x slower (measured: 4-8 s per utterance instead of about 0.04 s).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..io.torch_file import atomic_torch_save, read_torch_file
from ..progress import progress_bar
from ._errors import require_module
from .speech import Utterance, load_wav, utterances

log = logging.getLogger(__name__)

_CACHE_VERSION = 1
_RATE = 16000


def default_cache() -> Path:
    """``$VQKIT_CACHE`` or ``~/.cache/vqkit``, joined with ``resemblyzer-embeddings.pt``."""
    root = Path(os.environ.get("VQKIT_CACHE", Path.home() / ".cache" / "vqkit"))
    return root / "resemblyzer-embeddings.pt"


@dataclass(frozen=True)
class SpeakerEmbeddings:
    """Embeddings with their labels, in the order of the utterances asked for.

    Attributes:
        embeddings: ``(N, 256)`` float32, each L2-normalised.
        speakers: speaker label of each row.
        corpora: corpus name of each row.
        paths: audio file of each row.
        skipped: files that gave no embedding (empty or unreadable audio, or no speech left
            after VAD trimming).
    """

    embeddings: Tensor
    speakers: list[str]
    corpora: list[str]
    paths: list[str]
    skipped: list[str]


def _read_cache(path: Path) -> dict[str, Tensor | None]:
    if not path.is_file():
        return {}
    try:
        record = read_torch_file(path, "embedding cache")
    except ValueError as err:  # a truncated or foreign cache is rebuilt, not trusted
        log.warning("ignoring %s", err)
        return {}
    if not isinstance(record, dict) or record.get("version") != _CACHE_VERSION:
        log.warning("ignoring embedding cache %s of another version", path)
        return {}
    table: dict[str, Tensor | None] = dict(record["embeddings"])
    table.update({p: None for p in record["skipped"]})
    return table


def _write_cache(path: Path, table: dict[str, Tensor | None]) -> None:
    atomic_torch_save(
        {
            "version": _CACHE_VERSION,
            "embeddings": {p: e for p, e in table.items() if e is not None},
            "skipped": [p for p, e in table.items() if e is None],
        },
        path,
    )


def _embed_one(encoder, preprocess, path: Path) -> Tensor | None:
    try:
        wav, _ = load_wav(path, _RATE)
    except ValueError as err:  # an empty or unreadable file of a corpus: skip it, say so
        log.warning("skipping %s: %s", path, err)
        return None
    wav = preprocess(wav, source_sr=_RATE)
    if wav.shape[0] < _RATE // 10:  # under 0.1 s of voiced audio: no reliable embedding
        return None
    return torch.from_numpy(encoder.embed_utterance(wav)).float()


def speaker_embeddings(
    items: Sequence[Utterance] | None = None,
    *,
    cache: str | os.PathLike[str] | None = None,
    progress: bool = True,
    save_every: int = 500,
) -> SpeakerEmbeddings:
    """resemblyzer embeddings of ``items`` (default: every installed corpus of
    :func:`vqkit.data.speech.utterances`), read from and added to the cache file.

    Raises:
        ImportError: resemblyzer (or soundfile/scipy) is not installed; the message says how.
        MissingDataError: no corpus is installed (names the Debian packages).

    Example:
        >>> from vqkit.data.speaker_embeddings import default_cache
        >>> default_cache().name
        'resemblyzer-embeddings.pt'
    """
    items = list(utterances() if items is None else items)
    cache_path = default_cache() if cache is None else Path(cache)
    table = _read_cache(cache_path)
    todo = [u for u in items if str(u.path) not in table]
    if todo:
        resemblyzer = require_module("resemblyzer", "pip install resemblyzer 'setuptools<81'")
        # Runs on the caller's torch threads (the command's --threads); not overridden here.
        encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
        bar = progress_bar(todo, enabled=progress, desc="resemblyzer", unit="utt")
        for n, u in enumerate(bar):
            table[str(u.path)] = _embed_one(encoder, resemblyzer.preprocess_wav, u.path)
            if (n + 1) % save_every == 0:
                _write_cache(cache_path, table)
        _write_cache(cache_path, table)
    keep = [u for u in items if table[str(u.path)] is not None]
    skipped = [str(u.path) for u in items if table[str(u.path)] is None]
    if skipped:
        log.info("%d utterances gave no embedding (empty, or too short after VAD)", len(skipped))
    emb = torch.stack([table[str(u.path)] for u in keep]) if keep else torch.empty(0, 256)
    return SpeakerEmbeddings(
        emb, [u.speaker for u in keep], [u.corpus for u in keep], [str(u.path) for u in keep],
        skipped,
    )
