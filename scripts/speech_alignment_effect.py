"""STOI of vocoded test clips aligned by the waveform lag against the spectrogram lag.

For each test clip (codec2 and LibriVox, 8 kHz) and each vocoder (the shipped WORLD codec at
4 stages, codec2 at 1200 and 2400 bit/s), measures the two lags and the STOI after each, then
the mean, largest and smallest STOI change per vocoder; writes them with provenance to
``results/speech_alignment_effect.json`` (a clean tree is required unless ``--allow-dirty``)
and prints one line per clip. Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/speech_alignment_effect.py
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

#: The largest lag searched, in samples (50 ms at 8 kHz), as in the speech evaluation.
MAX_LAG = 400


def _summary(name: str, rows: list[dict]) -> dict:
    mine = [r for r in rows if r["system"] == name]
    deltas = [r["spectral_stoi"] - r["waveform_stoi"] for r in mine]
    return {"system": name, "clips": len(mine),
            "mean_waveform_stoi": float(np.mean([r["waveform_stoi"] for r in mine])),
            "mean_spectral_stoi": float(np.mean([r["spectral_stoi"] for r in mine])),
            "mean_stoi_change": float(np.mean(deltas)),
            "max_stoi_change": float(np.max(deltas)), "min_stoi_change": float(np.min(deltas))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/speech_alignment_effect.json"))
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run even if the source tree has uncommitted changes "
                        "(recorded as dirty)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import pystoi
    import torch

    from vqkit.apps.speech import world
    from vqkit.apps.speech.alignment import align, spectral_lag, waveform_lag
    from vqkit.apps.speech.codec import DEFAULT_MODEL, WorldCodec, decode_frames, encode_frames
    from vqkit.apps.speech.data import SAMPLE_RATE, TEST_CORPORA
    from vqkit.apps.speech.evaluate import codec2_roundtrip
    from vqkit.data.speech import load_wav, utterances
    from vqkit.training.provenance import Run, write_json
    from vqkit.training.source_state import DirtyTreeError

    torch.set_num_threads(1)
    try:
        run = Run(command=" ".join(["python", "scripts/speech_alignment_effect.py",
                                    *(argv if argv is not None else sys.argv[1:])]),
                  allow_dirty=args.allow_dirty)
    except DirtyTreeError as err:
        parser.error(str(err))
    codec = WorldCodec.load(DEFAULT_MODEL)
    systems = {
        "WORLD codec": lambda a: world.synthesise(
            decode_frames(codec, encode_frames(codec, world.analyse(a, SAMPLE_RATE))),
            SAMPLE_RATE, len(a)),
        "codec2 1200": lambda a: codec2_roundtrip(a, "1200"),
        "codec2 2400": lambda a: codec2_roundtrip(a, "2400"),
    }
    rows: list[dict] = []
    for path in [u.path for name in TEST_CORPORA for u in utterances(name)]:
        audio, _ = load_wav(path, SAMPLE_RATE)
        ref = audio.astype(np.float64)
        for name, system in systems.items():
            decoded = system(audio).astype(np.float64)
            row = {"clip": path.name, "system": name}
            for label, lag in (("waveform", waveform_lag), ("spectral", spectral_lag)):
                row[f"{label}_lag"] = int(lag(ref, decoded, MAX_LAG))
                row[f"{label}_stoi"] = float(pystoi.stoi(
                    ref, align(ref, decoded, MAX_LAG, lag=lag), SAMPLE_RATE))
            rows.append(row)
            print(json.dumps(row))
    results = {"sample_rate": SAMPLE_RATE, "max_lag_samples": MAX_LAG,
               "test_corpora": list(TEST_CORPORA), "model": Path(DEFAULT_MODEL).name,
               "summary": [_summary(name, rows) for name in systems], "clips": rows}
    for line in results["summary"]:
        print(json.dumps(line))
    print(f"wrote {write_json(args.out, run.record(results))}")


if __name__ == "__main__":
    main()
