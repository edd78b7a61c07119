"""sfvq-generative: the quick reproduction end to end (mapped VAE, SFVQ 2-4 bits, edits, report)."""

from __future__ import annotations

import json

import pytest
import torch

from vqkit.experiments import registry, sfvq_generative

torch.set_num_threads(1)


def test_registered_and_reports_without_results(tmp_path):
    assert registry()["sfvq-generative"] is sfvq_generative.REPRODUCTION
    assert "No results yet" in sfvq_generative.REPRODUCTION.report(tmp_path)


def test_quick_run_writes_json_plots_and_report(tmp_path):
    pytest.importorskip("matplotlib")
    from vqkit.data.fashion_mnist import ROOT

    if not ROOT.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    path = sfvq_generative.run(tmp_path, quick=True, seed=0, allow_dirty=True)
    rec = json.loads(path.read_text())
    res = rec["results"]
    assert rec["quick"] is True and list(res["purity"]) == ["2", "3", "4"]
    for _b, r in res["purity"].items():
        for name in ("sfvq", "vq", "sfvq_permuted"):
            assert all(0.1 <= v <= 1.0 for v in r[name].values())  # >= chance for 10 classes
        # The same cells in another order have the same single-cell purity.
        assert r["sfvq_permuted"]["width1"] == pytest.approx(r["sfvq"]["width1"])
        assert r["mse"]["sfvq_projection"] > 0 and r["mse"]["vq"] > 0
    d = res["directions"]
    assert len(d["max_abs_cos_with_top10_pcs"]) == 7
    assert all(0.0 <= c <= 1.0 + 1e-6 for c in d["max_abs_cos_with_top10_pcs"])
    for png in sfvq_generative.PLOTS.values():
        assert (tmp_path / png).stat().st_size > 500
    md = sfvq_generative.REPRODUCTION.report(tmp_path)
    assert f"{res['purity']['4']['sfvq']['width4']:.3f}" in md
