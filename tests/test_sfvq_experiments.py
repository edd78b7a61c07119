"""The sfvq-toy and porcupine reproductions: the quick toy run, the report, clear errors."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import torch

from vqkit.experiments import porcupine, sfvq_toy

torch.set_num_threads(1)


def test_sfvq_toy_quick_run_shows_both_claims(tmp_path):
    path = sfvq_toy.run(tmp_path, quick=True, seed=0, allow_dirty=True)
    rec = json.loads(path.read_text())
    assert rec["seeds"] == [0] and rec["quick"] is True and "git_commit" in rec
    res = rec["results"]
    assert res["codebook_size"] == 16
    for split in ("train", "test"):
        r = res[split]
        # Ordered curve: consecutive corners closer than random pairs (a random order gives ~1).
        assert r["pair_over_consecutive"] > 1.1
        assert r["mean_consecutive_distance_random_order"] > r["mean_consecutive_distance"]
        assert r["mse_projection_exact"] <= r["mse_projection_two_segment"] + 1e-7
        assert r["mse_projection_two_segment"] < r["mse_curve_vertices_only"]
    # Held-out data: projection onto the curve beats k-means with the same K.
    assert res["test"]["mse_projection_two_segment"] < res["test"]["mse_plain_vq_kmeans"]
    md = sfvq_toy.report(tmp_path)
    assert "pairs / consecutive" in md and f"{res['train']['pair_over_consecutive']:.4f}" in md


def test_reports_without_results(tmp_path):
    assert "No results yet" in sfvq_toy.report(tmp_path)
    assert "No results yet" in porcupine.report(tmp_path)


def test_porcupine_summary_and_report_from_synthetic_embeddings(tmp_path):
    """The pipeline of the reproduction on Gaussian 'embeddings' (no resemblyzer needed)."""
    gen = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(1500, 16, generator=gen) * torch.linspace(
        2, 0.3, 16) + 1.0, dim=1)
    cfg = dataclasses.replace(porcupine.QUICK, bits=(4,), seeds=1, epochs_per_stage=3)
    per_seed = [porcupine.one_seed(emb, cfg, s) for s in (0, 1)]
    summary = porcupine._summary(per_seed, [4])
    assert summary["4"]["normalised_lower_than_vq_in_every_seed"] == {
        "std": True, "kl_divergence": True}
    rec = {"command": "x", "seeds": [0, 1], "wall_seconds": 1.0, "git_commit": "abc",
           "environment": {"threads": 1},
           "results": {"config": dataclasses.asdict(cfg), "summary": summary,
                       "paper_4bit": porcupine.PAPER_4BIT,
                       "data": {"utterances": 1500, "dim": 16, "speakers": 1,
                                "corpora": ["synthetic"], "train": 750, "test": 750}}}
    (tmp_path / "porcupine.json").write_text(json.dumps(rec))
    md = porcupine.report(tmp_path)
    assert "| 4 | VQ, paper | 130.8 |" in md and "every bitrate: **yes**" in md


def test_porcupine_names_the_missing_package(tmp_path, monkeypatch):
    from vqkit.data import speech
    from vqkit.data.speaker_embeddings import speaker_embeddings

    monkeypatch.setitem(sys.modules, "resemblyzer", None)  # import resemblyzer -> ImportError
    utt = speech.Utterance(tmp_path / "x.wav", "s", "c")
    with pytest.raises(ImportError, match="pip install resemblyzer"):
        speaker_embeddings([utt], cache=tmp_path / "cache.pt", progress=False)
