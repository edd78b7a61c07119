"""The .vqi codec: exact round trips, file sizes, clear errors on bad files and inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vqkit.apps.image_codec.codec import (
    HEADER_BYTES,
    TRAILER_BYTES,
    compress,
    decompress,
    from_tiles,
    read_header,
    reconstruct,
    to_tiles,
)
from vqkit.apps.image_codec.config import CodecConfig, QuantizerSpec, TrainConfig
from vqkit.apps.image_codec.model import ImageCodecModel, load_checkpoint, save_checkpoint


def _model(kind: str = "vq", bits: int = 9, m: int = 1, seed: int = 0) -> ImageCodecModel:
    torch.manual_seed(seed)
    spec = QuantizerSpec(kind=kind, bits=bits, num_codebooks=m, beam_width=4)
    return ImageCodecModel(CodecConfig(tile=16, hidden=8, latent_dim=8, quantizer=spec)).eval()


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind,bits,m", [("vq", 9, 1), ("rvq", 12, 4), ("pvq", 8, 2),
                                         ("avq", 6, 2)])
def test_round_trip_equals_in_memory_reconstruction(kind, bits, m):
    model = _model(kind, bits, m)
    image = _image(37, 50)  # not a multiple of the tile: padded and cropped back
    data = compress(model, image)
    out = decompress(model, data)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out, reconstruct(model, image))
    # ... and reconstruct() is the model's own forward pass on the padded tiles.
    tiles = to_tiles(image, 16)
    expected = from_tiles(model.eval()(tiles)[0].clamp(0, 1), 37, 50)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("h,w", [(1, 1), (16, 16), (17, 33), (40, 9)])
def test_file_size_matches_bits(h, w):
    model = _model("rvq", 12, 4)
    data = compress(model, _image(h, w))
    tiles = math.ceil(h / 16) * math.ceil(w / 16)
    payload_bits = tiles * model.config.grid**2 * 12
    assert len(data) == HEADER_BYTES + math.ceil(payload_bits / 8) + TRAILER_BYTES
    header = read_header(data)
    assert (header.height, header.width, header.num_codebooks, header.bits_per_codebook) == (
        h, w, 4, 3)


def test_tiles_round_trip_is_identity():
    image = _image(33, 47)
    assert np.array_equal(from_tiles(to_tiles(image, 16), 33, 47), image)


def test_corrupt_truncated_and_foreign_files_raise_clear_errors():
    model = _model()
    data = compress(model, _image(20, 20))
    flipped = bytearray(data)
    flipped[HEADER_BYTES + 1] ^= 0x10
    with pytest.raises(ValueError, match="corrupt.*CRC"):
        decompress(model, bytes(flipped))
    with pytest.raises(ValueError, match="truncated"):
        decompress(model, data[:-3])
    with pytest.raises(ValueError, match="truncated"):
        decompress(model, data[:10])
    with pytest.raises(ValueError, match="not a .vqi file"):
        decompress(model, b"PNG!" + data[4:])
    with pytest.raises(ValueError, match="written by a different model"):
        decompress(_model(seed=1), data)
    with pytest.raises(TypeError, match="bytes"):
        decompress(model, "not bytes")


def test_header_layout_and_errors_that_name_the_file():
    """The 32-byte header of the documented layout; each defect names the file it is in."""
    import struct
    import zlib

    from vqkit.apps.image_codec.codec import model_fingerprint

    model = _model()
    data = compress(model, _image(20, 30))
    fields = struct.unpack_from("<4sBIIBHHBB8sI", data)
    assert fields == (b"VQI\x01", 1, 20, 30, 3, 16, model.config.grid, 1, 9,
                      model_fingerprint(model), len(data) - 36)
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])

    def reseal(body: bytes) -> bytes:
        return body + struct.pack("<I", zlib.crc32(body))

    body = bytearray(data[:-4])
    body[4] = 3
    with pytest.raises(ValueError, match="^a.vqi is .vqi file format version 3; this vqkit "
                                         "reads version 1, 2$"):
        decompress(model, reseal(bytes(body)), "a.vqi")
    with pytest.raises(ValueError, match="^a.vqi is corrupt: payload holds"):
        decompress(model, reseal(data[:-4] + b"\0"), "a.vqi")
    body = bytearray(data[:-4])
    struct.pack_into("<I", body, 5, 99)                      # height 99: more tiles than stored
    with pytest.raises(ValueError, match="^a.vqi: .vqi payload is .* bytes, the header's image "
                                         "needs"):
        decompress(model, reseal(bytes(body)), "a.vqi")
    with pytest.raises(ValueError, match="^a.vqi was written by a different model"):
        decompress(_model(seed=1), data, "a.vqi")
    with pytest.raises(ValueError, match="^a.vqi is not a .vqi file or is truncated"):
        read_header(data[:30], "a.vqi")


def test_bad_images_are_rejected():
    model = _model()
    with pytest.raises(TypeError, match="uint8"):
        compress(model, np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        compress(model, np.zeros((8, 8), np.uint8))


def test_checkpoint_round_trip_and_bad_checkpoints(tmp_path):
    model = _model("pvq", 8, 2)
    path = tmp_path / "m.pt"
    save_checkpoint(model, path, TrainConfig(steps=5).asdict())
    loaded = load_checkpoint(path)
    image = _image(20, 30)
    assert decompress(loaded, compress(model, image)).tolist() == reconstruct(model, image).tolist()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable image-codec checkpoint"):
        load_checkpoint(path)
    torch.save({"format": "other"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not an image-codec checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_config_validation_names_the_argument():
    with pytest.raises(ValueError, match="estimator"):
        QuantizerSpec(estimator="gumbel")
    with pytest.raises(ValueError, match="divisible"):
        QuantizerSpec(kind="rvq", bits=10, num_codebooks=4)
    with pytest.raises(ValueError, match="num_codebooks must be 1"):
        QuantizerSpec(kind="vq", num_codebooks=2)
    with pytest.raises(ValueError, match="downsample"):
        CodecConfig(downsample=3)
    with pytest.raises(ValueError, match="latent_dim"):
        CodecConfig(latent_dim=10, quantizer=QuantizerSpec(kind="pvq", bits=12, num_codebooks=4))
    with pytest.raises(ValueError, match="replace_every"):
        TrainConfig(replace_every=-1)
    with pytest.raises(ValueError, match="tiles must have shape"):
        _model().encode(torch.rand(1, 3, 8, 8))


def test_progress_over_tiles_ends_at_the_total_and_keeps_the_bytes():
    """A 272 x 256 image is 17 x 16 = 272 tiles of 16: two batches of tiles, reported after
    each; the bytes and the image are those of a run without a callback."""
    model, image = _model("rvq", 12, 4), _image(272, 256)
    seen = []
    data = compress(model, image, progress=lambda d, t, i: seen.append((d, t)))
    assert seen == [(256, 272), (272, 272)]
    assert data == compress(model, image)
    seen.clear()
    out = decompress(model, data, progress=lambda d, t, i: seen.append((d, t)))
    assert seen == [(256, 272), (272, 272)]
    assert np.array_equal(out, reconstruct(model, image))
