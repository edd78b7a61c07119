"""Quality of decoded speech: PESQ, STOI, perceptual SNR; and the codec2 / Opus references.

All comparisons run at the codec's 8 kHz. PESQ is ITU-T P.862 narrowband (PyPI ``pesq``),
STOI is PyPI ``pystoi``. The perceptual SNR weights both the reference and the error by
``W(z) = A(z/0.92) / A(z/0.6)`` with A the order-10 LPC of the reference in each 20 ms frame
(the CELP weighting filter), and is an overall (not segmental) SNR in dB; it is only
meaningful for waveform-matching coders. Decoded signals are aligned to the reference (at most
50 ms) before scoring, by a lag estimator of :mod:`.alignment` that suits the coder.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ...data._errors import require_module
from .alignment import LagEstimator, align, spectral_lag


def _lpc(frame: np.ndarray, order: int) -> np.ndarray:
    """LPC polynomial ``[1, a_1, ..., a_p]`` by the autocorrelation method (Levinson)."""
    w = frame * np.hanning(len(frame))
    r = np.correlate(w, w, "full")[len(w) - 1 : len(w) + order]
    r[0] *= 1 + 1e-9
    r[0] += 1e-12
    a = np.zeros(order + 1)
    a[0] = 1.0
    err = r[0]
    for i in range(1, order + 1):
        k = -(r[i] + a[1:i] @ r[i - 1 : 0 : -1]) / err
        a[1:i] = a[1:i] + k * a[i - 1 : 0 : -1]
        a[i] = k
        err *= 1 - k * k
    return a


def perceptual_snr(reference: np.ndarray, decoded: np.ndarray, sample_rate: int = 8000) -> float:
    """Perceptually weighted SNR in dB (see the module docstring).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal(8000)
        >>> round(perceptual_snr(x, 0.9 * x), 1)
        20.0
    """
    signal = require_module("scipy.signal", "pip install scipy")
    hop = sample_rate // 50
    num = den = 0.0
    for start in range(0, len(reference) - hop + 1, hop):
        ctx = slice(max(0, start - hop), start + hop)
        a = _lpc(reference[ctx], 10)
        g1, g2 = 0.92 ** np.arange(11), 0.6 ** np.arange(11)
        keep = start - ctx.start
        wx = signal.lfilter(a * g1, a * g2, reference[ctx])[keep:]
        we = signal.lfilter(a * g1, a * g2, reference[ctx] - decoded[ctx])[keep:]
        num += float(wx @ wx)
        den += float(we @ we)
    return float(10 * np.log10(num / max(den, 1e-20)))


def speech_quality(reference: np.ndarray, decoded: np.ndarray, sample_rate: int = 8000,
                   lag: LagEstimator = spectral_lag) -> dict:
    """PESQ (narrowband), STOI and perceptual SNR of ``decoded`` aligned by ``lag``.

    ``lag``: :func:`.alignment.spectral_lag` (the default) for vocoders,
    :func:`.alignment.waveform_lag` for waveform-matching coders.

    Raises:
        ImportError: pesq or pystoi is not installed.
    """
    pesq = require_module("pesq", "pip install pesq")
    pystoi = require_module("pystoi", "pip install pystoi")
    ref = reference.astype(np.float64)
    deg = align(ref, decoded.astype(np.float64), lag=lag)
    return {
        "pesq": float(pesq.pesq(sample_rate, ref, deg, "nb")),
        "stoi": float(pystoi.stoi(ref, deg, sample_rate, extended=False)),
        "psnr_db": float(perceptual_snr(ref, deg, sample_rate)),
    }


def _pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).round().astype("<i2").tobytes()


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ImportError(f"{name} is required here: install it with `apt-get install {package}`")
    return path


def codec2_roundtrip(audio: np.ndarray, mode: str) -> np.ndarray:
    """Encode and decode 8 kHz ``audio`` with codec2 (Debian ``codec2``) at ``mode`` bit/s.

    Raises:
        ImportError: ``c2enc`` / ``c2dec`` are not on the PATH (the message names the Debian
            package).
        subprocess.CalledProcessError: codec2 fails (e.g. an unknown ``mode``).
    """
    enc, dec = _tool("c2enc", "codec2"), _tool("c2dec", "codec2")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "in.raw").write_bytes(_pcm16(audio))
        subprocess.run([enc, mode, str(t / "in.raw"), str(t / "c.bit")], check=True,
                       capture_output=True)
        subprocess.run([dec, mode, str(t / "c.bit"), str(t / "out.raw")], check=True,
                       capture_output=True)
        pcm = np.frombuffer((t / "out.raw").read_bytes(), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def opus_roundtrip(audio: np.ndarray, kbps: float) -> np.ndarray:
    """Encode and decode 8 kHz ``audio`` with Opus (Debian ``opus-tools``) at ``kbps``.

    Raises:
        ImportError: ``opusenc`` / ``opusdec`` are not on the PATH (the message names the
            Debian package).
        subprocess.CalledProcessError: an Opus tool fails.
    """
    enc, dec = _tool("opusenc", "opus-tools"), _tool("opusdec", "opus-tools")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "in.raw").write_bytes(_pcm16(audio))
        subprocess.run([enc, "--quiet", "--raw", "--raw-bits", "16", "--raw-rate", "8000",
                        "--raw-chan", "1", "--bitrate", str(kbps), "--hard-cbr",
                        str(t / "in.raw"), str(t / "c.opus")], check=True, capture_output=True)
        subprocess.run([dec, "--quiet", "--rate", "8000",
                        str(t / "c.opus"), str(t / "out.raw")], check=True, capture_output=True)
        pcm = np.frombuffer((t / "out.raw").read_bytes(), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0
