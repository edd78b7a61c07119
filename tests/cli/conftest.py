"""Helpers of the command-line tests: run ``main(argv)`` and capture what it printed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqkit.cli.main import main


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def vqkit(capsys):
    """``vqkit(*argv) -> (exit code, stdout, stderr)``."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def vectors(tmp_path):
    """600 x 6 float32 vectors in ``x.npy`` (a mixture of 12 Gaussian clusters)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((12, 6)) * 3
    x = centres[rng.integers(0, 12, 600)] + 0.3 * rng.standard_normal((600, 6))
    path = tmp_path / "x.npy"
    np.save(path, x.astype(np.float32))
    return path
