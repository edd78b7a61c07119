"""The quantizer tests pass on ``fakegpu`` (scripts/fakegpu.py), a CPU-backed stand-in
accelerator that raises where CUDA would on a tensor left on the CPU: device mistakes are found
without a GPU. Slow (about a minute): ``pytest -m slow tests/test_fakegpu.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The tests that take the `device` fixture (the list scripts/gpu-check.sh runs on a GPU).
QUANTIZER_TESTS = [
    "tests/test_contract.py", "tests/test_vector.py", "tests/test_residual.py",
    "tests/test_product.py", "tests/test_additive.py", "tests/test_space_filling.py",
    "tests/test_curve.py", "tests/test_search.py", "tests/test_beam.py",
    "tests/test_estimators.py", "tests/test_codebooks.py", "tests/test_kmeans.py",
]


@pytest.mark.slow
def test_quantizer_tests_leave_no_tensor_on_the_cpu():
    path = [str(REPO / "scripts"), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "fakegpu",
         "--device", "fakegpu", *QUANTIZER_TESTS],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
