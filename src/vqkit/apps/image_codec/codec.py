"""The ``.vqi`` file format: a learned-codec image file, for any image size.

The image is padded (edge replication) to whole tiles, every tile is encoded by the model
into ``grid x grid`` latent vectors of ``num_codebooks`` indices of ``bits_per_codebook`` bits,
and the indices are bit-packed. A ``.vqi`` file is the vqkit container
(:class:`vqkit.io.container.ContainerFormat`) declared as :data:`VQI`: fixed-width header fields
and a CRC-32, to stay small. Layout (little-endian)::

    offset size  field
    0      4     magic b"VQI\\x01"
    4      1     format version (1, or 2 for a grey image of a colour model)
    5      4     image height            9   4  image width
    13     1     channels of the image   14  2  tile side
    16     2     latent grid side        18  1  num_codebooks
    19     1     bits per codebook       20  8  model fingerprint (SHA-256 prefix)
    28     4     payload length in bytes
    32     n     payload: packed indices, tile-major (row-major tiles), then latent row,
                 latent column, codebook
    32+n   4     CRC-32 of bytes [0, 32+n)

``channels`` is the model's (``model.config.channels``), or, in version 2 only, 1 for a grey
image coded by a 3-channel model: its grey is replicated into R, G and B, and decoding returns
the mean of the three decoded channels, rounded, as one grey channel. An image of the model's
channels is written as version 1, byte for byte as before, so older readers keep reading it;
they refuse a version 2 file by its version. Reading image files: :mod:`.image_io`.

The file is ``36 + ceil(tiles * grid^2 * num_codebooks * bits / 8)`` bytes. Decoding checks
the magic, version, length, checksum and that the model's fingerprint matches, and raises
``ValueError`` naming what is wrong. The fingerprint is :func:`vqkit.io.fingerprint.fingerprint`
with :data:`~vqkit.io.fingerprint.NAMED` hashing. Files are written atomically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from vqkit.functional.bitstream import pack_indices, unpack_indices
from vqkit.functional.chunks import map_chunks
from vqkit.io.container import CRC32, Container, ContainerFormat, FixedHeader
from vqkit.io.fingerprint import NAMED, fingerprint
from vqkit.types import Progress

from .model import ImageCodecModel
from .pixels import check_pixels

_FIELDS = FixedHeader(
    ("height", "I"), ("width", "I"), ("channels", "B"), ("tile", "H"), ("grid", "H"),
    ("num_codebooks", "B"), ("bits_per_codebook", "B"), ("fingerprint", "8s"),
    ("payload_bytes", "I"),
)
#: Version 2 has version 1's fields; it adds ``channels = 1`` for a 3-channel model (a grey
#: image). Version 1 files have the model's channels.
VQI = ContainerFormat(
    name=".vqi file",
    magic=b"VQI\x01",
    version_code="B",
    headers={1: _FIELDS, 2: _FIELDS},
    digest=CRC32,
    fingerprint=("fingerprint",),
    model="model",
    payload_length="payload_bytes",
)
MAGIC = VQI.magic
HEADER_BYTES = VQI.prefix_size + VQI.headers[1].min_size  # 32
TRAILER_BYTES = VQI.digest.size  # 4
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
    """8-byte SHA-256 prefix of the model's config and weights: a file names its model.

    Raises:
        TypeError: the model's state holds a value that is not a tensor.
    """
    return fingerprint(model.state_dict(), head=model.config.asdict(), hashing=NAMED)[:8]


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
    """Inverse of :func:`to_tiles`: ``(N, C, T, T)`` in [0, 1] -> cropped ``(H, W, C)`` uint8.

    Raises:
        ValueError: N is not the number of ``T x T`` tiles that cover ``height x width``.
    """
    n, c, t, _ = tiles.shape
    rows, cols = -(-height // t), -(-width // t)
    if n != rows * cols:
        raise ValueError(f"expected {rows * cols} tiles for {height}x{width}, got {n}")
    img = tiles.reshape(rows, cols, c, t, t).permute(0, 3, 1, 4, 2).reshape(rows * t, cols * t, c)
    return (img[:height, :width] * 255.0).round().to(torch.uint8).numpy()


#: Tiles encoded or decoded at once (bounds the memory; the result does not depend on it).
TILE_BATCH = 256


def _encode_tiles(model: ImageCodecModel, tiles: Tensor, progress: Progress | None) -> Tensor:
    return map_chunks(model.encode, tiles, tail=tiles.dim() - 1, chunk=TILE_BATCH,
                      progress=progress)


def _decode_tiles(model: ImageCodecModel, indices: Tensor, progress: Progress | None) -> Tensor:
    return map_chunks(model.decode, indices, tail=indices.dim() - 1, chunk=TILE_BATCH,
                      progress=progress)


def _model_tiles(image: np.ndarray, channels: int, tile: int) -> Tensor:
    """The tiles the model codes: a grey image's grey replicated into the model's channels."""
    return to_tiles(np.repeat(image, channels // image.shape[2], axis=2), tile)


def _image(tiles: Tensor, channels: int, height: int, width: int) -> np.ndarray:
    """Decoded tiles -> ``(H, W, channels)`` uint8; one channel is the tiles' channel mean."""
    if channels != tiles.shape[1]:
        tiles = tiles.mean(dim=1, keepdim=True)
    return from_tiles(tiles, height, width)


