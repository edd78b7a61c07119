"""Every module of vqkit sits in one layer, and imports point down the layers only.

The layers, lowest first (a module may import its own layer and the layers below it):

    functional and utilities -> codebooks/estimators/maintenance -> quantizers/space_filling -> io
    -> interpret, privacy, data -> training -> apps, experiments -> cli

The first four are the core: they import torch, numpy and the standard library only. The test
globs every module under ``src/vqkit``, so a new file fails until it is placed in a layer.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vqkit

SRC = Path(vqkit.__file__).parent

# (layer, members); a member is a module or a package (everything under it), relative to vqkit.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("functional", ("functional", "types", "registry", "strategy", "distributed", "complexity")),
    ("codebooks/estimators", ("codebooks", "parameterisations", "estimators", "maintenance",
                              "regularisers")),
    ("quantizers", ("quantizers", "space_filling", "replacement")),
    ("io", ("io", "__init__")),
    ("interpret/privacy/data", ("interpret", "privacy", "data", "progress", "plotting",
                                "reporting", "doc_numbers")),
    ("training", ("training",)),
    ("apps/experiments", ("apps", "experiments")),
    ("cli", ("cli", "__main__")),
]
CORE_LAYERS = 4  # the first four layers are the core
CORE_EXTERNAL = {"torch", "numpy"} | set(sys.stdlib_module_names)
# Public names of `vqkit` that live above the core and are imported on first access only.
LAZY_EXPORTS = {"vqkit": {"vqkit.training.space_filling"}}
# Optional or heavy dependencies that `import vqkit` must not load.
NOT_AT_IMPORT = ("tqdm", "matplotlib", "scipy", "skimage", "faiss")
UPPER_PACKAGES = ("training", "apps", "experiments", "cli", "data")


def _module_name(path: Path) -> str:
    parts = ("vqkit", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _rank(module: str) -> int | None:
    """The layer index of a vqkit module (its own or its package's), None if it is in none."""
    rel = "__init__" if module == "vqkit" else module.removeprefix("vqkit.")
    for rank, (_, members) in enumerate(LAYERS):
        if any(rel == m or rel.startswith(m + ".") for m in members):
            return rank
    return None


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The absolute names a ``from ... import`` statement of ``module`` reaches."""
    if node.level == 0:
        base = node.module or ""
    else:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1] + ([node.module] if node.module else [])
        base = ".".join(parts)
    # `from . import x` may import the submodule x.
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    return subs or [base]


def _imports(module: str):
    """(name, eager) for every import of ``module``; eager: at module level, not in a function."""
    tree = ast.parse(MODULES[module].read_text())
    lazy = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = _resolve(module, node)
        else:
            continue
        for name in names:
            yield name, id(node) not in lazy


def test_every_module_is_in_one_layer():
    unplaced = [m for m in MODULES if _rank(m) is None]
    assert not unplaced, f"place these modules in a layer of LAYERS: {unplaced}"
    members = [m for _, ms in LAYERS for m in ms]
    stale = [m for m in members
             if not (SRC / f"{m}.py").exists() and not (SRC / m / "__init__.py").exists()]
    assert not stale, f"LAYERS names modules that no longer exist: {stale}"
    assert len(members) == len(set(members)), "a module is in two layers"


def test_imports_point_down_the_layers():
    bad = []
    for module in MODULES:
        rank = _rank(module)
        if rank is None:  # reported by test_every_module_is_in_one_layer
            continue
        for name, eager in _imports(module):
            if name.split(".")[0] != "vqkit":
                continue
            if not eager and any(name == x or name.startswith(x + ".")
                                 for x in LAZY_EXPORTS.get(module, ())):
                continue
            target = _rank(name)
            if target is None or target > rank:
                bad.append(f"{module} ({LAYERS[rank][0]}) imports {name} "
                           f"({'no layer' if target is None else LAYERS[target][0]})")
    assert not bad, "\n".join(bad)


def test_core_imports_only_torch_numpy_and_the_standard_library():
    bad = []
    for module in MODULES:
        if _rank(module) is None or _rank(module) >= CORE_LAYERS:
            continue
        for name, _ in _imports(module):
            top = name.split(".")[0]
            if top != "vqkit" and top not in CORE_EXTERNAL:
                bad.append(f"{module} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_checks_see_a_violation(tmp_path, monkeypatch):
    """The checks above are not vacuous: a core module that reaches up is found."""
    fake = tmp_path / "fake.py"
    fake.write_text("import tqdm\nfrom .training import loop\n")
    monkeypatch.setitem(MODULES, "vqkit.types", fake)
    found = dict(_imports("vqkit.types"))
    assert found == {"tqdm": True, "vqkit.training.loop": True}
    assert _rank("vqkit.training.loop") > _rank("vqkit.types")
    assert "tqdm" not in CORE_EXTERNAL


def test_import_vqkit_loads_only_the_core():
    # torch itself may import tqdm (torch.hub), so forget what torch and numpy loaded first:
    # whatever of the list is back after `import vqkit` was imported by vqkit.
    code = (
        "import sys, torch, numpy\n"
        f"heavy = {NOT_AT_IMPORT!r}\n"
        "for m in [m for m in sys.modules if m.split('.')[0] in heavy]:\n"
        "    del sys.modules[m]\n"
        "import vqkit\n"
        f"upper = tuple('vqkit.' + p for p in {UPPER_PACKAGES!r})\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "                        or m.startswith(upper))))\n"
        "vqkit.fit_space_filling\n"
        "assert 'vqkit.training.space_filling' in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"`import vqkit` loaded:\n{out.stdout}"


def test_lazy_exports_are_public():
    from vqkit import fit_space_filling
    from vqkit.training.space_filling import fit_space_filling as direct

    assert fit_space_filling is direct
    assert "fit_space_filling" in vqkit.__all__ and "fit_space_filling" in dir(vqkit)
    # The paper's growth schedule itself stays a plain description in the core.
    assert _rank("vqkit.space_filling.growth") < CORE_LAYERS


def test_import_has_no_side_effects():
    code = ("import torch; n = torch.get_num_threads(); import vqkit; "
            "assert torch.get_num_threads() == n; import logging; "
            "assert not logging.getLogger().handlers")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out.stderr
