"""The speech-envelope reproduction module: protocol, and the quick run end to end (slow)."""

from __future__ import annotations

import json

import pytest

from vqkit.experiments import speech_envelope


def test_module_keeps_the_reproduction_protocol(tmp_path):
    assert speech_envelope.REPRODUCTION.name == "speech-envelope"
    assert speech_envelope.REPRODUCTION.result_files == ("speech_envelope.json",)
    assert "No results yet" in speech_envelope.report(tmp_path)


@pytest.mark.slow
def test_quick_run_writes_json_plot_and_report(tmp_path):
    path = speech_envelope.run(tmp_path, quick=True, seed=0, allow_dirty=True)
    record = json.loads(path.read_text())
    res = record["results"]
    assert record["command"].startswith("vqkit reproduce speech-envelope")
    assert res["sample_rate"] == 8000
    rvq = [r for r in res["rate_distortion"] if r.get("kind") == "rvq"]
    assert {r["estimator"] for r in rvq} == {"nsvq", "ste"}
    lsd = {(r["estimator"], r["bits"]): r["lsd_db"] for r in rvq}
    assert lsd[("nsvq", 16)] < lsd[("nsvq", 8)]
    assert len(res["world_codec"]) >= 3 and all(0 < r["stoi"] <= 1 for r in res["world_codec"])
    assert (tmp_path / speech_envelope.PLOT).is_file()
    assert "| system | kbit/s |" in speech_envelope.report(tmp_path)
