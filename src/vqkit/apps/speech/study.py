"""The measurements of the speech-envelope reproduction, one function per table.

- :func:`rate_distortion`: log-spectral distortion and excess spectral bits of the MDCT
  band envelope against bits per frame, for each quantizer x estimator;
- :func:`mdct_resynthesis`: PESQ / STOI / pSNR when only the envelope is quantized;
- :func:`world_codec_quality` and :func:`reference_codecs`: complete codecs on the test clips.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ...data.speech import load_wav
from ...estimators import Estimator
from ...functional.metrics import index_histogram
from ...quantizers.base import Quantizer
from ...quantizers.build import build_estimator
from ...quantizers.build import build_quantizer as build_registered
from ...training.seed import offset_generator, offset_seed_global
from . import world
from .alignment import LagEstimator, spectral_lag, waveform_lag
from .data import SAMPLE_RATE
from .envelope import BandEnvelope
from .evaluate import codec2_roundtrip, opus_roundtrip, speech_quality
from .mdct import MDCT
from .model import EnvelopeModel, gaussian_bits, log_spectral_distortion
from .quantizers import ScaledError
from .train import TrainConfig, train

logger = logging.getLogger(__name__)
DIM = 16
#: bits per stage of the multi-stage (and additive) quantizers.
STAGE_BITS = 8


def estimator(name: str, seed: int) -> Estimator:
    """The estimator ``name`` of :data:`vqkit.registry.ESTIMATORS` with the study's noise
    seed; ``"none"`` (k-means only, never trained) is ``"ste"``."""
    return build_estimator("ste" if name == "none" else name,
                           generator=offset_generator(seed, 1000))  # the estimator's noise


def build_quantizer(kind: str, est: str, bits: int, seed: int) -> Quantizer:
    """The envelope quantizer ``kind`` at ``bits`` per frame.

    ``kind`` is a quantizer name of :data:`vqkit.registry.QUANTIZERS` (``"kmeans-rvq"`` is
    ``"rvq"``, left untrained by :func:`rate_distortion`): product VQ has 4 codebooks, the
    other multi-codebook quantizers ``bits / 8`` stages of 8 bits, the scalar quantizer
    ``bits / 16`` bits per parameter.
    """
    name = "rvq" if kind == "kmeans-rvq" else kind
    size, stages = 2**STAGE_BITS, bits // STAGE_BITS
    options: dict = {}
    if name == "scalar":  # no codebook: bits per parameter
        size, stages, options = None, None, {"bits": bits // DIM}
    elif name == "soft-rvq":  # trained by soft VQ, not through an estimator
        options = {"beta": 0.1, "generator": offset_generator(seed, 0)}  # soft VQ's noise
    else:
        if name == "pvq":
            size, stages = 2 ** (bits // 4), 4
        options = {"estimator": estimator(est, seed)}
    return build_registered(name, DIM, size, stages, **options)


def index_entropy(indices: Tensor, levels: int) -> float:
    """Sum over index positions of the empirical entropy (bits) of each position."""
    flat = indices.reshape(-1, indices.shape[-1]) if indices.dim() > 1 else indices[:, None]
    total = 0.0
    for col in flat.T:
        p = index_histogram(col, levels).double()
        p = p[p > 0] / p.sum()
        total += float(-(p * p.log2()).sum())
    return total


@torch.no_grad()
def score(model: EnvelopeModel, test: Tensor) -> dict:
    """Test LSD (dB), outlier rates and excess spectral bits per frame of a trained model."""
    reference = BandEnvelope(model.envelope.num_bins, DIM)
    ref_bits = gaussian_bits(test, reference.envelope(reference.log_bands(test.pow(2))))
    log_bands = model.envelope.log_bands(test.pow(2))
    indices = model.encode(test)
    quantized = model.decode(indices)
    lsd = log_spectral_distortion(log_bands, quantized)
    bits = gaussian_bits(test, model.envelope.envelope(quantized))
    return {
        "lsd_db": float(lsd.mean()),
        "lsd_median_db": float(lsd.median()),
        "outliers_2_4db": float(((lsd > 2) & (lsd <= 4)).double().mean()),
        "outliers_over_4db": float((lsd > 4).double().mean()),
        "excess_bits_per_frame": float((bits - ref_bits).mean()),
    }


def rate_distortion(
    systems: list[tuple[str, str, int]], train_frames: Tensor, test_frames: Tensor,
    config: TrainConfig, *, seed: int, trainable_envelope: bool = False,
    progress: Callable[[str], None] = logger.info,
) -> list[dict]:
    """Train and score each ``(kind, estimator, bits)``."""
    rows = []
    for kind, est, bits in systems:
        # "-uniform": U(-1/K, 1/K) codebooks with dead-code replacement ([vali2023rpavqcode])
        # instead of k-means initialisation.
        base, kmeans_init = kind.removesuffix("-uniform"), not kind.endswith("-uniform")
        quantizer = build_quantizer(base, est, bits, seed)
        offset_seed_global(seed, 0)  # whatever draws from the global RNG
        model = EnvelopeModel(quantizer)
        model.envelope.requires_grad_(trainable_envelope)
        steps = 0 if kind == "kmeans-rvq" else config.steps
        cfg = TrainConfig(steps, config.batch_size, config.lr, config.replace_every, kmeans_init)
        log = train(model, train_frames, cfg, generator=offset_generator(seed, 0))  # batches
        row = {"kind": kind, "estimator": est, "bits": bits, "seed": seed,
               "trainable_envelope": trainable_envelope, **score(model, test_frames),
               "train_bits_curve": log.bits}
        if kind == "scalar":
            row["entropy_bits"] = index_entropy(model.encode(test_frames), 2 ** (bits // DIM))
        rows.append(row)
        progress(f"{kind}/{est}/{bits} bits: LSD {row['lsd_db']:.3f} dB")
    return rows


def bitrate_penalty(
    bits_list: list[int], train_frames: Tensor, config: TrainConfig, *, seed: int
) -> list[dict]:
    """[vali2021msvq] §5, Fig. 5: train RVQ inside the scaled-error quantizer; report
    ``Delta B = -16 log2 gamma``."""
    rows = []
    for bits in bits_list:
        inner = build_quantizer("rvq", "nsvq", bits, seed)
        model = EnvelopeModel(ScaledError(inner, penalty_dim=DIM))
        train(model, train_frames, config, generator=offset_generator(seed, 0))
        penalty = float(model.quantizer.bitrate_penalty().detach())
        rows.append({"bits": bits, "gamma": float(model.quantizer.gamma.detach()),
                     "penalty_bits": penalty, "suggested_bits": bits + penalty})
    return rows


def _clip_quality(files: list[str], decode: Callable[[np.ndarray], np.ndarray],
                  lag: LagEstimator) -> dict:
    scores = []
    for path in files:
        audio, _ = load_wav(path, SAMPLE_RATE)
        scores.append(speech_quality(audio, decode(audio), lag=lag))
    return {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}


@torch.no_grad()
def mdct_resynthesis(model: EnvelopeModel, files: list[str]) -> dict:
    """Quality when the MDCT envelope is quantized and the fine structure is kept exactly."""
    mdct = MDCT(SAMPLE_RATE)

    def decode(audio: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(audio).double()
        c = mdct.forward(x).float()
        log_bands = model.envelope.log_bands(c.pow(2))
        quantized = model.decode(model.encode(c))
        gain = (model.envelope.envelope(quantized) / model.envelope.envelope(log_bands)).sqrt()
        return mdct.inverse((c * gain).double(), len(audio)).float().numpy()

    return _clip_quality(files, decode, waveform_lag)  # the fine structure is the input's


def world_codec_quality(codec, files: list[str], stages: int | None) -> dict:
    """Quality of the WORLD codec using the first ``stages`` RVQ stages (None: unquantized)."""
    from .codec import decode_frames, encode_frames

    def decode(audio: np.ndarray) -> np.ndarray:
        frames = world.analyse(audio, SAMPLE_RATE)
        if stages is None:
            return world.synthesise(world.quantize_side(frames), SAMPLE_RATE, len(audio))
        payload = encode_frames(codec, frames, stages)
        return world.synthesise(decode_frames(codec, payload), SAMPLE_RATE, len(audio))

    return _clip_quality(files, decode, spectral_lag)  # a vocoder: the phase is not kept


def reference_codecs(files: list[str], codec2_modes: list[str], opus_kbps: list[int]) -> list:
    rows = []
    for mode in codec2_modes:
        kbps = 0.7 if mode == "700C" else int(mode) / 1000
        rows.append({"system": f"codec2 {mode}", "kbps": kbps,
                     **_clip_quality(files, lambda a, m=mode: codec2_roundtrip(a, m),
                                     spectral_lag)})  # a sinusoidal vocoder
    for kbps in opus_kbps:
        rows.append({"system": f"Opus {kbps} kbit/s", "kbps": float(kbps),
                     **_clip_quality(files, lambda a, k=kbps: opus_roundtrip(a, k),
                                     waveform_lag)})  # waveform-matching (SILK, CELT)
    return rows


def one_db_point(rows: list[dict], kind: str, est: str) -> float | None:
    """Bits per frame where the LSD curve of ``kind/est`` crosses 1 dB (log-linear), or None."""
    pts = sorted((r["bits"], r["lsd_db"]) for r in rows
                 if r.get("kind") == kind and r.get("estimator") == est and "lsd_db" in r)
    for (b0, d0), (b1, d1) in zip(pts, pts[1:], strict=False):
        if d0 >= 1.0 >= d1:
            t = (math.log(d0) - 0.0) / (math.log(d0) - math.log(d1))
            return b0 + t * (b1 - b0)
    return None
