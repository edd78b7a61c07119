"""``torchrun --nproc_per_node 2 -m vqkit fit``: a 2-process run resumes bit-identically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vqkit.training.checkpoint import load_checkpoint


def _torchrun(*argv: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "vqkit", "fit", *argv, "--device", "cpu", "--threads", "1", "-q"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow  # three torchrun launches of two processes each: minutes on a loaded machine
def test_two_process_fit_resumes_exactly(tmp_path: Path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((800, 5)).astype(np.float32))
    common = [str(tmp_path / "x.npy"), "--quantizer", "vq", "--bits", "4", "--batch", "16",
              "--log-every", "5", "--replace-every", "5"]
    whole, part = str(tmp_path / "whole.ckpt"), str(tmp_path / "part.ckpt")
    _torchrun(*common, "--steps", "20", "-o", whole)
    a = load_checkpoint(whole)
    assert len(a.rng) == 2 and not torch.equal(a.rng[0]["torch"], a.rng[1]["torch"])
    _torchrun(*common, "--steps", "9", "-o", part)
    _torchrun(str(tmp_path / "x.npy"), "--resume", part, "--steps", "20")
    b = load_checkpoint(part)
    assert b.step == 20
    for key, value in a.quantizer.state_dict().items():
        assert torch.equal(value, b.quantizer.state_dict()[key]), key
