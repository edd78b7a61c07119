"""Phone labels by PocketSphinx [huggins2006pocketsphinx] forced alignment of known text.

The paper used TIMIT's hand labels ([vali2023sfvq] §4, [garofolo1993timit]); offline we align
the Asterisk English prompts (text in Debian ``asterisk-core-sounds-en``) and the LibriVox clips of
``pocketsphinx-testdata`` (their ``transcription`` file) with the en-us acoustic model and
dictionary that the ``pocketsphinx`` wheel ships (``pip install 'vqkit[latent]'``).
PocketSphinx works in 10 ms frames, the hop of our log-mel front end, so a segment's
``start``/``end`` are log-mel frame indices. Alignments are cached per file.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data._errors import MissingDataError, require_module
from ...data.speech import CORPORA, Utterance, load_wav
from ...io.torch_file import atomic_torch_save, read_torch_file

log = logging.getLogger(__name__)

#: The phone groups of [vali2023sfvq] §4 (TIMIT labels) restricted to the 39 CMU/ARPAbet
#: phones PocketSphinx emits; TIMIT-only labels (ix, ax, em, ...) have no CMU counterpart.
PHONE_GROUPS: dict[str, tuple[str, ...]] = {
    "plosives": ("P", "B", "T", "D", "K", "G", "JH", "CH"),
    "fricatives": ("F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH"),
    "nasals": ("M", "N", "NG"),
    "vowels": ("IY", "IH", "EH", "AE", "AA", "AO", "AH", "UH", "UW"),
    "diphthongs": ("EY", "AW", "AY", "OY", "OW"),
    "approximants": ("L", "R", "ER", "W", "Y"),
    "silence": ("SIL",),
}
GROUP_OF = {p: g for g, phones in PHONE_GROUPS.items() for p in phones}
CONSONANTS = ("plosives", "fricatives", "nasals")
VOWELS = ("vowels", "diphthongs")

ASTERISK_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
LIBRIVOX = CORPORA["librivox"].root
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def phone_group(phone: str) -> str | None:
    """Group of a PocketSphinx phone (stress digits ignored); None for noise phones.

    Example:
        >>> phone_group("AH0"), phone_group("SIL"), phone_group("+NSN+")
        ('vowels', 'silence', None)
    """
    return GROUP_OF.get(re.sub(r"\d", "", phone.upper()))


@dataclass(frozen=True)
class Segment:
    """One aligned phone: frames ``[start, end)`` at 100 frames per second."""

    phone: str
    start: int
    end: int


def frame_phones(segments: list[Segment], n_frames: int, stride: int = 1) -> list[str | None]:
    """The phone (stress digits dropped) at 10 ms frames ``0, stride, 2 stride, ...``
    (``n_frames`` of them, in the units of the downsampled sequence); None where no phone
    covers the frame.

    Raises:
        ValueError: ``stride < 1``.

    Example:
        >>> frame_phones([Segment("SIL", 0, 2), Segment("AA1", 2, 5)], 4, stride=2)
        ['SIL', 'AA', 'AA', None]
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    out: list[str | None] = [None] * n_frames
    for seg in segments:
        phone = re.sub(r"\d", "", seg.phone.upper())
        first = -(-seg.start // stride)
        for t in range(first, min(n_frames, -(-seg.end // stride))):
            out[t] = phone
    return out


def frame_labels(segments: list[Segment], n_frames: int, stride: int = 1) -> list[str | None]:
    """The phone group at each frame of :func:`frame_phones`; None for no phone or noise.

    Raises:
        ValueError: ``stride < 1``.

    Example:
        >>> frame_labels([Segment("SIL", 0, 2), Segment("AA", 2, 5)], 4, stride=2)
        ['silence', 'vowels', 'vowels', None]
    """
    return [None if p is None else phone_group(p) for p in frame_phones(segments, n_frames, stride)]


def normalise_text(text: str, vocabulary: set[str]) -> str | None:
    """Lower-case words for the aligner: digits spelled out, punctuation dropped; None when
    the text is empty, bracketed (a tone description) or holds a word outside ``vocabulary``.

    Example:
        >>> normalise_text("Press 1, then #.", {"press", "one", "then"}) is None
        True
        >>> normalise_text("Press 1, then...", {"press", "one", "then"})
        'press one then'
    """
    if "[" in text or "#" in text or "*" in text:
        return None
    words = []
    for raw in re.split(r"[\s\-/]+", text.lower()):
        raw = raw.strip(".,;:!?\"()'")
        if not raw:
            continue
        if raw.isdigit():
            words.extend(_DIGITS[int(c)] for c in raw)
            continue
        if raw not in vocabulary:
            return None
        words.append(raw)
    return " ".join(words) or None


def known_texts() -> dict[Path, str]:
    """Audio file -> raw text for the Asterisk English prompts and the LibriVox clips.

    Raises:
        vqkit.data.MissingDataError: the Asterisk prompt texts are not installed (the message
            names the Debian package).
    """
    out: dict[Path, str] = {}
    root = CORPORA["asterisk-en"].root
    if not ASTERISK_TEXT.is_file():
        raise MissingDataError(
            f"{ASTERISK_TEXT} not found: install it with `apt-get install asterisk-core-sounds-en`"
        )
    with gzip.open(ASTERISK_TEXT, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            wav = root / f"{name.strip()}.wav"
            if wav.is_file():
                out[wav] = text.strip()
    trans = LIBRIVOX / "transcription"
    if trans.is_file():
        for line in trans.read_text().splitlines():
            m = re.match(r"\s*<s>(.*)</s>\s*\((\S+)\)", line)
            if m and (LIBRIVOX / f"{m.group(2)}.wav").is_file():
                out[LIBRIVOX / f"{m.group(2)}.wav"] = m.group(1).strip()
    return out


class Aligner:
    """PocketSphinx forced aligner (en-us model of the wheel), 16 kHz, phone level.

    Raises:
        ImportError: pocketsphinx is not installed (the message names the ``latent`` extra).

    Example:
        >>> aligner = Aligner()                                   # doctest: +SKIP
        >>> aligner.align(audio, "he was not an ill disposed young man")  # doctest: +SKIP
        [Segment(phone='SIL', start=0, end=8), ...]
    """

    def __init__(self) -> None:
        ps = require_module("pocketsphinx", "pip install 'vqkit[latent]' (pocketsphinx)")
        self._decoder = ps.Decoder(samprate=16000, loglevel="FATAL", lm=None)
        dict_path = Path(ps.get_model_path()) / "en-us" / "cmudict-en-us.dict"
        self.vocabulary = {
            line.split(maxsplit=1)[0] for line in dict_path.read_text().splitlines() if line
        }

    def align(self, audio: np.ndarray, text: str) -> list[Segment]:
        """Phone segments of ``audio`` (16 kHz float in [-1, 1]) reading ``text``; raises
        ValueError when the aligner finds no path.

        Shape:
            ``audio`` ``(T,)`` samples; segments in 10 ms frames.

        Raises:
            ValueError: the aligner fails on ``text`` or finds no segment.
        """
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        d = self._decoder
        try:
            d.set_align_text(text)
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            d.set_alignment()
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            # Read the phones while the alignment object is alive (its iterators borrow it).
            alignment = d.get_alignment()
            segs = [Segment(p.name, p.start, p.start + p.duration) for w in alignment for p in w]
        except RuntimeError as err:
            raise ValueError(f"alignment of {text!r} failed: {err}") from err
        if not segs:
            raise ValueError(f"alignment of {text!r} produced no segments")
        return segs


def _cache_path() -> Path:
    root = Path(os.environ.get("VQKIT_CACHE", Path.home() / ".cache" / "vqkit"))
    return root / "pocketsphinx-alignments.pt"


def aligned_utterances(
    limit: int | None = None, *, cache: str | Path | None = None
) -> list[tuple[Utterance, list[Segment]]]:
    """Forced alignments of every English utterance with known text (sorted by path; the
    first ``limit`` aligned ones when given). Files the aligner rejects are skipped (logged).
    Results are cached in ``$VQKIT_CACHE/pocketsphinx-alignments.pt``.

    Raises:
        vqkit.data.MissingDataError: the prompt texts are not installed (see :func:`known_texts`).
        ImportError: pocketsphinx or soundfile is needed (an utterance not in the cache) and
            not installed.
        ValueError: the cache file, or an audio file to align, is not readable.
    """
    cache_path = Path(cache) if cache is not None else _cache_path()
    stored: dict[str, list[tuple[str, int, int]] | None] = {}
    if cache_path.is_file():
        stored = read_torch_file(cache_path, "alignment cache")
    texts = known_texts()
    aligner: Aligner | None = None
    out: list[tuple[Utterance, list[Segment]]] = []
    changed = False
    for path in sorted(texts):
        if limit is not None and len(out) >= limit:
            break
        key = str(path)
        if key not in stored:
            aligner = aligner or Aligner()
            words = normalise_text(texts[path], aligner.vocabulary)
            segs = None
            if words is not None:
                audio, _ = load_wav(path, 16000)
                try:
                    segs = [(s.phone, s.start, s.end) for s in aligner.align(audio, words)]
                except ValueError as err:
                    log.info("skipping %s: %s", path.name, err)
            stored[key] = segs
            changed = True
        if stored[key] is not None:
            corpus = "librivox" if path.parent == LIBRIVOX else "asterisk-en"
            utt = Utterance(path, CORPORA[corpus].speaker_of(path), corpus)
            out.append((utt, [Segment(*s) for s in stored[key]]))
    if changed:
        atomic_torch_save(stored, cache_path)
    return out
