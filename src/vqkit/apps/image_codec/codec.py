"""The ``.vqi`` file format: a learned-codec image file, for any image size.

The image is padded (edge replication) to whole tiles, every tile is encoded by the model
into ``grid x grid`` latent vectors of ``num_codebooks`` indices of ``bits_per_codebook`` bits,
and the indices are bit-packed. Layout (little-endian)::

    offset size  field
    0      4     magic b"VQI\\x01"
    4      1     format version (1)
    5      4     image height            9   4  image width
    13     1     channels                14  2  tile side
    16     2     latent grid side        18  1  num_codebooks
    19     1     bits per codebook       20  8  model fingerprint (SHA-256 prefix)
    28     4     payload length in bytes
    32     n     payload: packed indices, tile-major (row-major tiles), then latent row,
                 latent column, codebook
    32+n   4     CRC-32 of bytes [0, 32+n)

The file is ``36 + ceil(tiles * grid^2 * num_codebooks * bits / 8)`` bytes. Decoding checks
the magic, version, length, checksum and that the model's fingerprint matches, and raises
``ValueError`` naming what is wrong. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vqkit.atomic import atomic_write
from vqkit.functional.bitstream import pack_indices, unpack_indices

from .model import ImageCodecModel

MAGIC = b"VQI\x01"
VERSION = 1
_HEADER = struct.Struct("<4sBIIBHHBB8sI")
HEADER_BYTES = _HEADER.size  # 32
TRAILER_BYTES = 4
#: Largest side accepted, to refuse absurd headers before allocating.
MAX_SIDE = 1 << 16


@dataclass(frozen=True)
class VqiHeader:
    """The fixed-size header of a ``.vqi`` file."""

    height: int
    width: int
    channels: int
    tile: int
    grid: int
    num_codebooks: int
    bits_per_codebook: int
    fingerprint: bytes
    payload_bytes: int

    @property
    def tiles(self) -> tuple[int, int]:
        """Tile rows and columns covering the (padded) image."""
        return -(-self.height // self.tile), -(-self.width // self.tile)

    @property
    def num_indices(self) -> int:
        rows, cols = self.tiles
        return rows * cols * self.grid * self.grid * self.num_codebooks


def model_fingerprint(model: ImageCodecModel) -> bytes:
    """8-byte SHA-256 prefix of the model's config and weights: a file names its model."""
    h = hashlib.sha256(json.dumps(model.config.asdict(), sort_keys=True).encode())
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()[:8]


def _check_image(image: np.ndarray, channels: int) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = getattr(image, "dtype", type(image).__name__)
        raise TypeError(f"image must be a uint8 numpy array, got {got}")
    if image.ndim != 3 or image.shape[2] != channels:
        raise ValueError(f"image must have shape (H, W, {channels}), got {image.shape}")
    if not (1 <= image.shape[0] <= MAX_SIDE and 1 <= image.shape[1] <= MAX_SIDE):
        raise ValueError(f"image sides must be in [1, {MAX_SIDE}], got {image.shape[:2]}")


