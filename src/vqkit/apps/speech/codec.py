"""The ``.vqs`` speech file: WORLD vocoder parameters with a VQ-coded spectral envelope.

A ``.vqs`` file is the vqkit container (:class:`vqkit.io.container.ContainerFormat`) declared
as :data:`VQS`: fixed-width header fields and a CRC-32, to stay small. Layout (little-endian; a
27-byte header)::

    magic   b"VQS1"                     4 bytes
    version u8 (= 1)
    rate    u32  sample rate of the decoded audio (8000)
    length  u32  samples of the decoded audio
    frames  u32  20 ms frames
    stages  u8   envelope indices per frame (RVQ stages used)
    ebits   u8   bits per envelope index
    model   8 bytes  SHA-256 prefix of the codec model (decoding with another model is refused):
            :func:`vqkit.io.fingerprint.fingerprint` with ``BARE_FLOAT32`` hashing
    payload frames x (7 f0 bits, 4 x 3 aperiodicity bits, stages x ebits) bits, packed by
            vqkit.functional.bitstream.pack_indices (least significant bit first,
            zero-padded to a byte)
    crc32   u32  of everything before it

Files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...functional.bitstream import pack_indices, unpack_indices
from ...io.atomic import atomic_write
from ...io.container import CRC32, ContainerFormat, FixedHeader
from ...io.fingerprint import BARE_FLOAT32, fingerprint
from ...io.serialization import quantizer_from_record, quantizer_record
from ...io.torch_file import atomic_torch_save, read_torch_file
from ...quantizers.base import Quantizer
from . import world

VQS = ContainerFormat(
    name=".vqs file",
    magic=b"VQS1",
    version_code="B",
    headers={1: FixedHeader(("rate", "I"), ("length", "I"), ("frames", "I"), ("stages", "B"),
                            ("ebits", "B"), ("model", "8s"))},
    digest=CRC32,
    fingerprint=("model",),
    model="codec model",
)
MAGIC = VQS.magic
MODEL_FORMAT = "vqkit-speech-world-codec"
#: The codec model trained by ``vqkit reproduce speech-envelope`` and shipped with vqkit.
DEFAULT_MODEL = Path(__file__).with_name("assets") / "world_rvq.pt"


class WorldCodec(nn.Module):
    """A trained envelope quantizer with the standardisation of WORLD's coded envelope.

    Args:
        quantizer: a multi-codebook quantizer over the 16-dimensional coded envelope.
    """

    def __init__(self, quantizer: Quantizer) -> None:
        super().__init__()
        self.quantizer = quantizer
        self.register_buffer("mean", torch.zeros(quantizer.dim))
        self.register_buffer("scale", torch.ones(()))

    @property
    def stages(self) -> int:
        return int(self.quantizer.index_shape[0]) if self.quantizer.index_shape else 1

    @property
    def index_bits(self) -> int:
        return int(self.quantizer.codebook_size - 1).bit_length()

    def fingerprint(self) -> bytes:
        """8-byte SHA-256 prefix of the state (what ``.vqs`` files are checked against).

        Raises:
            TypeError: the state holds a value that is not a tensor.
        """
        return fingerprint(self.state_dict(), hashing=BARE_FLOAT32)[:8]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the codec model to ``path`` atomically.

        Raises:
            TypeError: the quantizer's configuration cannot be saved.
            OSError: the file cannot be written (the old file, if any, is left intact).
        """
        atomic_torch_save({"format": MODEL_FORMAT, "quantizer": quantizer_record(self.quantizer),
                           "mean": self.mean, "scale": self.scale}, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WorldCodec:
        """Read a codec model written by :meth:`save`, in eval mode.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is unreadable, not a speech codec model, or holds a quantizer
                or standardisation that fails its checks.
        """
        record = read_torch_file(path, "speech codec model",
                                 hint="train one with `vqkit reproduce speech-envelope`")
        if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path} is not a vqkit speech codec model")
        codec = cls(quantizer_from_record(record.get("quantizer"), str(path)))
        for name, own in (("mean", codec.mean), ("scale", codec.scale)):
            value = record.get(name)
            if not isinstance(value, torch.Tensor) or value.shape != own.shape \
                    or not bool(torch.isfinite(value).all()):
                raise ValueError(f"{path} is a corrupt speech codec model ({name} must be a "
                                 f"finite tensor of shape {tuple(own.shape)})")
            own.copy_(value)
        return codec.eval()


def encode_frames(codec: WorldCodec, frames: world.WorldFrames, stages: int | None = None,
                  ) -> np.ndarray:
    """Indices ``(T, 1 + 4 + stages)``: f0, band aperiodicity, envelope stages.

    Raises:
        ValueError: ``stages`` is not in ``[1, codec.stages]``.
    """
    stages = codec.stages if stages is None else stages
    if not 1 <= stages <= codec.stages:
        raise ValueError(f"stages must lie in [1, {codec.stages}], got {stages}")
    z = (torch.from_numpy(frames.coded).float() - codec.mean) / codec.scale
    env = codec.quantizer.encode(z).reshape(len(z), -1)[:, :stages].numpy()
    side = [world.quantize_f0(frames.f0)[:, None], world.quantize_ap(frames.band_ap)]
    return np.concatenate([*side, env], axis=1).astype(np.int64)


