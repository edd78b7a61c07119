"""`vqkit demo` end to end with a few steps: table, JSON and plot are written."""

from __future__ import annotations

import json

from vqkit.cli.main import main


def test_demo_runs_and_writes_its_outputs(tmp_path, capsys):
    code = main(["demo", "--steps", "4", "--threads", "1", "--no-progress",
                 "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    for label in ("NSVQ + replacement", "STE + EMA", "Rotation trick", "DiVeQ"):
        assert label in printed
    rows = json.loads((tmp_path / "demo.json").read_text())["results"]
    assert len(rows) == 5
    for row in rows:
        assert row["test_mse"] > 0 and 0 < row["usage"] <= 1
        assert abs(row["psnr_db"] - (-10 * __import__("math").log10(row["test_mse"]))) < 1e-9
    assert (tmp_path / "demo_test_mse.png").stat().st_size > 1000


def test_demo_rejects_bad_arguments(tmp_path, capsys):
    assert main(["demo", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err