def reconstruct(model: ImageCodecModel, image: np.ndarray) -> np.ndarray:
    """The model's in-memory reconstruction of ``image`` (``(H, W, C)`` uint8), which
    :func:`decompress` reproduces exactly from the file; a grey image (``C = 1``) of a
    3-channel model comes back grey (the mean of the decoded channels, rounded).

    Raises:
        TypeError: ``image`` is not a uint8 numpy array.
        ValueError: ``image`` is not ``(H, W, channels)`` or ``(H, W, 1)`` with sides in
            ``[1, 65536]``.
    """
    cfg = model.config
    check_pixels(image, cfg.channels, MAX_SIDE)
    model.eval()
    indices = _encode_tiles(model, _model_tiles(image, cfg.channels, cfg.tile), None)
    return _image(_decode_tiles(model, indices, None), image.shape[2], *image.shape[:2])


def compress(
    model: ImageCodecModel, image: np.ndarray, *, progress: Progress | None = None
) -> bytes:
    """Encode ``image`` (``(H, W, C)`` uint8) to ``.vqi`` bytes.

    Args:
        model: the codec model.
        image: the image: ``C`` the model's channels, or 1 (grey) for a 3-channel model,
            written as format version 2 and decoded grey.
        progress: ``progress(tiles_done, tiles, {})`` after every batch of tiles encoded;
            the last call has ``tiles_done == tiles``.

    Raises:
        TypeError: ``image`` is not a uint8 numpy array.
        ValueError: ``image`` is not ``(H, W, channels)`` or ``(H, W, 1)`` with sides in
            ``[1, 65536]``.

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
    check_pixels(image, cfg.channels, MAX_SIDE)
    model.eval()
    channels = image.shape[2]
    indices = _encode_tiles(model, _model_tiles(image, cfg.channels, cfg.tile), progress)
    bits = cfg.quantizer.bits // cfg.quantizer.num_codebooks
    m = cfg.quantizer.num_codebooks
    payload = pack_indices(indices.reshape(-1, m), [cfg.quantizer.codebook_size] * m)
    header = VqiHeader(
        height=image.shape[0], width=image.shape[1], channels=channels, tile=cfg.tile,
        grid=cfg.grid, num_codebooks=m, bits_per_codebook=bits,
        fingerprint=model_fingerprint(model), payload_bytes=len(payload),
    )
    return VQI.pack(asdict(header), payload, version=1 if channels == cfg.channels else 2)


def read_header(data: bytes, source: str = "the data") -> VqiHeader:
    """Parse and check the header and checksum of ``.vqi`` bytes.

    Args:
        data: a whole ``.vqi`` file.
        source: its name, for errors.

    Raises:
        TypeError: ``data`` is not bytes.
        ValueError: not a ``.vqi`` file, an unknown version, truncated or padded, a checksum
            mismatch, or a header that describes no image of this payload.
    """
    return _unpack(data, source)[0]


def _unpack(data: bytes, source: str) -> tuple[VqiHeader, Container]:
    container = VQI.unpack(data, source)
    header = VqiHeader(**container.header)
    bad = [name for name in ("height", "width", "channels", "tile", "grid", "num_codebooks",
                             "bits_per_codebook") if getattr(header, name) < 1]
    if bad or max(header.height, header.width) > MAX_SIDE or header.bits_per_codebook > 16:
        raise ValueError(f"{source}: .vqi header is invalid: {header}")
    needed = math.ceil(header.num_indices * header.bits_per_codebook / 8)
    if header.payload_bytes != needed:
        raise ValueError(f"{source}: .vqi payload is {header.payload_bytes} bytes, the header's "
                         f"image needs {needed}")
    return header, container


def decompress(
    model: ImageCodecModel,
    data: bytes,
    source: str = "the data",
    *,
    progress: Progress | None = None,
) -> np.ndarray:
    """Decode ``.vqi`` bytes with ``model`` to an ``(H, W, C)`` uint8 image; ``C`` is the
    header's channels (1 for a grey image coded by a 3-channel model).

    Args:
        model: the model that compressed the image.
        data: a whole ``.vqi`` file.
        source: its name, for errors.
        progress: ``progress(tiles_done, tiles, {})`` after every batch of tiles decoded;
            the last call has ``tiles_done == tiles``.

    Raises:
        TypeError: ``data`` is not bytes.
        ValueError: as :func:`read_header`, or the file was written by another model.
    """
    header, container = _unpack(data, source)
    cfg = model.config
    VQI.check_fingerprint(asdict(header), model_fingerprint(model), source)
    q = cfg.quantizer
    channels = (cfg.channels,) if container.version == 1 else (cfg.channels, 1)
    layout = (header.tile, header.grid, header.num_codebooks, header.bits_per_codebook)
    if header.channels not in channels or layout != (cfg.tile, cfg.grid, q.num_codebooks,
                                                     q.bits // q.num_codebooks):
        raise ValueError(f"{source}: .vqi header {header} does not match the model's config {cfg}")
    k = 2**header.bits_per_codebook
    flat = unpack_indices(container.payload, [k] * q.num_codebooks,
                          header.num_indices // q.num_codebooks)
    rows, cols = header.tiles
    shape = (rows * cols, cfg.grid, cfg.grid) + ((q.num_codebooks,) if q.kind != "vq" else ())
    model.eval()
    tiles = _decode_tiles(model, flat.reshape(shape), progress)
    return _image(tiles, header.channels, header.height, header.width)
