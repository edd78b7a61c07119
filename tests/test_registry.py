"""The registry: every public strategy and quantizer is registered once and round-trips.

The classes are found by importing every module of ``vqkit`` and walking the subclasses of
:class:`~vqkit.strategy.Strategy` and :class:`~vqkit.quantizers.base.Quantizer`, not from a
hand-written list, so a new class that is not registered (or does not round-trip) fails here.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import math
import pkgutil

import pytest
import torch

import vqkit
from vqkit.codebooks import CodebookLearning
from vqkit.estimators import Estimator, NoiseSubstitution
from vqkit.maintenance import ReplacementRule
from vqkit.parameterisations import CodebookParameterisation
from vqkit.quantizers import ChannelsFirst, VectorQuantizer, build_quantizer
from vqkit.quantizers.adapters import Wrapper
from vqkit.quantizers.application import EstimatorApplication, OnComposite, PerStage
from vqkit.quantizers.base import Quantizer
from vqkit.quantizers.beam_fit import BeamFit
from vqkit.quantizers.composite import MultiCodebookQuantizer
from vqkit.quantizers.dropout import QuantizerDropout
from vqkit.quantizers.encoders import Encoder
from vqkit.quantizers.implicit import ACCEPTED_ESTIMATORS, ImplicitCodebookQuantizer
from vqkit.registry import (
    ESTIMATORS,
    LEARNINGS,
    QUANTIZERS,
    REGISTRIES,
    Registry,
)
from vqkit.regularisers import Regulariser
from vqkit.space_filling.curve import Projection
from vqkit.space_filling.estimators import SegmentEstimator
from vqkit.strategy import Strategy, from_config, to_config


def _import_everything() -> None:
    for info in pkgutil.walk_packages(vqkit.__path__, "vqkit."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def _subclasses(base: type) -> list[type]:
    out: list[type] = []
    for sub in base.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return sorted(set(out), key=lambda c: (c.__module__, c.__qualname__))


_import_everything()

#: The base classes of each kind and their abstract intermediates: never registered.
ABSTRACT = {Strategy, Estimator, SegmentEstimator, CodebookLearning, Projection, ReplacementRule,
            BeamFit,
            EstimatorApplication, Encoder, QuantizerDropout, Quantizer, MultiCodebookQuantizer,
            Regulariser, ImplicitCodebookQuantizer, Wrapper, CodebookParameterisation}


def _public(base: type) -> list[type]:
    return [c for c in _subclasses(base) if c.__module__.startswith("vqkit.")
            and not c.__name__.startswith("_") and c not in ABSTRACT]


STRATEGIES = _public(Strategy)
QUANTIZER_TYPES = _public(Quantizer)


def _ids(classes: list[type]) -> list[str]:
    return [c.__name__ for c in classes]


# -- the Registry itself ----------------------------------------------------------------------
def test_register_lookup_and_errors():
    shapes = Registry("shape")

    @shapes.register(aliases=("sq", "box"))
    class Square:
        pass

    @shapes.register
    class Circle:
        pass

    assert shapes.lookup("sq") is shapes.lookup("box") is shapes.lookup("Square") is Square
    assert shapes.name_of(Circle) == "Circle" and list(shapes) == ["Square", "Circle"]
    assert "box" in shapes and "Circle" in shapes and "Triangle" not in shapes
    with pytest.raises(ValueError, match=r"unknown shape type 'tri'; known shape types: "
                                         r"Circle, Square \(or box, sq\)"):
        shapes.lookup("tri")
    with pytest.raises(ValueError, match="already a registered shape"):
        shapes.register(Square)

    class Other:
        pass

    with pytest.raises(ValueError, match="'sq' is already taken by Square"):
        shapes.register(Other, aliases=("sq",))
    assert "Other" not in shapes  # a refused registration leaves nothing behind
    with pytest.raises(TypeError, match="Other is not a registered shape type"):
        shapes.name_of(Other)


def test_cli_short_names_are_aliases():
    expected = {"nsvq": "NoiseSubstitution", "ste": "StraightThrough", "rotation": "RotationTrick",
                "diveq": "DiVeQ", "diveq-detach": "DiVeQDetach"}
    assert {a: c for a, c in ESTIMATORS.aliases().items() if a in expected} == expected
    assert LEARNINGS.aliases() == {"gradient": "Gradient", "ema": "EMA"}
    for alias, name in {"vq": "VectorQuantizer", "rvq": "ResidualVQ", "pvq": "ProductVQ",
                        "avq": "AdditiveVQ", "sfvq": "SpaceFillingVQ", "fsq": "FSQ",
                        "rfsq": "ResidualFSQ", "lfq": "LFQ", "bsq": "BSQ"}.items():
        assert QUANTIZERS.lookup(alias) is QUANTIZERS.lookup(name)


# -- every public class is registered exactly once --------------------------------------------
def test_the_walk_finds_the_known_classes():
    names = set(_ids(STRATEGIES)) | set(_ids(QUANTIZER_TYPES))
    assert {"SFDiVeQ", "MSEFit", "PerStage", "FractionDepth", "ExactProjection", "UsageWeighted",
            "BeamSearch", "EMA", "ChannelsFirst", "SpaceFillingVQ", "ScaledError"} <= names


ALL_CLASSES = STRATEGIES + QUANTIZER_TYPES


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_registered_exactly_once_in_the_registry_of_its_kind(cls):
    holders = [r for r in REGISTRIES.values() if cls in (r.lookup(n) for n in r)]
    kind = QUANTIZERS if issubclass(cls, Quantizer) else cls.registry
    assert holders == [kind]
    assert kind.name_of(cls) == cls.__name__


def test_abstract_bases_are_not_registered():
    registered = {r.lookup(n) for r in REGISTRIES.values() for n in r}
    assert not ABSTRACT & registered


# -- strategies: to_config / from_config ------------------------------------------------------
@pytest.mark.parametrize("cls", STRATEGIES, ids=_ids(STRATEGIES))
def test_strategy_round_trips_through_its_config(cls):
    strategy = cls()
    config = to_config(strategy)
    assert config["type"] == cls.__name__
    back = from_config(config, cls.registry)
    assert type(back) is cls and back == strategy and to_config(back) == config


@pytest.mark.parametrize("application", [OnComposite, PerStage])
@pytest.mark.parametrize("estimator", list(ESTIMATORS), ids=list(ESTIMATORS))
def test_applications_round_trip_with_every_estimator(application, estimator):
    app = application(ESTIMATORS.lookup(estimator)())
    back = from_config(to_config(app), application.registry)
    assert type(back) is application and back.estimator == app.estimator


def test_unknown_names_raise_value_errors_naming_the_kind():
    with pytest.raises(ValueError, match="unknown estimator type 'Bogus'; known estimator types:"
                                         " .*MSEFit.*SFDiVeQ"):
        from_config({"type": "Bogus"}, ESTIMATORS)
    with pytest.raises(ValueError, match="unknown codebook learning type"):
        from_config({"type": "Bogus"}, LEARNINGS)


def test_unregistered_strategy_cannot_be_saved():
    class Mine(NoiseSubstitution):
        pass

    with pytest.raises(TypeError, match="Mine is not a registered estimator type"):
        to_config(Mine())


# -- quantizers with every estimator and learning they accept ---------------------------------
DIM, SIZE, M = 8, 16, 2


def _make(cls: type, estimator=None, learning=None) -> Quantizer | None:
    """``cls`` with this estimator and learning, or None where it rejects them by design."""
    params = inspect.signature(cls).parameters
    if "quantizer" in params or "inner" in params:  # wrappers: around a VectorQuantizer
        inner = _make(VectorQuantizer, estimator, learning)
        return None if inner is None else cls(inner)
    if (estimator is not None and "estimator" not in params) or (
            learning is not None and "learning" not in params):
        return None
    m = M if "num_codebooks" in params else None
    if not {"codebook_size", "levels", "bits"} & set(params):
        return _from_contract_case(cls, estimator, learning)
    try:
        if "levels" in params:  # FSQ family: an implicit codebook of prod(levels) entries
            return build_quantizer(cls, DIM, None, m, estimator=estimator, levels=(5, 4, 3))
        if "codebook_size" not in params:  # a scalar quantizer: bits per dimension
            return build_quantizer(cls, DIM, bits=3)
        return build_quantizer(cls, DIM, SIZE, m, estimator=estimator, learning=learning)
    except ValueError as err:  # e.g. an EMA codebook cannot learn a curve
        assert "cannot" in str(err) or "must" in str(err)
        return _from_contract_case(cls, estimator, learning)


def _from_contract_case(cls: type, estimator, learning) -> Quantizer | None:
    """A family whose constructor has none of the shapes above: built by its contract case
    (tests/contract_cases.py), the one place a new family declares how to build it."""
    from tests.contract_cases import CASES

    for case in CASES:
        q = case.build(estimator, learning)
        if type(q) is cls:
            return q
    return None


def _estimators(cls: type) -> list:
    out: list = [None, *(ESTIMATORS.lookup(n)() for n in ESTIMATORS)]
    if issubclass(cls, MultiCodebookQuantizer):
        out += [PerStage(ESTIMATORS.lookup(n)()) for n in ESTIMATORS]
    return out


LEARNING_CHOICES = [None, *(LEARNINGS.lookup(name)() for name in LEARNINGS)]
#: Every quantizer type with every estimator (and application) and learning it accepts.
COMBOS = [(cls, est, learn) for cls in QUANTIZER_TYPES
          for est, learn in itertools.product(_estimators(cls), LEARNING_CHOICES)
          if _make(cls, est, learn) is not None]


def _combo_id(combo) -> str:
    cls, est, learn = combo
    return f"{cls.__name__}-{est!r}-{learn!r}"


def _inputs(q: Quantizer, g: torch.Generator) -> torch.Tensor:
    x = torch.randn(4, 6, DIM, generator=g)
    return x.movedim(-1, 1) if isinstance(q, ChannelsFirst) else x


@pytest.mark.parametrize("combo", COMBOS, ids=[_combo_id(c) for c in COMBOS])
def test_quantizer_round_trips_through_config_and_save_load(combo, tmp_path):
    cls, estimator, learning = combo
    torch.manual_seed(0)
    q = _make(cls, estimator, learning)
    assert type(cls.from_config(q.config())) is cls
    assert cls.from_config(q.config()).config() == q.config()
    g = torch.Generator().manual_seed(1)
    samples = torch.randn(64, DIM, generator=g)  # (N, C) is channels-first
    if q.initialises_from_data:
        q.init_codebook_(samples, generator=g)
    else:  # the contract's answer of an implicit codebook (FSQ, LFQ): refuse, change nothing
        assert isinstance(q, ImplicitCodebookQuantizer | vqkit.ChannelsFirst)
        before = {k: v.clone() for k, v in q.state_dict().items()}
        with pytest.raises(NotImplementedError, match="no data-driven initialisation"):
            q.init_codebook_(samples, generator=g)
        assert all(torch.equal(v, q.state_dict()[k]) for k, v in before.items())
    q.train()
    q(_inputs(q, g))  # usage counters, EMA statistics, dropout step: state to save
    vqkit.save(q, tmp_path / "q.pt")
    back = vqkit.load(tmp_path / "q.pt")
    assert type(back) is cls and back.config() == q.config()
    assert back.state_dict().keys() == q.state_dict().keys()
    for key, value in q.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    x = _inputs(q, g)
    q.eval(), back.eval()
    assert torch.equal(back(x).quantized, q(x).quantized)
    assert torch.equal(back.encode(x), q.encode(x))


@pytest.mark.parametrize("cls", QUANTIZER_TYPES, ids=_ids(QUANTIZER_TYPES))
def test_every_type_accepts_every_estimator_it_takes(cls):
    accepted = {repr(est) for c, est, _ in COMBOS if c is cls}
    params = inspect.signature(cls).parameters
    if issubclass(cls, ImplicitCodebookQuantizer):  # refuses the rotation trick and DiVeQ
        assert accepted == {repr(est) for est in _estimators(cls)
                            if est is None or type(est) in ACCEPTED_ESTIMATORS}
    elif {"estimator", "quantizer", "inner"} & set(params):  # itself or the wrapped quantizer
        assert accepted == {repr(est) for est in _estimators(cls)}
    else:
        assert accepted == {"None"}


@pytest.mark.parametrize("cls", QUANTIZER_TYPES, ids=_ids(QUANTIZER_TYPES))
def test_contract_members(cls):
    q = _make(cls)
    sizes = q.codebook_sizes
    assert isinstance(sizes, tuple) and all(isinstance(k, int) and k >= 1 for k in sizes)
    columns = math.prod(q.index_shape) if q.index_shape else 1
    assert len(sizes) == columns
    assert q.bits_per_vector == pytest.approx(sum(math.log2(k) for k in sizes))
    assert isinstance(q.replace_dead_codes_(0.5), int)



def test_initialises_from_data_is_declared_by_every_quantizer():
    """The capability says what init_codebook_ does, for every quantizer type (wrappers and
    ChannelsFirst answer for the quantizer they wrap)."""
    seen = set()
    for cls in QUANTIZER_TYPES:
        q = _make(cls)
        implicit = isinstance(q, ImplicitCodebookQuantizer)
        seen.add(implicit)
        assert q.initialises_from_data is not implicit, cls.__name__
        assert vqkit.ChannelsFirst(q).initialises_from_data is q.initialises_from_data
    assert seen == {True, False}
