"""``build_quantizer`` builds what the if-chains it replaced built: same class, config, state.

Each oracle below is the constructor call that the app or command made before it used
:func:`vqkit.quantizers.build_quantizer`; under the same global seed both must give equal
quantizers (so trained numbers do not change).
"""

from __future__ import annotations

import pytest
import torch

from vqkit import (
    EMA,
    AdditiveVQ,
    BeamSearch,
    DiVeQ,
    DiVeQDetach,
    Gradient,
    Greedy,
    NoiseSubstitution,
    ProductVQ,
    ResidualVQ,
    RotationTrick,
    SpaceFillingVQ,
    StraightThrough,
    VectorQuantizer,
)
from vqkit.quantizers import build_quantizer


def _same(build, oracle) -> None:
    torch.manual_seed(0)
    got, got_next = build(), torch.rand(3)
    torch.manual_seed(0)
    want, want_next = oracle(), torch.rand(3)
    assert type(got) is type(want) and got.config() == want.config()
    assert got.state_dict().keys() == want.state_dict().keys()
    for key, value in want.state_dict().items():
        assert torch.equal(got.state_dict()[key], value), key
    assert torch.equal(got_next, want_next)  # the global generator was used the same way


def test_unknown_or_mismatched_arguments_are_value_errors():
    with pytest.raises(ValueError, match="unknown quantizer type 'bogus'"):
        build_quantizer("bogus", 4, 8)
    with pytest.raises(ValueError, match="num_codebooks must be 1 for VectorQuantizer"):
        build_quantizer("vq", 4, 8, 2)
    with pytest.raises(ValueError, match="unknown estimator type 'bogus'"):
        build_quantizer("vq", 4, 8, estimator="bogus")


# -- the image codec (apps/image_codec/model.py) ----------------------------------------------
_IMAGE_ESTIMATORS = {
    "nsvq": lambda g: NoiseSubstitution(generator=g), "ste": lambda g: StraightThrough(),
    "rotation": lambda g: RotationTrick(), "diveq": lambda g: DiVeQ(generator=g),
    "diveq-detach": lambda g: DiVeQDetach(),
}


def _image_oracle(spec, dim, g):
    est = _IMAGE_ESTIMATORS[spec.estimator](g)
    learning = EMA(decay=0.99) if spec.learning == "ema" else Gradient()
    k, m = spec.codebook_size, spec.num_codebooks
    if spec.kind == "vq":
        return VectorQuantizer(dim, k, estimator=est, learning=learning)
    if spec.kind == "rvq":
        return ResidualVQ(dim, k, m, estimator=est, learning=learning)
    if spec.kind == "pvq":
        return ProductVQ(dim, k, m, estimator=est, learning=learning)
    return AdditiveVQ(dim, k, m, estimator=est, learning=learning,
                      encoder=BeamSearch(width=spec.beam_width))


@pytest.mark.parametrize("kind", ["vq", "rvq", "pvq", "avq"])
@pytest.mark.parametrize("estimator", list(_IMAGE_ESTIMATORS))
@pytest.mark.parametrize("learning", ["gradient", "ema"])
def test_image_codec_quantizers(kind, estimator, learning):
    from vqkit.apps.image_codec.config import QuantizerSpec
    from vqkit.apps.image_codec.model import build_quantizer as image_build

    spec = QuantizerSpec(kind=kind, bits=8, estimator=estimator,
                         num_codebooks=1 if kind == "vq" else 2, learning=learning, beam_width=3)
    g = torch.Generator()
    _same(lambda: image_build(spec, 6, g), lambda: _image_oracle(spec, 6, g))
    if estimator in ("nsvq", "diveq"):  # the noise comes from the model's generator
        assert image_build(spec, 6, g).estimator.generator is g


