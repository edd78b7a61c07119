"""Whole-image ``.vqi`` files: entropy-coded residual-VQ indices of one image, any rate.

The image (any size) goes through :class:`~.network.WholeImageModel` in one piece; the file
keeps the first ``m`` of its ``M`` stages (the rate: :func:`compress` takes ``stages`` or a
target ``bpp``) and range-codes them under the model's :class:`~.prior.IndexPrior`. A file is
the vqkit container (:class:`vqkit.io.container.ContainerFormat`) declared as
:data:`VQIW`, with a 10-byte fixed header, so a tiny image costs 19 bytes around its payload.
Layout (little-endian)::

    offset size  field
    0      4     magic b"VQIW"
    4      1     format version (1)
    5      2     image height            7   2  image width
    9      1     channels of the image (the model's, or 1: a grey image)
    10     1     stages kept (m)         11  4  model fingerprint (SHA-256 prefix)
    15     n     payload: the range coder's 32-bit words (stage 0 of every latent position in
                 row-major order, then stage 1, ...)
    15+n   4     CRC-32 of bytes [0, 15+n)

A grey image (``channels = 1``) of a colour model is coded with its grey in every channel;
decoding returns the mean of the decoded channels, rounded. Decoding checks the magic,
version, checksum, header and the model's fingerprint, and raises ``ValueError`` naming what
is wrong. The tile model's files (:mod:`.codec`) have another magic.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from vqkit.io.container import CRC32, ContainerFormat, FixedHeader
from vqkit.io.fingerprint import NAMED, fingerprint

from .network import WholeImageModel
from .pixels import check_pixels

log = logging.getLogger(__name__)

VQIW = ContainerFormat(
    name="whole-image .vqi file",
    magic=b"VQIW",
    version_code="B",
    headers={1: FixedHeader(("height", "H"), ("width", "H"), ("channels", "B"),
                            ("stages", "B"), ("fingerprint", "4s"))},
    digest=CRC32,
    fingerprint=("fingerprint",),
    model="image model",
)
#: Bytes of a file around its payload: magic, version, header and CRC-32.
OVERHEAD_BYTES = VQIW.prefix_size + VQIW.headers[1].min_size + CRC32.size
#: Largest side a file can record.
MAX_SIDE = (1 << 16) - 1
#: Most pixels coded or decoded in one piece (the network runs on the whole image, a few
#: hundred bytes of memory per pixel: this bounds a call at roughly 10 GB; a 24-megapixel
#: photo fits). A file that declares more is refused before anything is allocated.
MAX_PIXELS = 1 << 25


@dataclass(frozen=True)
class ImageHeader:
    """The header of a whole-image ``.vqi`` file."""

    height: int
    width: int
    channels: int
    stages: int
    fingerprint: bytes


def image_model_fingerprint(model: WholeImageModel) -> bytes:
    """4-byte SHA-256 prefix of the model's config, weights, codebooks and prior."""
    return fingerprint(model.state_dict(), head=model.config.asdict(), hashing=NAMED)[:4]


