"""The demo's second part: every multi-codebook and space-filling quantizer on photo patches."""

from __future__ import annotations

import pytest

from vqkit.apps import tour


def test_tour_runs_every_quantizer_and_the_codes_file_is_exact(tmp_path):
    pytest.importorskip("skimage")
    result = tour.run_tour(tmp_path, steps=3, progress=False)
    labels = [r["label"] for r in result["rows"]]
    assert labels == [label for label, cls, _ in tour.ROWS if cls in tour.QUANTIZERS]
    bits = {r["label"]: r["bits"] for r in result["rows"]}
    assert bits["VQ K=256"] == 8 and bits.get("Residual VQ 4x64", 24) == 24
    for row in result["rows"]:
        assert 0 < row["test_mse"] < 0.1 and 0 < row["usage"] <= 1
    c = result["codes_file"]
    assert c["exact"] and c["payload_bytes"] == (c["vectors"] * 24 + 7) // 8
    text = tour.format_tour(result)
    assert "decoded exactly" in text and "Residual VQ" in text
