"""benchmarks/layer_speed.py: its options, and its GPU measuring path run against CPU stand-ins
for the torch.cuda calls (no GPU needed; scripts/gpu-check.sh runs it for real)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch

from .script_module import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "layer_speed.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT, "layer_speed")


def test_shapes_option_parses_and_rejects(bench):
    assert bench.parse_shapes("65536x64x16384,65536x256x65536") == [
        (65536, 64, 16384), (65536, 256, 65536)]
    assert bench.parse_shapes(" 8X4x2 ") == [(8, 4, 2)]
    for bad in ("64x16384", "0x4x2", "axbxc", "8x4x2,"):
        with pytest.raises(argparse.ArgumentTypeError, match="NxDxK"):
            bench.parse_shapes(bad)


def test_cuda_device_without_cuda_is_a_usage_error(bench, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(SystemExit) as info:
        bench.main(["--device", "cuda", "--dtype", "float32", "bfloat16",
                    "--shapes", "64x4x8", "--out", "unused.json"])
    assert info.value.code == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--dtype", "float16"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_measuring_path_with_stand_ins(bench, monkeypatch, dtype):
    calls = []
    for name in ("synchronize", "empty_cache", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, _n=name: calls.append(_n))
    sizes = iter([1000, 1500])  # memory_allocated after the build, then max during step one
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: next(sizes))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: next(sizes))
    cpu = torch.device("cpu")
    # The peer is in the bench extra, not in dev.
    has_peer = importlib.util.find_spec("vector_quantize_pytorch") is not None
    impls = [i for i in bench.IMPLS if has_peer or not i.startswith("VQP")]
    for impl in impls:
        sizes = iter([1000, 1500])
        got = bench.measure_cuda(impl, 64, 4, 8, 2, cpu, dtype)
        assert got.get("peak_bytes") == 500 and got["seconds"] > 0, (impl, got)
    assert calls.count("reset_peak_memory_stats") == len(impls)
    failed = bench.measure_cuda("no such impl", 64, 4, 8, 2, cpu, dtype)
    assert "ValueError" in failed["error"]