@torch.no_grad()
def decode_frames(codec: WorldCodec, indices: np.ndarray) -> world.WorldFrames:
    """Vocoder parameters from :func:`encode_frames` indices (unused stages decode as -1)."""
    env = torch.from_numpy(indices[:, 1 + world.AP_BANDS :]).long()
    full = torch.full((len(env), codec.stages), -1, dtype=torch.long)
    full[:, : env.shape[1]] = env
    coded = codec.quantizer.decode(full) * codec.scale + codec.mean
    return world.WorldFrames(world.dequantize_f0(indices[:, 0]), coded.double().numpy(),
                             world.dequantize_ap(indices[:, 1 : 1 + world.AP_BANDS]))


def _widths(codec: WorldCodec, stages: int) -> list[int]:
    return [world.F0_BITS] + [world.AP_BITS] * world.AP_BANDS + [codec.index_bits] * stages


def _sizes(widths: list[int]) -> list[int]:
    return [1 << w for w in widths]


def pack_bits(values: np.ndarray, widths: list[int]) -> bytes:
    """Fixed-width fields, row by row, with :func:`vqkit.functional.bitstream.pack_indices`.

    Example:
        >>> unpack_bits(pack_bits(np.array([[1, 3], [2, 0]]), [2, 2]), [2, 2], 2).tolist()
        [[1, 3], [2, 0]]
    """
    return pack_indices(torch.from_numpy(np.asarray(values, dtype=np.int64)), _sizes(widths))


def unpack_bits(data: bytes, widths: list[int], rows: int) -> np.ndarray:
    return unpack_indices(data, _sizes(widths), (rows,)).numpy()


def encode_file(source: str | os.PathLike[str], target: str | os.PathLike[str],
                codec: WorldCodec, *, stages: int | None = None) -> dict:
    """Encode an audio file (any rate, mono or stereo) to ``.vqs``; returns size and bitrate.

    The file is written atomically (a failed write leaves the old ``target`` intact).

    Raises:
        FileNotFoundError: no such audio file.
        ValueError: unreadable, non-finite or shorter than 0.1 s audio, or ``stages`` out of
            range.
    """
    from ...data.speech import load_wav

    audio, rate = load_wav(source, world_rate())
    if not np.isfinite(audio).all():
        raise ValueError(f"{source} holds NaN or infinite samples")
    if len(audio) < rate // 10:
        raise ValueError(f"{source} is too short to encode: {len(audio)} samples at {rate} Hz, "
                         "need at least 0.1 s")
    stages = codec.stages if stages is None else stages
    indices = encode_frames(codec, world.analyse(audio, rate), stages)
    header = {"rate": rate, "length": len(audio), "frames": len(indices), "stages": stages,
              "ebits": codec.index_bits, "model": codec.fingerprint()}
    data = VQS.write(target, header, pack_bits(indices, _widths(codec, stages)))
    seconds = len(audio) / rate
    return {"bytes": len(data), "seconds": seconds, "kbps": 8 * len(data) / seconds / 1000}


def world_rate() -> int:
    from .data import SAMPLE_RATE

    return SAMPLE_RATE


def frame_count(length: int, rate: int) -> int:
    """The 20 ms frames WORLD's analysis gives ``length`` samples at ``rate`` Hz.

    Example:
        >>> frame_count(8000, 8000), frame_count(959, 8000), frame_count(960, 8000)
        (51, 6, 7)
    """
    return int(length * 1000 // (rate * world.FRAME_MS)) + 1


def read_vqs(source: str | os.PathLike[str], codec: WorldCodec) -> tuple[np.ndarray, int, int]:
    """Check and parse a ``.vqs`` file: ``(indices, sample_rate, num_samples)``.

    Every header field is checked before anything is allocated: the rate must be the codec's
    (:func:`world_rate`), ``stages`` in ``[1, codec.stages]``, ``ebits`` the codec's, ``frames``
    the count :func:`frame_count` gives for ``length``, and the payload exactly the bytes of
    ``frames`` packed frames (so ``length`` is bounded by the file's size).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a ``.vqs`` file, an unknown version, truncated, a checksum mismatch, a
            header field out of its bounds, or encoded with a different codec model.
    """
    container = VQS.read(source)
    header = container.header
    VQS.check_fingerprint(header, codec.fingerprint(), str(source))
    if header["ebits"] != codec.index_bits or not 1 <= header["stages"] <= codec.stages:
        raise ValueError(f"{source} was encoded with a different codec model "
                         f"({header['stages']} stages of {header['ebits']} bits; this one has "
                         f"1 to {codec.stages} of {codec.index_bits})")
    rate, length, frames = header["rate"], header["length"], header["frames"]
    if rate != world_rate():
        raise ValueError(f"{source} is corrupt: sample rate {rate} Hz, the codec decodes "
                         f"{world_rate()} Hz only")
    if length < 1 or frames != frame_count(length, rate):
        raise ValueError(f"{source} is corrupt: {frames} frames for {length} samples at {rate} "
                         f"Hz (expected {frame_count(max(length, 0), rate)})")
    widths = _widths(codec, header["stages"])
    try:
        indices = unpack_bits(container.payload, widths, header["frames"])
    except ValueError as err:
        raise ValueError(f"{source} is corrupt: {err}") from err
    return indices, rate, length


def decode_file(source: str | os.PathLike[str], target: str | os.PathLike[str],
                codec: WorldCodec) -> dict:
    """Decode a ``.vqs`` file to a 16-bit mono wav (atomically).

    Raises:
        FileNotFoundError: no such file.
        ValueError: as :func:`read_vqs`.
    """
    import io

    import soundfile as sf

    indices, rate, length = read_vqs(source, codec)
    audio = world.synthesise(decode_frames(codec, indices), rate, length)
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1, 1), rate, format="WAV", subtype="PCM_16")
    atomic_write(target, lambda f: f.write(buffer.getvalue()))
    return {"seconds": length / rate, "sample_rate": rate}
