"""Reproductions are declared as Reproduction objects; the registry and `vqkit reproduce
--variant` reach every one of them and their variants."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest

import vqkit.experiments as experiments
from vqkit.cli.main import main
from vqkit.experiments import Reproduction, Variant, registry


def _modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(experiments.__path__)
            if not m.name.startswith("_") and m.name not in ("reproduction", "verification")]


def test_every_module_declares_one_reproduction_and_the_registry_has_them_all():
    reg = registry()
    declared = []
    for name in _modules():
        module = importlib.import_module(f"vqkit.experiments.{name}")
        rep = module.REPRODUCTION
        assert isinstance(rep, Reproduction)
        assert [v for v in vars(module).values() if isinstance(v, Reproduction)] == [rep]
        assert reg[rep.name] is rep
        declared.append(rep.name)
    assert sorted(declared) == sorted(reg) and len(set(declared)) == len(declared)
    files = [f for rep in reg.values() for f in rep.result_files]
    assert len(files) == len(set(files)), "two reproductions claim one results file"


def test_the_variants_that_exist(capsys):
    reg = registry()
    assert sorted(reg["image-estimators"].variants) == ["dim-check-64", "dim-check-8",
                                                         "gap-check"]
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert "(variants: gap-check, dim-check-8, dim-check-64)" in out


def test_help_documents_variants(capsys):
    assert main(["reproduce", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--variant VARIANT" in out and "gap-check" in out


def test_reproduce_runs_the_variant_not_the_main_run(tmp_path, monkeypatch):
    """`vqkit reproduce NAME --variant V --quick --seed S` calls V's run with quick and seed."""
    calls = []

    def main_run(out_dir, *, quick=False, seed=0, allow_dirty=False):
        calls.append(("main", Path(out_dir), quick, seed, allow_dirty))
        return Path(out_dir) / "t.json"

    def variant_run(out_dir, *, quick=False, seed=0, allow_dirty=False):
        calls.append(("variant", Path(out_dir), quick, seed, allow_dirty))
        return Path(out_dir) / "v.json"

    toy = Reproduction("toy", "d", 1.0, ("t.json",), main_run, str,
                       variants={"wide": Variant("a wider one", variant_run)})
    monkeypatch.setattr(experiments, "registry", lambda: {"toy": toy})
    assert main(["reproduce", "toy", "--variant", "wide", "--quick", "--seed", "3",
                 "--allow-dirty", "--out", str(tmp_path)]) == 0
    assert main(["reproduce", "toy", "--allow-dirty", "--out", str(tmp_path)]) == 0
    assert calls == [("variant", tmp_path, True, 3, True), ("main", tmp_path, False, 0, True)]


def test_the_declared_dim_check_variants_pass_their_latent_width(monkeypatch, tmp_path):
    from vqkit.experiments import image_estimators

    seen = []

    def fake_sweep(path, points, run, *, quick, extra, on_update=None):
        seen.append((path.name, [p[1].latent_dim for p in points], quick, run.command))
        return {}

    monkeypatch.setattr(image_estimators, "sweep", fake_sweep)
    rep = registry()["image-estimators"]
    for width in (8, 64):
        path = rep.runner(f"dim-check-{width}")(tmp_path, quick=False, seed=0,
                                                 allow_dirty=True)
        assert path == tmp_path / f"image_estimators_dim{width}.json"
    assert seen == [
        ("image_estimators_dim8.json", [8, 8], False,
         "vqkit reproduce image-estimators --variant dim-check-8"),
        ("image_estimators_dim64.json", [64, 64], False,
         "vqkit reproduce image-estimators --variant dim-check-64"),
    ]


def test_unknown_variant_is_refused_before_any_work(capsys, tmp_path):
    assert main(["reproduce", "nsvq-toy", "--variant", "gap-check", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nsvq-toy has no variant 'gap-check'; its variants: none" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("field", "value", "error", "match"), [
    ("name", "Bad Name", ValueError, "lower-case"),
    ("expected_minutes", 0, ValueError, "positive"),
    ("result_files", (), ValueError, ".json"),
    ("result_files", ("a.csv",), ValueError, ".json"),
    ("config", dict, TypeError, "dataclass"),
    ("variants", {"Gap": Variant("x", print)}, ValueError, "variant name"),
])
def test_reproduction_validates_its_fields(field, value, error, match):
    fields = dict(name="toy", description="d", expected_minutes=1.0, result_files=("t.json",),
                  run=print, report=str)
    fields[field] = value
    with pytest.raises(error, match=match):
        Reproduction(**fields)


def test_reproduction_is_frozen_and_its_variants_read_only():
    rep = Reproduction("toy", "d", 1.0, ["t.json"], print, str,
                       variants={"v": Variant("x", print)})
    assert rep.result_files == ("t.json",)
    with pytest.raises(TypeError):
        rep.variants["w"] = Variant("y", print)
    with pytest.raises(AttributeError):
        rep.name = "other"


def test_quick_gap_check_variant_end_to_end(tmp_path, capsys):
    """The real variant in its smoke version: STE and NSVQ + CBR at 6 bits, 60 steps."""
    assert main(["reproduce", "image-estimators", "--variant", "gap-check", "--quick",
                 "--allow-dirty", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "image_estimators_gap.json").read_text())
    assert data["command"] == "vqkit reproduce image-estimators --variant gap-check --quick"
    assert [(r["method"], r["bits"]) for r in data["results"]["rows"]] == [("STE", 6),
                                                                           ("NSVQ", 6)]
    assert data["train"]["steps"] == 60
    assert all(r["train_config"]["steps"] == 60 for r in data["results"]["rows"])


def test_two_modules_declaring_one_name_are_refused(monkeypatch):
    """The registry refuses a second reproduction of the same name (it does not let the later
    module silently replace the earlier one)."""
    import types
    from pkgutil import ModuleInfo

    def declared(module_name: str) -> types.ModuleType:
        module = types.ModuleType(module_name)
        module.REPRODUCTION = Reproduction("same", module_name, 1.0, (f"{module_name}.json",),
                                           lambda out_dir, **kw: out_dir, str)
        return module

    modules = {f"vqkit.experiments.{n}": declared(n) for n in ("first", "second")}
    monkeypatch.setattr(experiments.pkgutil, "iter_modules",
                        lambda path: [ModuleInfo(None, n, False) for n in ("first", "second")])
    monkeypatch.setattr(experiments.importlib, "import_module", modules.__getitem__)
    with pytest.raises(ValueError, match="two reproductions are named 'same'"):
        registry()