# -- the speech-envelope study (apps/speech/study.py) -----------------------------------------
def _speech_oracle(kind, est, bits, seed):
    from vqkit.apps.speech.quantizers import SoftResidualVQ, UniformScalarQuantizer

    e = (NoiseSubstitution(generator=torch.Generator().manual_seed(seed + 1000))
         if est == "nsvq" else StraightThrough())
    if kind in ("rvq", "kmeans-rvq"):
        return ResidualVQ(16, 256, bits // 8, estimator=e)
    if kind == "pvq":
        return ProductVQ(16, 2 ** (bits // 4), 4, estimator=e)
    if kind == "avq":
        return AdditiveVQ(16, 256, bits // 8, estimator=e)
    if kind == "soft-rvq":
        return SoftResidualVQ(16, 256, bits // 8, beta=0.1,
                              generator=torch.Generator().manual_seed(seed))
    return UniformScalarQuantizer(16, bits // 16)


@pytest.mark.parametrize("kind", ["rvq", "kmeans-rvq", "pvq", "avq", "soft-rvq", "scalar"])
@pytest.mark.parametrize("est", ["nsvq", "ste", "none"])
def test_speech_study_quantizers(kind, est):
    from vqkit.apps.speech.study import build_quantizer as study_build

    _same(lambda: study_build(kind, est, 16, 3), lambda: _speech_oracle(kind, est, 16, 3))


# -- ANN (apps/ann/train.py) and the additive-VQ toy (experiments/aq_toy.py) -----------------
@pytest.mark.parametrize("kind", ["pq", "rvq", "avq"])
def test_ann_quantizers(kind):
    from vqkit.apps.ann.train import build as ann_build

    g = torch.Generator()
    oracle = {
        "pq": lambda: ProductVQ(8, 16, 2, estimator=NoiseSubstitution(generator=g)),
        "rvq": lambda: ResidualVQ(8, 16, 2, estimator=NoiseSubstitution(generator=g),
                                  encoder=Greedy()),
        "avq": lambda: AdditiveVQ(8, 16, 2, estimator=NoiseSubstitution(generator=g),
                                  encoder=BeamSearch(3)),
    }[kind]
    _same(lambda: ann_build(kind, 8, 16, 2, width=3, generator=g), oracle)


@pytest.mark.parametrize("method", ["AVQ", "RVQ", "PVQ"])
def test_aq_toy_quantizers(method):
    from vqkit.experiments.aq_toy import DIM, NUM_CODEBOOKS, ToyConfig, build

    cfg = ToyConfig(beam_width=5)

    def oracle():
        torch.manual_seed(2)
        nsvq = NoiseSubstitution(generator=torch.Generator().manual_seed(3))
        cls = {"AVQ": AdditiveVQ, "RVQ": ResidualVQ, "PVQ": ProductVQ}[method]
        extra = {"encoder": BeamSearch(min(5, 8))} if method == "AVQ" else {}
        return cls(DIM, 8, NUM_CODEBOOKS, estimator=nsvq, **extra)

    _same(lambda: build(method, 12, cfg, 2), oracle)


# -- vqkit fit (cli/commands/_common.py) ------------------------------------------------------
@pytest.mark.parametrize(("quantizer", "m", "oracle"), [
    ("vq", 1, lambda e, l: VectorQuantizer(6, 16, estimator=e, learning=l)),
    ("rvq", 3, lambda e, l: ResidualVQ(6, 16, 3, estimator=e, learning=l)),
    ("pvq", 2, lambda e, l: ProductVQ(6, 16, 2, estimator=e, learning=l)),
    ("avq", 2, lambda e, l: AdditiveVQ(6, 16, 2, estimator=e, learning=l)),
    ("sfvq", 1, lambda e, l: SpaceFillingVQ(6, 16, estimator=e, learning=l, initial_size=4)),
])
@pytest.mark.parametrize(("estimator", "learning"), [("nsvq", "gradient"), ("ste", "ema"),
                                                     ("diveq-detach", "gradient")])
def test_fit_command_quantizers(quantizer, m, oracle, estimator, learning):
    from vqkit.cli.commands._common import make_quantizer
    from vqkit.registry import ESTIMATORS

    if quantizer == "sfvq" and learning == "ema":
        pytest.skip("an EMA codebook cannot learn a curve")
    settings = {"quantizer": quantizer, "estimator": estimator, "learning": learning,
                "ema_decay": 0.9, "codebook_size": 16, "num_codebooks": m,
                "initial_size": 4 if quantizer == "sfvq" else None}
    learn = EMA(decay=0.9) if learning == "ema" else Gradient()
    _same(lambda: make_quantizer(settings, 6),
          lambda: oracle(ESTIMATORS.lookup(estimator)(), learn))