def _as_input(image: np.ndarray, channels: int) -> Tensor:
    """``(H, W, c)`` uint8 -> ``(1, channels, H, W)`` float in [0, 1] (grey replicated)."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div_(255.0)
    return x.expand(1, channels, *x.shape[2:]) if x.shape[1] != channels else x


def _as_image(decoded: Tensor, channels: int) -> np.ndarray:
    """``(1, C, H, W)`` in [0, 1] -> ``(H, W, channels)`` uint8 (1: the channel mean).

    Raises:
        ValueError: a decoded value is not finite (the model's weights are not).
    """
    if not bool(torch.isfinite(decoded).all()):
        raise ValueError("the image model decoded pixels that are not finite (NaN); its "
                         "weights are broken")
    if channels != decoded.shape[1]:
        decoded = decoded.mean(dim=1, keepdim=True)
    return (decoded[0].permute(1, 2, 0) * 255.0).round_().to(torch.uint8).numpy()


def _pack(model: WholeImageModel, indices: Tensor, image: np.ndarray, stages: int) -> bytes:
    payload = model.prior.encode(indices[..., :stages].reshape(-1, stages))
    header = ImageHeader(height=image.shape[0], width=image.shape[1], channels=image.shape[2],
                         stages=stages, fingerprint=image_model_fingerprint(model))
    return VQIW.pack(asdict(header), payload)


def _stages_for(model: WholeImageModel, indices: Tensor, image: np.ndarray, bpp: float) -> int:
    """The most stages whose file is at most ``bpp`` bits per pixel (1 if none is)."""
    pixels = image.shape[0] * image.shape[1]
    lo, hi = 1, model.config.stages
    while lo < hi:  # the file grows with the stages kept
        mid = (lo + hi + 1) // 2
        if 8 * len(_pack(model, indices, image, mid)) <= bpp * pixels:
            lo = mid
        else:
            hi = mid - 1
    if lo == 1 and 8 * len(_pack(model, indices, image, 1)) > bpp * pixels:
        log.warning("no rate of the model reaches %.4g bits per pixel; keeping 1 stage", bpp)
    return lo


def compress(model: WholeImageModel, image: np.ndarray, *, stages: int | None = None,
             bpp: float | None = None) -> bytes:
    """Encode ``image`` to whole-image ``.vqi`` bytes.

    Args:
        model: the codec model.
        image: ``(H, W, C)`` uint8, ``C`` the model's channels or 1 (grey).
        stages: residual stages to keep, ``1..M`` (the rate; default M, the highest).
        bpp: instead of ``stages``: the most stages whose whole file is at most this many
            bits per pixel (1 stage, with a logged warning, if none is).

    Raises:
        TypeError: ``image`` is not a uint8 numpy array.
        ValueError: ``image`` is not ``(H, W, C)`` / ``(H, W, 1)`` with sides in
            ``[1, 65535]`` and at most :data:`MAX_PIXELS` pixels; both ``stages`` and
            ``bpp`` given; ``stages`` outside ``1..M``; ``bpp`` not > 0.

    Example:
        >>> from vqkit.apps.image_codec.config import ImageModelConfig
        >>> m = WholeImageModel(ImageModelConfig(hidden=8, latent_dim=4, codebook_size=4,
        ...                                      stages=3)).eval()
        >>> img = np.zeros((20, 30, 3), np.uint8)
        >>> data = compress(m, img, stages=2)
        >>> np.array_equal(decompress(m, data), reconstruct(m, img, stages=2))
        True
    """
    check_pixels(image, model.config.channels, MAX_SIDE, MAX_PIXELS)
    if stages is not None and bpp is not None:
        raise ValueError("give stages or bpp, not both")
    m = model.config.stages
    if stages is not None and (isinstance(stages, bool) or not isinstance(stages, int)
                               or not 1 <= stages <= m):
        raise ValueError(f"stages must be an int in [1, {m}], got {stages!r}")
    if bpp is not None and not bpp > 0:
        raise ValueError(f"bpp must be > 0, got {bpp}")
    model.eval()
    indices = model.encode(_as_input(image, model.config.channels))
    if bpp is not None:
        stages = _stages_for(model, indices, image, bpp)
    return _pack(model, indices, image, stages or m)


def reconstruct(model: WholeImageModel, image: np.ndarray, stages: int | None = None
                ) -> np.ndarray:
    """The decoded image :func:`decompress` returns for ``compress(model, image,
    stages=stages)``, computed in memory.

    Raises:
        TypeError / ValueError: as :func:`compress`.
        ValueError: the model decodes pixels that are not finite (broken weights).
    """
    check_pixels(image, model.config.channels, MAX_SIDE, MAX_PIXELS)
    model.eval()
    decoded = model.reconstruct(_as_input(image, model.config.channels), stages)
    return _as_image(decoded, image.shape[2])


def read_image_header(data: bytes, source: str = "the data") -> ImageHeader:
    """The checked header of whole-image ``.vqi`` bytes.

    Raises:
        TypeError: ``data`` is not bytes.
        ValueError: not such a file, an unknown version, corrupt or truncated (checksum), or
            a header that describes no image.
    """
    return _checked_header(VQIW.unpack(data, source).header, source)


def _checked_header(fields: dict, source: str) -> ImageHeader:
    header = ImageHeader(**fields)
    if min(header.height, header.width, header.channels, header.stages) < 1:
        raise ValueError(f"{source}: whole-image .vqi header is invalid: {header}")
    return header


def decompress(model: WholeImageModel, data: bytes, source: str = "the data") -> np.ndarray:
    """Decode whole-image ``.vqi`` bytes with ``model`` to ``(H, W, C)`` uint8.

    Raises:
        TypeError: ``data`` is not bytes.
        ValueError: as :func:`read_image_header`; the file was written by another model; its
            channels or stages do not fit the model; it declares more than
            :data:`MAX_PIXELS` pixels, or a payload shorter than any coding of that many
            indices (:meth:`~.prior.IndexPrior.least_bits`); the payload does not decode; or the
            model decodes pixels that are not finite (broken weights).
    """
    container = VQIW.unpack(data, source)
    header = _checked_header(container.header, source)
    VQIW.check_fingerprint(container.header, image_model_fingerprint(model), source)
    cfg = model.config
    if header.channels not in {1, cfg.channels} or header.stages > cfg.stages:
        raise ValueError(f"{source}: header {header} does not fit the model ({cfg.channels} "
                         f"channels, {cfg.stages} stages)")
    if header.height * header.width > MAX_PIXELS:
        raise ValueError(f"{source}: the header declares {header.height}x{header.width} "
                         f"pixels, more than the {MAX_PIXELS} decoded in one piece")
    grid = model.grid(header.height, header.width)
    least = model.prior.least_bits(grid[0] * grid[1], header.stages)
    if 8 * len(container.payload) < least:
        raise ValueError(f"{source}: a payload of {len(container.payload)} bytes cannot hold "
                         f"{header.height}x{header.width} pixels at {header.stages} stages "
                         f"(at least {least / 8:.0f} bytes under the model's prior): "
                         "truncated or forged")
    try:
        flat = model.prior.decode(container.payload, grid[0] * grid[1], header.stages)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err
    model.eval()
    decoded = model.decode(flat.reshape(1, *grid, header.stages), header.height, header.width)
    return _as_image(decoded, header.channels)