def to_tiles(image: np.ndarray, tile: int) -> Tensor:
    """``(H, W, C)`` uint8 -> ``(N, C, tile, tile)`` float tiles in [0, 1], edge-padded."""
    h, w = image.shape[:2]
    ph, pw = -(-h // tile) * tile, -(-w // tile) * tile
    padded = np.pad(image, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    t = torch.from_numpy(padded).float().div_(255.0).permute(2, 0, 1)
    c = t.shape[0]
    t = t.reshape(c, ph // tile, tile, pw // tile, tile).permute(1, 3, 0, 2, 4)
    return t.reshape(-1, c, tile, tile).contiguous()


def from_tiles(tiles: Tensor, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`to_tiles`: ``(N, C, T, T)`` in [0, 1] -> cropped ``(H, W, C)`` uint8."""
    n, c, t, _ = tiles.shape
    rows, cols = -(-height // t), -(-width // t)
    if n != rows * cols:
        raise ValueError(f"expected {rows * cols} tiles for {height}x{width}, got {n}")
    img = tiles.reshape(rows, cols, c, t, t).permute(0, 3, 1, 4, 2).reshape(rows * t, cols * t, c)
    return (img[:height, :width] * 255.0).round().to(torch.uint8).numpy()


def _encode_tiles(model: ImageCodecModel, tiles: Tensor, batch: int = 256) -> Tensor:
    return torch.cat([model.encode(tiles[i : i + batch]) for i in range(0, len(tiles), batch)])


def _decode_tiles(model: ImageCodecModel, indices: Tensor, batch: int = 256) -> Tensor:
    return torch.cat([model.decode(indices[i : i + batch]) for i in range(0, len(indices), batch)])


def reconstruct(model: ImageCodecModel, image: np.ndarray) -> np.ndarray:
    """The model's in-memory reconstruction of ``image`` (``(H, W, C)`` uint8), which
    :func:`decompress` reproduces exactly from the file."""
    _check_image(image, model.config.channels)
    model.eval()
    tiles = to_tiles(image, model.config.tile)
    return from_tiles(_decode_tiles(model, _encode_tiles(model, tiles)), *image.shape[:2])


def compress(model: ImageCodecModel, image: np.ndarray) -> bytes:
    """Encode ``image`` (``(H, W, C)`` uint8) to ``.vqi`` bytes.

    Example:
        >>> from vqkit.apps.image_codec.config import CodecConfig
        >>> m = ImageCodecModel(CodecConfig(tile=16, hidden=8, latent_dim=4)).eval()
        >>> img = np.zeros((20, 30, 3), np.uint8)
        >>> data = compress(m, img)
        >>> len(data) == 36 + math.ceil(2 * 2 * 16 * 9 / 8)
        True
        >>> np.array_equal(decompress(m, data), reconstruct(m, img))
        True
    """
    cfg = model.config
    _check_image(image, cfg.channels)
    model.eval()
    indices = _encode_tiles(model, to_tiles(image, cfg.tile))
    bits = cfg.quantizer.bits // cfg.quantizer.num_codebooks
    m = cfg.quantizer.num_codebooks
    payload = pack_indices(indices.reshape(-1, m), [cfg.quantizer.codebook_size] * m)
    header = _HEADER.pack(
        MAGIC, VERSION, image.shape[0], image.shape[1], cfg.channels, cfg.tile, cfg.grid,
        cfg.quantizer.num_codebooks, bits, model_fingerprint(model), len(payload),
    )
    body = header + payload
    return body + struct.pack("<I", zlib.crc32(body))


def read_header(data: bytes) -> VqiHeader:
    """Parse and check the header and checksum of ``.vqi`` bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER_BYTES + TRAILER_BYTES:
        raise ValueError(f"not a .vqi file or truncated: {len(data)} bytes, a header needs "
                         f"{HEADER_BYTES + TRAILER_BYTES}")
    fields = _HEADER.unpack_from(data)
    if fields[0] != MAGIC:
        raise ValueError(f"not a .vqi file: magic {fields[0]!r}, expected {MAGIC!r}")
    if fields[1] != VERSION:
        raise ValueError(f".vqi format version {fields[1]} is not supported (this reads {VERSION})")
    header = VqiHeader(*fields[2:])
    expected = HEADER_BYTES + header.payload_bytes + TRAILER_BYTES
    if len(data) != expected:
        raise ValueError(
            f".vqi file truncated or padded: {len(data)} bytes, header says {expected}"
        )
    (crc,) = struct.unpack_from("<I", data, len(data) - TRAILER_BYTES)
    if zlib.crc32(data[: len(data) - TRAILER_BYTES]) != crc:
        raise ValueError(".vqi file is corrupt: CRC-32 checksum mismatch")
    bad = [name for name in ("height", "width", "channels", "tile", "grid", "num_codebooks",
                             "bits_per_codebook") if getattr(header, name) < 1]
    if bad or max(header.height, header.width) > MAX_SIDE or header.bits_per_codebook > 16:
        raise ValueError(f".vqi header is invalid: {header}")
    if header.payload_bytes != math.ceil(header.num_indices * header.bits_per_codebook / 8):
        raise ValueError(f".vqi payload is {header.payload_bytes} bytes, the header's image "
                         f"needs {math.ceil(header.num_indices * header.bits_per_codebook / 8)}")
    return header


def decompress(model: ImageCodecModel, data: bytes) -> np.ndarray:
    """Decode ``.vqi`` bytes with ``model`` to an ``(H, W, C)`` uint8 image."""
    header = read_header(data)
    cfg = model.config
    if model_fingerprint(model) != header.fingerprint:
        raise ValueError(
            f"the .vqi file was written by another model (fingerprint "
            f"{header.fingerprint.hex()}, this model {model_fingerprint(model).hex()}); "
            "pass the model it was compressed with"
        )
    q = cfg.quantizer
    if (header.channels, header.tile, header.grid, header.num_codebooks,
            header.bits_per_codebook) != (cfg.channels, cfg.tile, cfg.grid, q.num_codebooks,
                                          q.bits // q.num_codebooks):
        raise ValueError(f".vqi header {header} does not match the model's config {cfg}")
    payload = bytes(data)[HEADER_BYTES : HEADER_BYTES + header.payload_bytes]
    k = 2**header.bits_per_codebook
    flat = unpack_indices(payload, [k] * q.num_codebooks, header.num_indices // q.num_codebooks)
    rows, cols = header.tiles
    shape = (rows * cols, cfg.grid, cfg.grid) + ((q.num_codebooks,) if q.kind != "vq" else ())
    model.eval()
    return from_tiles(_decode_tiles(model, flat.reshape(shape)), header.height, header.width)


def read_image(path: str | os.PathLike[str], channels: int = 3) -> np.ndarray:
    """An image file as ``(H, W, channels)`` uint8 (RGB or grey)."""
    from vqkit.data._errors import require_module

    pil = require_module("PIL.Image", "pip install pillow")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with pil.open(path) as im:
            arr = np.asarray(im.convert("RGB" if channels == 3 else "L"))
    except pil.UnidentifiedImageError as err:
        raise ValueError(f"{path} is not an image Pillow can read: {err}") from err
    return arr if arr.ndim == 3 else arr[..., None]


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write ``(H, W, C)`` uint8 atomically; the format follows the suffix (PNG if none)."""
    from PIL import Image

    buf = io.BytesIO()
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(buf, format=fmt)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
