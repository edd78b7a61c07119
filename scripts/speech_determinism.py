"""Does the WORLD speech codec give the same bits whatever ran before in the process?

Cuts 24 three-second clips from the codec's test speech (codec2 and LibriVox clips, 8 kHz),
encodes each with ``encode_file`` at 1, 2, 3 and 4 RVQ stages, all 96 encodes in this one
process, then encodes each (clip, stages) again in a fresh Python process, and counts

- whispered: encodes where some voiced frames exist and every one of them is fully aperiodic
  (all four aperiodicity bands at the top index, 0 dB),
- differ: encodes whose ``.vqs`` bytes differ from the fresh-process encode.

Usage: ``PYTHONPATH=src python scripts/speech_determinism.py [--clips 24] [--no-fresh]``
(about 5 minutes on one core: the fresh processes dominate).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

CLIP_SECONDS = 3
STAGES = (1, 2, 3, 4)
ONE_ENCODE = """
import sys, warnings
warnings.simplefilter("ignore")
from vqkit.apps.speech.codec import DEFAULT_MODEL, WorldCodec, encode_file
encode_file(sys.argv[1], sys.argv[2], WorldCodec.load(DEFAULT_MODEL), stages=int(sys.argv[3]))
"""


def cut_clips(folder: Path, count: int) -> list[Path]:
    import soundfile as sf

    from vqkit.apps.speech.data import SAMPLE_RATE, TEST_CORPORA
    from vqkit.data.speech import load_wav, utterances

    paths, n = [], CLIP_SECONDS * SAMPLE_RATE
    files = [u.path for name in TEST_CORPORA for u in utterances(name)]
    for segment in range(4):  # first segments of every file, then the second ones, ...
        for path in files:
            audio, _ = load_wav(path, SAMPLE_RATE)
            piece = audio[segment * n : (segment + 1) * n]
            if len(paths) < count and len(piece) == n:
                paths.append(folder / f"clip{len(paths):02d}.wav")
                sf.write(paths[-1], piece, SAMPLE_RATE, subtype="FLOAT")
    return paths


def whispered_frames(vqs: Path, codec) -> tuple[int, int]:
    """(voiced frames, voiced frames with every aperiodicity band at 0 dB) of a ``.vqs``."""
    from vqkit.apps.speech import world
    from vqkit.apps.speech.codec import read_vqs

    indices = read_vqs(vqs, codec)[0]
    voiced = indices[:, 0] > 0
    top = 2**world.AP_BITS - 1
    ap = indices[voiced, 1 : 1 + world.AP_BANDS]
    return int(voiced.sum()), int(np.all(ap == top, axis=1).sum())


def whispered(vqs: Path, codec) -> bool:
    voiced, aperiodic = whispered_frames(vqs, codec)
    return 0 < voiced == aperiodic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--no-fresh", action="store_true", help="skip the fresh-process runs")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from vqkit.apps.speech.codec import DEFAULT_MODEL, WorldCodec, encode_file

    codec = WorldCodec.load(DEFAULT_MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = cut_clips(folder, args.clips)
        jobs = [(clip, s) for s in STAGES for clip in clips]
        same = [(folder / f"{c.stem}-{s}.vqs") for c, s in jobs]
        for (clip, stages), target in zip(jobs, same, strict=True):
            encode_file(clip, target, codec, stages=stages)
        report = {"encodes": len(jobs),
                  "whispered_in_process": sum(whispered(t, codec) for t in same),
                  "aperiodic_voiced_frames_in_process":
                      sum(whispered_frames(t, codec)[1] for t in same),
                  "voiced_frames": sum(whispered_frames(t, codec)[0] for t in same)}
        if not args.no_fresh:
            fresh = [t.with_suffix(".fresh") for t in same]
            for (clip, stages), target in zip(jobs, fresh, strict=True):
                subprocess.run([sys.executable, "-c", ONE_ENCODE, str(clip), str(target),
                                str(stages)], check=True)
            report["whispered_fresh"] = sum(whispered(t, codec) for t in fresh)
            report["bytes_differ"] = sum(a.read_bytes() != b.read_bytes()
                                         for a, b in zip(same, fresh, strict=True))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
