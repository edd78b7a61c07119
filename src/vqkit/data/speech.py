"""Real speech that installs offline from Debian ([debian2023speech]).

Each corpus is a named set of files with a speaker label. :func:`load_wav` reads any of them
as mono float32 at a requested sample rate (down-mixing and resampling as needed).
Missing corpora raise :class:`MissingDataError` naming the Debian package.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from ..io.paths import input_file
from ._errors import MissingDataError, require_module


@dataclass(frozen=True)
class Utterance:
    """One audio file of a corpus, with its speaker label."""

    path: Path
    speaker: str
    corpus: str


@dataclass(frozen=True)
class Corpus:
    """Where a corpus lies, what installs it, and how speakers are named."""

    name: str
    package: str
    root: Path
    pattern: str
    language: str

    def speaker_of(self, path: Path) -> str:
        rel = path.relative_to(self.root)
        if self.name.startswith("fillets"):
            parts = path.stem.split("-")
            return f"fillets-{self.language}-" + (parts[1] if len(parts) > 2 else "other")
        if self.name == "codec2":
            return "codec2-" + _CODEC2_SPEAKERS.get(path.stem, path.stem)
        if self.name == "klettres":
            return f"klettres-{rel.parts[0]}"
        return self.name

    def keep(self, path: Path) -> bool:
        return not (self.name == "codec2" and path.stem in _CODEC2_NOT_ORIGINAL)

    def utterances(self) -> list[Utterance]:
        """The corpus's files (sorted by path), each with its speaker.

        Raises:
            vqkit.data.MissingDataError: the corpus is not installed (the message names the
                Debian package).
        """
        if not self.root.is_dir():
            raise MissingDataError(
                f"speech corpus {self.name!r} not found at {self.root}: install it with "
                f"`apt-get install {self.package}`"
            )
        files = sorted(self.root.glob(self.pattern))
        return [Utterance(p, self.speaker_of(p), self.name) for p in files if self.keep(p)]


#: codec2-examples: clips of one speaker share a label; ``all`` is a concatenation of the
#: others and ``m2400``/``f2400`` are codec2 outputs, not original speech.
_CODEC2_SPEAKERS = {"hts1a": "hts", "hts2a": "hts", "morig": "m", "forig": "f"}
_CODEC2_NOT_ORIGINAL = {"all", "m2400", "f2400"}

_AST = Path("/usr/share/asterisk/sounds")
_WAV = "**/*.wav"
CORPORA: dict[str, Corpus] = {c.name: c for c in (
    Corpus("asterisk-en", "asterisk-core-sounds-en-wav", _AST / "en_US_f_Allison", _WAV, "en"),
    Corpus("asterisk-es", "asterisk-core-sounds-es-wav", _AST / "es_MX_f_Allison", _WAV, "es"),
    Corpus("asterisk-fr", "asterisk-core-sounds-fr-wav", _AST / "fr_CA_f_June", _WAV, "fr"),
    Corpus("asterisk-it", "asterisk-prompt-it-menardi-wav", _AST / "it_IT_f_Menardi", _WAV, "it"),
    Corpus("codec2", "codec2-examples", Path("/usr/share/codec2/wav"), "*.wav", "en"),
    Corpus("librivox", "pocketsphinx-testdata",
           Path("/usr/share/pocketsphinx/test/data/librivox"), "*.wav", "en"),
    Corpus("fillets-cs", "fillets-ng-data-cs", Path("/usr/share/games/fillets-ng/sound"),
           "*/cs/*.ogg", "cs"),
    Corpus("fillets-nl", "fillets-ng-data-nl", Path("/usr/share/games/fillets-ng/sound"),
           "*/nl/*.ogg", "nl"),
    Corpus("klettres", "klettres-data", Path("/usr/share/klettres"), "*/*/*.ogg", "multi"),
)}


def utterances(*names: str) -> list[Utterance]:
    """Utterances of the named corpora (all of :data:`CORPORA` when none is named).

    Raises:
        ValueError: a name is not in :data:`CORPORA`.
        vqkit.data.MissingDataError: a named corpus is not installed, or (none named) no
            corpus is.
    """
    unknown = [n for n in names if n not in CORPORA]
    if unknown:
        raise ValueError(f"unknown corpora {unknown}; known: {sorted(CORPORA)}")
    out: list[Utterance] = []
    for name in names or tuple(CORPORA):
        out.extend(CORPORA[name].utterances())
    if names == () and not out:
        raise MissingDataError("no speech corpus is installed; see docs/references.md, Data")
    return out


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling of a 1-D signal from ``rate`` to ``target`` Hz (scipy).

    Raises:
        ImportError: scipy is needed (``rate != target``) and not installed.
    """
    if rate == target:
        return audio.astype(np.float32)
    signal = require_module("scipy.signal", "pip install scipy")
    g = gcd(int(rate), int(target))
    return signal.resample_poly(audio, target // g, rate // g).astype(np.float32)


def load_wav(path: str | Path, sample_rate: int | None = 16000) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32 in [-1, 1], resampled to ``sample_rate``.

    Stereo is averaged to mono. Empty files and files that are not audio raise ValueError.

    Returns:
        ``(samples, rate)``: float32 ``(N,)`` and the rate in Hz.

    Raises:
        ImportError: soundfile (or scipy, to resample) is not installed.
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file is not readable audio or holds no samples, or ``path`` is a
            FIFO, a device or a symbolic-link loop.
    """
    sf = require_module("soundfile", "pip install soundfile")
    path = input_file(path, "audio file")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise ValueError(f"{path} is not a readable audio file: {err}") from err
    if audio.shape[0] == 0:
        raise ValueError(f"{path} holds no audio samples")
    mono = audio.mean(axis=1)
    if sample_rate is None:
        return mono, int(rate)
    return resample(mono, int(rate), int(sample_rate)), int(sample_rate)
