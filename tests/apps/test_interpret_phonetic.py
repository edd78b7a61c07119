"""sfvq-phonetic: the quick reproduction end to end (VQ-VAE, SFVQ, alignment, analyses, report)."""

from __future__ import annotations

import json

import pytest
import torch

from vqkit.experiments import registry, sfvq_phonetic

torch.set_num_threads(1)


def test_registered_and_reports_without_results(tmp_path):
    assert registry()["sfvq-phonetic"] is sfvq_phonetic.REPRODUCTION
    assert "No results yet" in sfvq_phonetic.REPRODUCTION.report(tmp_path)


def test_quick_run_writes_json_plots_and_report(tmp_path, monkeypatch):
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("matplotlib")
    from vqkit.apps.latent.alignment import ASTERISK_TEXT, LIBRIVOX

    if not ASTERISK_TEXT.is_file() or not LIBRIVOX.is_dir():
        pytest.skip("asterisk-core-sounds-en / pocketsphinx-testdata are not installed")
    monkeypatch.setenv("VQKIT_CACHE", str(tmp_path / "cache"))
    path = sfvq_phonetic.run(tmp_path, quick=True, seed=0, allow_dirty=True)
    rec = json.loads(path.read_text())
    assert rec["quick"] is True and rec["seeds"] == [0]
    res = rec["results"]
    a = res["analysis"]
    k = 2 ** res["config"]["bits"]
    assert res["data"]["aligned_utterances"] == sfvq_phonetic.QUICK.aligned_limit
    assert sum(res["data"]["group_counts"].values()) == res["data"]["labelled_frames_20ms"]
    # The SFVQ codebook is an ordered curve: consecutive corners are much closer than
    # random pairs; the VQ-VAE's codebook has no order (ratio near 1).
    assert a["ordering"]["sfvq"]["pair_over_consecutive"] > 2.0
    assert a["ordering"]["vq"]["pair_over_consecutive"] < 1.5
    for name in ("sfvq", "vq"):
        for _g, r in a[name]["groups"].items():
            assert 0.0 < r["share"] <= 1.0 and 0 <= r["start"] <= k - a["range_width"]
        jsd = torch.tensor(a[name]["jsd_window7"]["matrix"])
        assert torch.allclose(jsd, jsd.T) and float(jsd.max()) <= 1.0
    # Relabelling the cells leaves the single-cell purity unchanged (same partition).
    assert a["sfvq_permuted"]["cell_purity"] == pytest.approx(a["sfvq"]["cell_purity"])
    for png in sfvq_phonetic.PLOTS.values():
        assert (tmp_path / png).stat().st_size > 1000
    md = sfvq_phonetic.REPRODUCTION.report(tmp_path)
    assert f"{a['sfvq']['mean_share']:.3f}" in md and "sfvq_phonetic_track.png" in md
