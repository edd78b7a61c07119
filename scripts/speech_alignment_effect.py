"""STOI of vocoded test clips aligned by the waveform lag against the spectrogram lag.

For each test clip (codec2 and LibriVox, 8 kHz) and each vocoder (the shipped WORLD codec at
4 stages, codec2 at 1200 and 2400 bit/s), prints the two lags and the STOI after each, then
the mean STOI change. Usage: ``PYTHONPATH=src python scripts/speech_alignment_effect.py``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np


def main() -> None:
    warnings.simplefilter("ignore")
    import pystoi

    from vqkit.apps.speech import world
    from vqkit.apps.speech.alignment import align, spectral_lag, waveform_lag
    from vqkit.apps.speech.codec import DEFAULT_MODEL, WorldCodec, decode_frames, encode_frames
    from vqkit.apps.speech.data import SAMPLE_RATE, TEST_CORPORA
    from vqkit.apps.speech.evaluate import codec2_roundtrip
    from vqkit.data.speech import load_wav, utterances

    codec = WorldCodec.load(DEFAULT_MODEL)
    systems = {
        "WORLD codec": lambda a: world.synthesise(
            decode_frames(codec, encode_frames(codec, world.analyse(a, SAMPLE_RATE))),
            SAMPLE_RATE, len(a)),
        "codec2 1200": lambda a: codec2_roundtrip(a, "1200"),
        "codec2 2400": lambda a: codec2_roundtrip(a, "2400"),
    }
    changes: dict[str, list[float]] = {name: [] for name in systems}
    for path in [u.path for name in TEST_CORPORA for u in utterances(name)]:
        audio, _ = load_wav(path, SAMPLE_RATE)
        ref = audio.astype(np.float64)
        for name, run in systems.items():
            decoded = run(audio).astype(np.float64)
            row = {"clip": path.name, "system": name}
            for label, lag in (("waveform", waveform_lag), ("spectral", spectral_lag)):
                row[f"{label}_lag"] = lag(ref, decoded, 400)
                row[f"{label}_stoi"] = round(float(pystoi.stoi(
                    ref, align(ref, decoded, 400, lag=lag), SAMPLE_RATE)), 4)
            changes[name].append(row["spectral_stoi"] - row["waveform_stoi"])
            print(json.dumps(row))
    for name, deltas in changes.items():
        print(json.dumps({"system": name, "mean_stoi_change": round(float(np.mean(deltas)), 4),
                          "max_stoi_change": round(float(np.max(deltas)), 4),
                          "min_stoi_change": round(float(np.min(deltas)), 4)}))


if __name__ == "__main__":
    main()
