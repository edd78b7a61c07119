"""Shared fixtures. Tests run on one thread: the machine has 2 cores.

``pytest --device cuda`` runs every test that takes the ``device`` fixture (the quantizer,
search, estimator and numerics tests) on that device; the default is ``cpu``. Tests that do
not take the fixture (apps, CLI, data) stay on the CPU.
"""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default="cpu",
        help="torch device for the quantizer tests that take the `device` fixture "
        "(default: cpu; e.g. cuda, cuda:1)",
    )


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """The device given by ``--device``; an unavailable device fails loudly, never skips."""
    dev = torch.device(pytestconfig.getoption("--device"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda was given but torch.cuda.is_available() is False")
    if dev.type == "cuda":
        # Lets cuBLAS be deterministic when a test asks for it (see `deterministic`); it must be
        # set before the first cuBLAS call of the process.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return dev


@pytest.fixture
def deterministic(device: torch.device):
    """Deterministic kernels for a test that compares two runs bit for bit. On CUDA, index_add
    and the backward of indexing accumulate with atomics in a varying order unless asked not
    to; on the CPU nothing changes."""
    if device.type == "cpu":
        yield
        return
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def small_whole_image_model(tmp_path):
    """An untrained whole-image codec model (3 stages of 16 codewords, 4-dim latents) with a
    skewed prior, saved: ``(path, model)``. Skips without constriction (the ``image`` extra)."""
    pytest.importorskip("constriction")
    from vqkit.apps.image_codec.config import ImageModelConfig
    from vqkit.apps.image_codec.network import WholeImageModel, save_image_model

    torch.manual_seed(0)
    model = WholeImageModel(ImageModelConfig(hidden=8, latent_dim=4, codebook_size=16,
                                             stages=3)).eval()
    model.prior.fit_(torch.arange(48).reshape(3, 16))
    save_image_model(model, tmp_path / "whole.pt")
    return tmp_path / "whole.pt", model
