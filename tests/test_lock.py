"""The lock files: requirements/lock.txt pins every Python package (the CPU torch pin works),
requirements/debian-lock.txt every Debian data package, and this environment matches them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from .script_module import load_script

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
DEBIAN_LOCK = ROOT / "requirements" / "debian-lock.txt"


def _script():
    return load_script(ROOT / "scripts" / "lock.py", "lock_script")


def _pins(path: Path, sep: str) -> dict[str, str]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split(sep, 1) for ln in lines)


def test_python_lock_pins_freeze_output_without_local_labels_pip_or_the_project():
    freeze = ("# Editable Git install with no remote (vqkit==0.1.0)\n-e /work/main\n"
              "torch==2.13.0+cpu\nPillow==13.0.0\npip==26.3\nvqkit==0.1.0\n"
              "torch-einops-utils==0.2.0\nnumpy==2.4.6\n")
    assert _script().python_lock(freeze) == [
        "numpy==2.4.6", "Pillow==13.0.0", "torch==2.13.0", "torch-einops-utils==0.2.0"]


def test_python_lock_refuses_what_it_cannot_pin():
    with pytest.raises(ValueError, match="not name==version"):
        _script().python_lock("foo @ file:///tmp/foo.whl\n")


def test_the_lock_is_the_one_pin_file_and_keeps_the_cpu_torch_pin():
    pins = _pins(LOCK, "==")
    assert pins["torch"] == "2.13.0"  # no +cpu: pip takes the CPU build from local disk
    assert "numpy" in pins and "setuptools" in pins and "pip" not in pins
    assert "vqkit" not in {name.lower() for name in pins}
    assert not any("+" in v for v in pins.values())
    assert not (ROOT / "constraints.txt").exists()  # one source of truth
    makefile = (ROOT / "Makefile").read_text()
    assert "-c $(LOCK)" in makefile and "LOCK := requirements/lock.txt" in makefile


def test_this_environment_has_the_locked_versions_of_the_libraries_results_record():
    from vqkit.training.versions import LIBRARIES

    pins = {name.lower(): v for name, v in _pins(LOCK, "==").items()}
    for dists in LIBRARIES.values():
        for dist in dists:
            try:
                installed = version(dist)
            except PackageNotFoundError:
                continue
            assert dist in pins, f"{dist} is installed but not in {LOCK.name}: run make lock"
            assert installed.split("+")[0] == pins[dist], (dist, installed, pins[dist])


def test_the_debian_lock_covers_the_data_packages_exactly():
    from vqkit.training.versions import read_package_list

    pins = _pins(DEBIAN_LOCK, "=")
    assert list(pins) == read_package_list(ROOT / "debian-packages.txt")
    assert all(pins.values())
