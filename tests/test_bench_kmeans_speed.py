"""benchmarks/kmeans_speed.py end to end on a slice of Fashion-MNIST: FAISS and vqkit k-means
from the same random rows reach the same error, and the JSON records every time and ratio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .script_module import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kmeans_speed.py"


def test_kmeans_benchmark_runs_and_both_sides_reach_the_same_error(tmp_path):
    pytest.importorskip("faiss")
    from vqkit.data.fashion_mnist import load_fashion_mnist

    try:
        load_fashion_mnist("train")
    except (FileNotFoundError, OSError) as err:
        pytest.skip(str(err))
    bench = load_script(SCRIPT, "kmeans_speed")
    out = bench.main(["--vectors", "3000", "--centres", "16", "--iters", "4", "--dim-steps",
                      "3", "--repeats", "1", "--allow-dirty", "--out",
                      str(tmp_path / "bench.json")])
    data = json.loads(Path(out).read_text())["results"]
    names = {"faiss_progressive", "vqkit_progressive", "faiss_plain", "vqkit_plain",
             "torch_addmm_only"}
    assert set(data["cpu_seconds"]) == names
    assert all(v > 0 for v in data["cpu_seconds"].values())
    assert set(data["mse"]) == names - {"torch_addmm_only"}
    # The same Lloyd iterations from the same rows: the same clusters, up to fp32 rounding.
    assert data["mse"]["vqkit_plain"] == pytest.approx(data["mse"]["faiss_plain"], rel=1e-3)
    # The progressive k-means of both start from different random rows: the same quality.
    assert data["mse"]["vqkit_progressive"] == pytest.approx(data["mse"]["faiss_progressive"],
                                                             rel=0.05)
    assert data["ratios"]["vqkit_over_faiss_plain"] == pytest.approx(
        data["cpu_seconds"]["vqkit_plain"] / data["cpu_seconds"]["faiss_plain"])
    assert (data["vectors"], data["dim"]) == (3000, 784)
