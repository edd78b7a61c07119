"""One-configuration smoke runs of the two image-codec reproductions and their reports."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")


def test_estimators_quick_run_and_report(tmp_path):
    from vqkit.experiments import image_estimators as exp

    path = exp.run(tmp_path, quick=True, allow_dirty=True)
    data = json.loads(path.read_text())
    rows = data["results"]["rows"]
    assert [(r["method"], r["bits"]) for r in rows] == [("NSVQ", 6)]
    assert rows[0]["train_seconds"] >= 0 and 0 < rows[0]["ssim"] <= 1
    assert data["environment"]["threads"] == 1
    assert all((tmp_path / p).is_file() for p in exp.PLOTS)
    text = exp.report(tmp_path)
    assert "CIFAR-10" in text and "paper NSVQ" in text and "22.95" in text  # paper, 6 bits


def test_multicodebook_quick_run_and_report(tmp_path):
    from vqkit.experiments import image_multicodebook as exp

    exp.run(tmp_path, quick=True, allow_dirty=True)
    text = exp.report(tmp_path)
    assert "| 12 |" in text and "23.57" in text  # the paper's RVQ PSNR at 12 bits
    assert "Search complexity" in text
