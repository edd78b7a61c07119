"""aq-toy reproduction: the quick version keeps the paper's ordering AVQ < RVQ < PVQ on
correlated data, and report() renders our numbers beside the paper's."""

from __future__ import annotations

import json

import pytest
import torch

from vqkit.experiments import aq_toy

torch.set_num_threads(1)


def test_correlated_data_is_rank_16_and_uncorrelated_is_white():
    g = torch.Generator().manual_seed(0)
    corr = aq_toy.make_data("correlated", 4000, g)
    assert torch.linalg.matrix_rank(corr[:500]).item() == aq_toy.LATENT
    white = aq_toy.make_data("uncorrelated", 20000, g)
    cov = white.T @ white / white.shape[0]
    assert (cov - torch.eye(64)).abs().max() < 0.1
    with pytest.raises(ValueError, match="kind"):
        aq_toy.make_data("pink", 3, g)


def test_quick_run_orders_avq_rvq_pvq_and_reports(tmp_path):
    path = aq_toy.run(tmp_path, quick=True, seed=0, allow_dirty=True)
    payload = json.loads(path.read_text())
    corr = payload["results"]["mse"]["correlated"]
    assert corr["AVQ"][0] < corr["RVQ"][0] < corr["PVQ"][0], corr
    # The data's total variance is about 64 (Gaussian, 64 unit-variance dims): 12 bits must
    # already remove most of it on the rank-16 correlated data.
    assert corr["AVQ"][0] < 0.5 * 64
    text = aq_toy.report(tmp_path)
    assert "| 12 |" in text and "5.012" in text  # the paper's AVQ value beside ours
    assert f"{corr['AVQ'][0]:.4g}" in text
    assert "AVQ < RVQ < PVQ" in text


def test_report_without_results(tmp_path):
    assert "No results yet" in aq_toy.report(tmp_path)


@pytest.mark.slow
def test_full_run_keeps_the_ordering_at_every_bitrate(tmp_path):
    path = aq_toy.run(tmp_path, quick=False, seed=0, allow_dirty=True)
    payload = json.loads(path.read_text())
    corr = payload["results"]["mse"]["correlated"]
    for a, r, p in zip(corr["AVQ"], corr["RVQ"], corr["PVQ"], strict=True):
        assert a < r < p


def test_a_rerun_resumes_only_from_the_same_source_and_lists_each_run(tmp_path, monkeypatch):
    from vqkit.training import provenance
    from vqkit.training.source_state import SourceState

    def source(diff):
        state = SourceState(commit="c" * 40, dirty=diff is not None, diff_sha256=diff,
                            untracked_src=())
        monkeypatch.setattr(provenance.SourceState, "read", classmethod(lambda cls: state))

    source(None)
    first = json.loads(aq_toy.run(tmp_path, quick=True, seed=0).read_text())
    jobs = list(first["results"]["by_job"])
    assert [r["jobs"] for r in first["runs"]] == [jobs]
    again = json.loads(aq_toy.run(tmp_path, quick=True, seed=0).read_text())
    assert [r["jobs"] for r in again["runs"]] == [jobs, []]  # resumed: nothing retrained
    assert again["results"]["by_job"] == first["results"]["by_job"]
    source("d" * 64)  # other source: start over, one run
    other = json.loads(aq_toy.run(tmp_path, quick=True, seed=0, allow_dirty=True).read_text())
    assert [r["jobs"] for r in other["runs"]] == [jobs]
    assert other["runs"][0]["diff_sha256"] == "d" * 64
