"""``torchrun --nproc_per_node 2 -m vqkit fit ...`` end to end, as a user runs it.

Two processes train on their shards (gloo on CPU); rank 0 alone prints and writes. The
checkpoint it writes must hold the quantizer that gives the reported final MSE, and that
quantizer must have learned the clustered data. About 25 s on the 2-core development machine
under load (in the default run: it is the acceptance test of `torchrun ... vqkit fit`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vqkit.training.checkpoint import load_quantizer

from .models import clustered

TIMEOUT = 150


def torchrun() -> list[str]:
    exe = Path(sys.executable).parent / "torchrun"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def test_torchrun_two_processes_fit(tmp_path):
    data = clustered(4000, seed=21, clusters=16)
    torch.save(data, tmp_path / "vectors.pt")
    cmd = [*torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "vqkit", "fit",
           "vectors.pt", "--quantizer", "vq", "--bits", "4", "--steps", "150", "--batch", "128",
           "--lr", "0.01", "--threads", "1", "-q", "-o", "vq.ckpt", "--json", "fit.json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"torchrun did not finish within {TIMEOUT} s: {err.stdout}\n{err.stderr}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoint: vq.ckpt") == 1  # printed by rank 0 only
    result = json.loads((tmp_path / "fit.json").read_text())
    record = result.get("results", result)
    assert record["world_size"] == 2
    quantizer, _ = load_quantizer(tmp_path / "vq.ckpt")
    quantizer.eval()
    with torch.no_grad():
        mse = (quantizer(data).quantized - data).pow(2).sum(dim=1).mean().item()
    assert mse == pytest.approx(record["final"]["mse"], rel=1e-4)
    # 16 clusters with noise 0.3 per coordinate (1.44 per vector) and a 16-entry codebook.
    variance = data.var(dim=0).sum().item()
    assert mse < 0.1 * variance, (mse, variance)
