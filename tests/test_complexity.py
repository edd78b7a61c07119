"""The WMOPS model reproduces the published complexity figures of [vali2023rpavq] (Fig. 4c, 6b)."""

from __future__ import annotations

import math

import pytest

from vqkit.complexity import DOUBLE, SINGLE, avq_wmops, log10_wmops, pvq_wmops, rvq_wmops

BITS = [12, 16, 20, 24, 28, 32, 36, 40]

# [vali2023rpavqcode] Results/Figure 4/Complexity_Fig4-c.json (images: D = 64, M = 4, W = 16)
FIG4C = {
    "AVQ": [-0.31026327412521015, -0.17530026099104476, 0.010589107271876189,
            0.24012023305003158, 0.5004398483193758, 0.779587978425412, 1.0692492114090146,
            1.364481239994905],
    "RVQ": [-2.2892059000696725, -2.010105436281227, -1.7204699350245596, -1.425251291649823,
            -1.127156395614195, -0.8276014220606953, -0.5273108203575688, -0.22665099427212598],
    "PVQ": [-2.8709549401120418, -2.598254917762937, -2.3121144751512945, -2.018725167293411,
            -1.721566523462584, -1.422485222226635, -1.1224328625628763, -0.8218925114194595],
}
# [vali2023rpavqcode] Results/Figure 6/Complexity_Fig6-b.json (ANN: D = 128, M = 4, W = min(K, 64))
FIG6B = {
    "AVQ": [-0.4864920792092946, 0.10798354591288245, 0.7196476099884205, 1.3518490449730725,
            1.5461956074510657, 1.7821154815608145, 2.046521673828493, 2.328012459262243],
    "RVQ": [-1.9889373052702652, -1.7100099339456807, -1.4204679098421358,
            -1.1252979018554377, -0.8272278203219707, -0.5276853811920604,
            -0.22740107887469635, 0.07325558942615694],
    "PVQ": [-2.5728385970740346, -2.300856312605516, -2.0151127989356725,
            -1.7219326691113375, -1.4248814629133089, -1.1258546153815672,
            -0.8258296692310124, -0.5253030718831712],
}


@pytest.mark.parametrize("kind", ["AVQ", "RVQ", "PVQ"])
def test_image_compression_column(kind):
    for bits, published in zip(BITS, FIG4C[kind], strict=True):
        ours = log10_wmops(kind, 64, bits, 4, beam_width=16)
        assert round(ours, 3) == round(published, 3)
        assert ours == pytest.approx(published, abs=1e-12)


@pytest.mark.parametrize("kind", ["AVQ", "RVQ", "PVQ"])
def test_ann_column(kind):
    for bits, published in zip(BITS, FIG6B[kind], strict=True):
        width = min(2 ** (bits // 4), 64)
        ours = log10_wmops(kind, 128, bits, 4, beam_width=width)
        assert round(ours, 3) == round(published, 3)
        assert ours == pytest.approx(published, abs=1e-12)


def test_hand_count_of_a_tiny_rvq():
    # D=2, K=2, M=2: one stage search: 2*(2*2-1)=6 adds + 4 mults, argmin 1 add 1 move,
    # 2 moves to store, + 2 adds for the final sum -> 6+1+2 adds, 4 mults, 3 moves = 16 ops
    assert rvq_wmops(2, 2, 2) * 1e6 == pytest.approx(16)
    assert rvq_wmops(2, 2, 2, weights=DOUBLE) == pytest.approx(2 * rvq_wmops(2, 2, 2))


def test_orderings_and_errors():
    assert pvq_wmops(64, 256, 4) < rvq_wmops(64, 256, 4) < avq_wmops(64, 256, 4, 16)
    assert avq_wmops(64, 256, 4, 16, weights=SINGLE) < avq_wmops(64, 256, 4, 16, weights=DOUBLE)
    with pytest.raises(ValueError, match="beam_width"):
        avq_wmops(64, 8, 4, 16, strict=True)
    with pytest.raises(ValueError, match="multiple"):
        log10_wmops("RVQ", 64, 13, 4)
    with pytest.raises(ValueError, match="kind"):
        log10_wmops("LSQ", 64, 12, 4)
    assert math.isfinite(avq_wmops(64, 8, 4, 16))
