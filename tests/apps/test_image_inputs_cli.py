"""`vqkit image compress / decompress` on unusual inputs: nothing is lost silently.

EXIF-rotated JPEG, grey, 1-bit, 16-bit, RGBA (transparent and opaque), palette with a
transparent entry, CMYK: each written by Pillow in tmp_path, compressed and decompressed by the
CLI; the decoded file is checked against the codec's reconstruction of a numpy oracle.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from vqkit.apps.image_codec.codec import compress, decompress, read_header, reconstruct
from vqkit.apps.image_codec.config import CodecConfig
from vqkit.apps.image_codec.model import (
    DEFAULT_MODEL,
    ImageCodecModel,
    save_checkpoint,
)
from vqkit.cli.main import main

Image = pytest.importorskip("PIL.Image")


def _photo(h: int = 21, w: int = 34, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(20, 220, w)[None, :, None] + np.linspace(0, 30, h)[:, None, None]
    img = ramp * np.array([1.0, 0.7, 0.4]) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def small(tmp_path):
    """An untrained 3-channel model (tile 16) and its checkpoint."""
    torch.manual_seed(0)
    model = ImageCodecModel(CodecConfig(tile=16, hidden=4, latent_dim=4)).eval()
    save_checkpoint(model, tmp_path / "m.pt")
    return model, tmp_path / "m.pt"


def _round_trip(tmp_path, image_path, ckpt, *extra: str) -> np.ndarray:
    """Compress and decompress with the CLI; the decoded file as read by Pillow."""
    vqi, out = tmp_path / "x.vqi", tmp_path / "out.png"
    args = ["--model", str(ckpt)] if ckpt is not None else []
    assert main(["image", "compress", "-q", str(image_path), str(vqi), *args, *extra]) == 0
    assert main(["image", "decompress", "-q", str(vqi), str(out), *args]) == 0
    with Image.open(out) as im:
        return np.asarray(im)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / ((a.astype(float) - b) ** 2).mean()))


def test_exif_rotated_jpeg_is_coded_upright(tmp_path, small):
    model, ckpt = small
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show the stored pixels rotated 90 clockwise
    Image.fromarray(_photo()).save(tmp_path / "r.jpg", quality=95, exif=exif)
    with Image.open(tmp_path / "r.jpg") as im:
        upright = np.ascontiguousarray(np.rot90(np.asarray(im), -1))
    decoded = _round_trip(tmp_path, tmp_path / "r.jpg", ckpt)
    assert decoded.shape == (34, 21, 3)
    assert np.array_equal(decoded, reconstruct(model, upright))


def test_grey_is_coded_as_one_channel_and_returned_grey(tmp_path, small):
    model, ckpt = small
    grey = _photo()[..., 1]
    Image.fromarray(grey).save(tmp_path / "g.png")
    decoded = _round_trip(tmp_path, tmp_path / "g.png", ckpt)
    header = read_header((tmp_path / "x.vqi").read_bytes())
    assert header.channels == 1 and (tmp_path / "x.vqi").read_bytes()[4] == 2  # version 2
    assert decoded.shape == (21, 34)  # a grey PNG, not RGB
    # The grey is the mean of the three decoded channels of the replicated image: within one
    # level of the mean of the model's (separately rounded) RGB reconstruction.
    rgb = reconstruct(model, np.repeat(grey[..., None], 3, axis=2)).astype(float)
    assert np.abs(decoded - rgb.mean(axis=2)).max() <= 1.0
    assert np.abs(rgb[..., 0] - rgb[..., 2]).max() > 5  # the untrained model tints: it matters


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="default model not shipped")
def test_grey_photo_error_matches_the_rgb_path(tmp_path):
    grey = _photo(40, 56)[..., 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(tmp_path / "rgb.png")
    as_grey = _round_trip(tmp_path, tmp_path / "g.png", None)
    as_rgb = _round_trip(tmp_path, tmp_path / "rgb.png", None)
    assert as_grey.ndim == 2 and as_rgb.shape == (40, 56, 3)
    psnr_grey, psnr_rgb = _psnr(as_grey, grey), _psnr(as_rgb, grey[..., None])
    # Measured: 28.2 dB grey, 27.1 dB RGB; averaging the channels removes the tint's error.
    assert psnr_grey > 25.0 and psnr_grey >= psnr_rgb - 0.1


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="default model not shipped")
def test_sixteen_bit_png_decodes_to_its_level_not_white(tmp_path):
    samples = (np.linspace(8000, 40000, 40 * 48).reshape(40, 48)).astype(np.uint16)
    Image.fromarray(samples).save(tmp_path / "deep.png")
    decoded = _round_trip(tmp_path, tmp_path / "deep.png", None).astype(float)
    assert decoded.shape == (40, 48)
    # Measured: mean 90.9 for the source's 93.4 (the model's bias), PSNR 31.5 dB; coded as
    # white (clipped at 255) it would be 255.
    assert abs(decoded.mean() - samples.mean() / 257) < 5.0
    assert _psnr(decoded, samples / 257) > 25.0


def test_one_bit_image_round_trips_as_grey(tmp_path, small):
    model, ckpt = small
    bits = np.indices((18, 23)).sum(axis=0) % 4 == 0
    Image.fromarray(bits).save(tmp_path / "b.png")
    decoded = _round_trip(tmp_path, tmp_path / "b.png", ckpt)
    expected = reconstruct(model, (bits.astype(np.uint8) * 255)[..., None])
    assert decoded.shape == (18, 23) and np.array_equal(decoded, expected[..., 0])


def test_transparent_rgba_is_refused_unless_drop_alpha(tmp_path, small, capsys):
    model, ckpt = small
    rgba = np.concatenate([_photo(), np.full((21, 34, 1), 255, np.uint8)], axis=2)
    rgba[:4, :4, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "a.png")
    vqi = tmp_path / "x.vqi"
    assert main(["image", "compress", str(tmp_path / "a.png"), str(vqi), "--model",
                 str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "transparent pixels" in err and "--drop-alpha" in err
    assert not vqi.exists()
    decoded = _round_trip(tmp_path, tmp_path / "a.png", ckpt, "--drop-alpha")
    assert np.array_equal(decoded, reconstruct(model, rgba[..., :3]))


def test_opaque_rgba_is_coded_without_a_word(tmp_path, small, capsys):
    model, ckpt = small
    rgba = np.concatenate([_photo(), np.full((21, 34, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    decoded = _round_trip(tmp_path, tmp_path / "a.png", ckpt)
    assert capsys.readouterr().err == ""
    assert np.array_equal(decoded, reconstruct(model, rgba[..., :3]))


def test_palette_with_a_transparent_entry_is_refused_unless_drop_alpha(tmp_path, small, capsys):
    model, ckpt = small
    palette = np.array([[10, 20, 30], [200, 40, 40], [40, 40, 200]], np.uint8)
    index = (np.indices((21, 34)).sum(axis=0) % 3).astype(np.uint8)
    im = Image.fromarray(index, mode="P")
    im.putpalette(palette.ravel().tolist())
    im.save(tmp_path / "p.png", transparency=0)
    assert main(["image", "compress", str(tmp_path / "p.png"), str(tmp_path / "x.vqi"),
                 "--model", str(ckpt)]) == 2
    assert "--drop-alpha" in capsys.readouterr().err
    decoded = _round_trip(tmp_path, tmp_path / "p.png", ckpt, "--drop-alpha")
    assert np.array_equal(decoded, reconstruct(model, palette[index]))


def test_cmyk_jpeg_is_coded_as_rgb(tmp_path, small):
    model, ckpt = small
    cmyk = np.concatenate([255 - _photo(), np.full((21, 34, 1), 30, np.uint8)], axis=2)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as im:
        rgb = np.asarray(im.convert("RGB"))  # test_image_io checks this against the formula
    decoded = _round_trip(tmp_path, tmp_path / "c.jpg", ckpt)
    assert decoded.shape == (21, 34, 3)
    assert np.array_equal(decoded, reconstruct(model, rgb))


def test_grey_model_codes_grey_and_refuses_colour(tmp_path):
    torch.manual_seed(0)
    model = ImageCodecModel(CodecConfig(tile=16, channels=1, hidden=4, latent_dim=4)).eval()
    grey = _photo()[..., :1]
    data = compress(model, grey)
    assert data[4] == 1 and read_header(data).channels == 1  # the model's channels: version 1
    assert np.array_equal(decompress(model, data), reconstruct(model, grey))
    with pytest.raises(ValueError, match=r"\(H, W, 1\) \(the model codes grey images\)"):
        compress(model, _photo())


def test_file_versions_hold_what_they_declare():
    torch.manual_seed(0)
    model = ImageCodecModel(CodecConfig(tile=16, hidden=4, latent_dim=4)).eval()
    colour, grey = compress(model, _photo()), compress(model, _photo()[..., :1])
    assert (colour[4], colour[13], grey[4], grey[13]) == (1, 3, 2, 1)
    assert decompress(model, grey).shape == (21, 34, 1)

    def patched(data: bytes, offset: int, value: int) -> bytes:
        body = bytearray(data[:-4])
        body[offset] = value
        return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))

    # Version 1 never held a grey image of a colour model; no version holds 2 channels.
    for bad in (patched(grey, 4, 1), patched(grey, 13, 2)):
        with pytest.raises(ValueError, match="does not match the model's config"):
            decompress(model, bad)
    # Version 2 with the model's channels is a colour image: it decodes as version 1 does.
    assert np.array_equal(decompress(model, patched(colour, 4, 2)), decompress(model, colour))


def test_compress_help_documents_alpha(capsys):
    assert main(["image", "compress", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--drop-alpha" in text and "fully opaque alpha channel is dropped" in text
