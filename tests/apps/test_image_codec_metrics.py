"""PSNR / SSIM against formulas and scikit-image; JPEG/WebP baselines; data split by photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqkit.apps.image_codec.baselines import at_rate, rate_distortion
from vqkit.apps.image_codec.data import PhotoCrops
from vqkit.apps.image_codec.evaluate import psnr_per_image, ssim_per_image


def test_psnr_formula():
    x = torch.zeros(2, 3, 8, 8)
    y = x.clone()
    y[0] += 0.1
    y[1, :, :4] += 0.2  # half the pixels off by 0.2: MSE 0.02
    assert psnr_per_image(x, y).tolist() == pytest.approx([20.0, 10 * np.log10(50.0)])


def test_ssim_matches_scikit_image(generator):
    metrics = pytest.importorskip("skimage.metrics")
    x = torch.rand(3, 3, 32, 32, generator=generator)
    y = (x + 0.15 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    ours = ssim_per_image(x, y)
    for i in range(3):
        ref = metrics.structural_similarity(
            x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy(),
            data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False)
        assert float(ours[i]) == pytest.approx(ref, abs=1e-10)


def test_ssim_rejects_small_or_mismatched_images():
    with pytest.raises(ValueError, match="at least 11"):
        ssim_per_image(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="equal"):
        ssim_per_image(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 17))


def test_jpeg_webp_curves_rise_with_quality():
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(64, 96, 3)), 0), 1)
    img = ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)
    for fmt in ("JPEG", "WEBP"):
        pts = rate_distortion([img], fmt, qualities=(10, 50, 90))
        rates = [p["bits_per_pixel"] for p in pts]
        assert rates == sorted(rates)
        assert pts[-1]["psnr"] > pts[0]["psnr"]
        mid = at_rate(pts, (rates[0] + rates[1]) / 2)
        assert pts[0]["psnr"] <= mid <= pts[1]["psnr"]
    assert np.isnan(at_rate(pts, 100.0))


def test_photo_crops_are_seeded_and_inside_the_photos():
    photo = np.arange(40 * 50 * 3, dtype=np.float32).reshape(40, 50, 3)
    src = PhotoCrops([photo], tile=32)
    a = src.sample(5, torch.Generator().manual_seed(3))
    b = src.sample(5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    for crop in a.permute(0, 2, 3, 1).numpy():  # every crop is a window of the photo
        y, x = divmod(int(crop[0, 0, 0]) // 3, 50)
        assert np.array_equal(crop, photo[y : y + 32, x : x + 32])


def test_natural_split_is_by_photo():
    pytest.importorskip("skimage")
    from vqkit.data.images import NATURAL_TEST_PHOTOS, natural_photos, split_photos

    photos = natural_photos()
    train, test = split_photos(photos)
    assert len(test) == len(NATURAL_TEST_PHOTOS)
    assert len(train) + len(test) == len(photos)
    test_ids = {id(p) for p in test}
    assert not any(id(p) in test_ids for p in train)
    with pytest.raises(ValueError, match="not among"):
        split_photos(photos, ("skimage:nope",))
