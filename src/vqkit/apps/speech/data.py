"""Training and test speech for the envelope codec, framed as MDCT spectra at 8 kHz.

The codec works on **narrowband speech at 8 kHz**: most of the clean training speech
(Asterisk prompts) and the codec2 test clips are recorded at 8 kHz, codec2 itself is
narrowband, and PESQ is then run in its narrowband mode for every system alike. Wideband
material (Fillets-NG, klettres, LibriVox) is resampled down; upsampling the 8 kHz material
would only add empty bands above 4 kHz.

Training speakers (Asterisk en/es/fr/it, Fillets-NG cs/nl, klettres) and test speakers
(codec2-examples, the LibriVox clips of pocketsphinx-testdata) do not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...data.speech import Utterance, load_wav, utterances
from .mdct import MDCT

#: The codec's working sample rate (narrowband).
SAMPLE_RATE = 8000
TRAIN_CORPORA = ("asterisk-en", "asterisk-es", "asterisk-fr", "asterisk-it",
                 "fillets-cs", "fillets-nl", "klettres")
TEST_CORPORA = ("codec2", "librivox")
#: Frames more than this many dB below the loudest frame of their file count as silence.
ACTIVE_RANGE_DB = 50.0


@dataclass
class Frames:
    """MDCT frames of a set of files: ``coefficients (F, N)`` and which file each came from."""

    coefficients: Tensor
    file_index: Tensor
    files: list[str]

    @property
    def energies(self) -> Tensor:
        return self.coefficients.pow(2)


def select_files(
    corpora: tuple[str, ...], per_corpus: int | None, generator: torch.Generator
) -> list[Utterance]:
    """Up to ``per_corpus`` utterances drawn at random (by ``generator``) from each corpus."""
    chosen: list[Utterance] = []
    for name in corpora:
        files = utterances(name)
        if per_corpus is not None and len(files) > per_corpus:
            order = torch.randperm(len(files), generator=generator)[:per_corpus]
            files = [files[i] for i in sorted(order.tolist())]
        chosen.extend(files)
    return chosen


def active_frames(coefficients: Tensor, range_db: float = ACTIVE_RANGE_DB) -> Tensor:
    """Bool mask of frames within ``range_db`` of the loudest frame (and not digital silence).

    Example:
        >>> c = torch.tensor([[1.0, 1.0], [1e-2, 0.0], [0.0, 0.0]])
        >>> active_frames(c, 50.0).tolist()
        [True, True, False]
    """
    energy = coefficients.pow(2).mean(-1)
    if energy.numel() == 0:
        return energy.bool()
    floor = energy.max() * 10 ** (-range_db / 10)
    return (energy >= floor) & (energy > 1e-12)


def frame_files(files: list[Utterance], *, active_only: bool = True) -> Frames:
    """Load each file at 8 kHz and stack the MDCT frames (only active ones by default).

    Raises:
        ValueError: ``files`` is empty, or a file holds no readable audio.
        FileNotFoundError: a file does not exist.
        ImportError: soundfile (or scipy, to resample) is not installed.
    """
    from ...progress import progress_bar

    mdct = MDCT(SAMPLE_RATE)
    coefs, owners, names = [], [], []
    for i, utt in enumerate(progress_bar(files, desc="framing speech", leave=False)):
        audio, _ = load_wav(utt.path, SAMPLE_RATE)
        c = mdct.forward(torch.from_numpy(np.ascontiguousarray(audio)).double()).float()
        if active_only:
            c = c[active_frames(c)]
        coefs.append(c)
        owners.append(torch.full((c.shape[0],), i, dtype=torch.long))
        names.append(str(utt.path))
    if not coefs:
        raise ValueError("files must name at least one audio file, got none")
    return Frames(torch.cat(coefs), torch.cat(owners), names)
