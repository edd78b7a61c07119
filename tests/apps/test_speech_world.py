"""The WORLD vocoder front end at 8 kHz: analysis, side-information coding, synthesis."""

from __future__ import annotations

import numpy as np
import pytest

from vqkit.apps.speech import world
from vqkit.data.speech import load_wav

pytest.importorskip("pyworld")


def fill_freed_heap(value: float, chunks: int = 64) -> None:
    """Leave freed 8 KiB heap blocks (D4C's 1024-double work arrays) holding ``value``."""
    blocks = [np.full(1024, value) for _ in range(chunks)]
    del blocks


@pytest.fixture(scope="module")
def clip():
    audio, _ = load_wav("/usr/share/codec2/wav/hts1a.wav", 8000)
    return audio[:12000]


def test_analysis_frames_voicing_and_synthesis_length(clip):
    frames = world.analyse(clip, 8000)
    t = len(frames.f0)
    assert t == len(clip) // 160 + 1  # one frame per 20 ms
    assert frames.coded.shape == (t, 16) and frames.band_ap.shape == (t, 4)
    voiced = frames.f0 > 0
    assert 0.3 < voiced.mean() < 1.0  # a male talker speaking most of the clip
    assert np.all((frames.f0[voiced] >= 60) & (frames.f0[voiced] <= 400))
    # With the 8 kHz voicing fix, voiced frames are mostly periodic at low frequencies.
    assert np.median(frames.band_ap[voiced, 0]) < -10
    y = world.synthesise(world.quantize_side(frames), 8000, len(clip))
    assert y.shape == clip.shape and np.isfinite(y).all() and np.abs(y).max() > 0.01


def test_side_information_quantizers_round_trip():
    f0 = np.array([0.0, 60.0, 100.0, 250.0, 400.0])
    idx = world.quantize_f0(f0)
    assert idx.max() < 2**world.F0_BITS and idx[0] == 0
    assert np.allclose(world.quantize_f0(world.dequantize_f0(idx)), idx)
    ap = np.array([[-40.0, -30.0, -15.0, 0.0]])
    aidx = world.quantize_ap(ap)
    assert aidx.tolist() == [[0, 0, 4, 7]]
    assert np.allclose(world.dequantize_ap(aidx), [[-30.0, -30.0, -30 + 30 * 4 / 7, 0.0]])
    assert world.SIDE_BITS == 19


def test_envelope_lsd_is_zero_for_identical_and_grows_with_error(clip):
    coded = world.analyse(clip, 8000).coded
    assert np.allclose(world.log_spectral_distortion(coded, coded, 8000), 0.0)
    noisy = coded + np.random.default_rng(0).normal(0, 0.05, coded.shape)
    noisier = coded + np.random.default_rng(0).normal(0, 0.2, coded.shape)
    small = world.log_spectral_distortion(coded, noisy, 8000).mean()
    large = world.log_spectral_distortion(coded, noisier, 8000).mean()
    assert 0 < small < large


@pytest.mark.parametrize(("garbage", "whispers"), [(-1e300, True), (float("inf"), True),
                                                   (float("nan"), False)])
def test_analysis_ignores_what_the_heap_held_before(clip, garbage, whispers):
    """D4C's voicing test reads uninitialised memory at 8 kHz: with ``threshold=0`` the heap's
    old contents turn voiced frames fully aperiodic (whispered); analyse must not care."""
    pw = world._pyworld()
    x = np.ascontiguousarray(clip, dtype=np.float64)
    clean = world.analyse(clip, 8000)
    voiced = clean.f0 > 0
    assert voiced.sum() > 10 and np.all(clean.band_ap[voiced, 0] < -10)
    fill_freed_heap(garbage)
    after = world.analyse(clip, 8000)
    for name in ("f0", "coded", "band_ap"):
        assert np.array_equal(getattr(after, name), getattr(clean, name)), name
    # The condition is real: such garbage whispers pyworld's D4C with threshold=0 (NaN makes
    # the tested ratio NaN, which fails "ratio <= 0" and so keeps frames voiced). Whether
    # D4C's unread buffer lands on the filled memory is up to the allocator (after the rest of
    # a long test session it may never), so the garbage whispering every voiced frame in one
    # of a few tries is checked where it happens, and NaN must whisper none.
    f0, t = pw.harvest(x, 8000, frame_period=world.FRAME_MS, f0_floor=world.F0_MIN,
                       f0_ceil=world.F0_MAX)
    outcomes = []
    for _ in range(5):
        fill_freed_heap(garbage)
        raw = pw.d4c(x, f0, t, 8000, threshold=0.0)
        whispered = raw[f0 > 0].min(axis=1) > 0.99
        outcomes.append("all" if whispered.all() else "some" if whispered.any() else "none")
    if whispers:
        if "all" not in outcomes:  # the allocator kept the buffer off the filled memory
            pytest.skip(f"the garbage did not reach D4C's buffer in {len(outcomes)} tries "
                        f"({outcomes}); analyse's equality above was still checked")
    else:
        assert set(outcomes) == {"none"}, outcomes


def test_d4c_at_8_khz_gives_one_aperiodicity_shape_for_every_voiced_frame(clip):
    """At 8 kHz D4C has no 3 kHz analysis band, so voiced frames all get its fixed -60 dB
    (0 Hz) to 0 dB (4 kHz) ramp: the band aperiodicity carries voicing only."""
    frames = world.analyse(clip, 8000)
    voiced = frames.band_ap[frames.f0 > 0]
    assert np.ptp(voiced, axis=0).max() == 0.0
    assert np.all(frames.band_ap[frames.f0 == 0] > -1e-6)
