"""read_image: every kind of image file becomes what the module table says, with numpy oracles.

Each file is written by Pillow in tmp_path; the oracles read the raw samples back without
vqkit (no EXIF orientation, no conversion) and compute the expected pixels with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

from vqkit.apps.image_codec.image_io import _pixels, read_image

Image = pytest.importorskip("PIL.Image")

ORIENTATION = 0x0112  # the EXIF tag


def _photo(h: int = 20, w: int = 36, seed: int = 0) -> np.ndarray:
    """An RGB image with no symmetry: a ramp across, another down, and noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, w)[None, :, None] + np.linspace(0, 50, h)[:, None, None]
    img = ramp * np.array([1.0, 0.6, 0.3]) + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _raw(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.mark.parametrize("tag,turns", [(6, -1), (8, 1)])  # 6: rotate 90 clockwise; 8: counter
def test_exif_orientation_is_applied(tmp_path, tag, turns):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[ORIENTATION] = tag
    Image.fromarray(_photo()).save(path, quality=95, exif=exif)
    src = read_image(path)
    expected = np.rot90(_raw(path), turns)
    assert src.pixels.shape == (36, 20, 3) and not src.grey and not src.translucent
    assert np.array_equal(src.pixels, expected)


def test_grey_images_are_one_channel(tmp_path):
    grey = _photo()[..., 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    src = read_image(tmp_path / "g.png")
    assert src.grey and src.mode == "L" and src.pixels.shape == (20, 36, 1)
    assert np.array_equal(src.pixels[..., 0], grey)


def test_one_bit_images_are_grey_0_or_255(tmp_path):
    bits = (np.indices((12, 17)).sum(axis=0) % 3 == 0)
    Image.fromarray(bits).save(tmp_path / "b.png")
    assert _raw(tmp_path / "b.png").dtype == bool  # Pillow wrote mode 1
    src = read_image(tmp_path / "b.png")
    assert src.grey and src.mode == "1"
    assert np.array_equal(src.pixels[..., 0], bits.astype(np.uint8) * 255)


def test_sixteen_bit_png_is_scaled_by_257_not_clipped(tmp_path):
    samples = np.linspace(300, 65535, 24 * 40).reshape(24, 40).astype(np.uint16)
    Image.fromarray(samples).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode.startswith("I")  # a real 16-bit grey PNG
    src = read_image(tmp_path / "deep.png")
    assert src.grey and src.pixels.dtype == np.uint8
    assert np.array_equal(src.pixels[..., 0], np.round(samples / 257.0).astype(np.uint8))
    assert src.pixels.max() == 255 and src.pixels.min() == 1
    assert abs(src.pixels.mean() - samples.mean() / 257) < 0.5


def test_mode_i_from_a_png_is_16_bit_and_other_wide_modes_are_refused(tmp_path):
    # Pillow before 11 opens a 16-bit grey PNG as mode I (int32): the PNG bounds it to 16 bits.
    wide = np.array([[0, 128, 129, 65535]], np.int32)
    pixels, alpha = _pixels(Image.fromarray(wide), "PNG")
    assert pixels[..., 0].tolist() == [[0, 0, 1, 255]] and alpha is None
    with pytest.raises(ValueError, match=r"outside the 16-bit range \[0, 65535\]"):
        _pixels(Image.fromarray(np.array([[70000]], np.int32)), "PNG")
    for name, array in (("i.tif", wide * 1000), ("f.tif", wide.astype(np.float32) / 65535)):
        Image.fromarray(array).save(tmp_path / name)
        with pytest.raises(ValueError, match=rf"^{tmp_path / name}: mode [IF] images .*no known "
                                             "range"):
            read_image(tmp_path / name)


@pytest.mark.parametrize("opaque", [True, False])
def test_alpha_is_reported_only_when_some_pixel_is_transparent(tmp_path, opaque):
    rgba = np.concatenate([_photo(), np.full((20, 36, 1), 255, np.uint8)], axis=2)
    if not opaque:
        rgba[3, 5, 3] = 254
    Image.fromarray(rgba).save(tmp_path / "a.png")
    src = read_image(tmp_path / "a.png")
    assert src.mode == "RGBA" and src.translucent is not opaque
    assert np.array_equal(src.pixels, rgba[..., :3])


def test_grey_with_alpha_stays_grey(tmp_path):
    la = np.stack([_photo()[..., 1], np.full((20, 36), 255, np.uint8)], axis=2)
    la[0, 0, 1] = 0
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    src = read_image(tmp_path / "la.png")
    assert src.grey and src.translucent and np.array_equal(src.pixels[..., 0], la[..., 0])


def test_palette_transparency_counts_as_alpha(tmp_path):
    palette = [0, 0, 0, 255, 0, 0, 0, 0, 255]
    index = (np.indices((10, 14)).sum(axis=0) % 3).astype(np.uint8)
    im = Image.fromarray(index, mode="P")
    im.putpalette(palette)
    im.save(tmp_path / "keyed.png", transparency=2)   # entry 2 (blue) is transparent
    im.save(tmp_path / "plain.png")
    colours = np.array(palette, np.uint8).reshape(3, 3)[index]
    for name, translucent in (("keyed.png", True), ("plain.png", False)):
        src = read_image(tmp_path / name)
        assert src.mode == "P" and src.translucent is translucent and not src.grey
        assert np.array_equal(src.pixels, colours)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = np.concatenate([_photo(), _photo(seed=1)[..., :1]], axis=2)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.jpg", quality=95)
    raw = _raw(tmp_path / "c.jpg").astype(float)  # the decoded CMYK samples
    expected = (255 - raw[..., :3]) * (255 - raw[..., 3:]) / 255
    src = read_image(tmp_path / "c.jpg")
    assert src.mode == "CMYK" and not src.grey and src.pixels.shape == (20, 36, 3)
    assert np.abs(src.pixels - expected).max() <= 1.0


def test_unsupported_modes_name_the_mode(tmp_path):
    Image.new("LAB", (4, 4)).save(tmp_path / "lab.tif")
    with pytest.raises(ValueError, match="mode LAB images are not supported"):
        read_image(tmp_path / "lab.tif")
