"""vqkit.plotting: Agg figures, atomic PNG writes, a clear error without matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from vqkit import plotting

PNG = b"\x89PNG\r\n\x1a\n"


def test_save_png_writes_a_png_and_leaves_no_temporary_file(tmp_path):
    pytest.importorskip("matplotlib")
    fig, ax = plotting.figure()
    ax.plot([0, 1], [1, 0])
    path = plotting.save_png(fig, tmp_path / "sub" / "a.png")
    assert path == tmp_path / "sub" / "a.png"
    assert path.read_bytes()[:8] == PNG
    assert [p.name for p in path.parent.iterdir()] == ["a.png"]
    assert not plotting.pyplot().get_fignums()  # the figure was closed


def test_redrawing_gives_the_same_bytes(tmp_path):
    pytest.importorskip("matplotlib")
    a = plotting.usage_histogram([5, 0, 3, 1], tmp_path / "a.png")
    b = plotting.usage_histogram([5, 0, 3, 1], tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()  # no date in the metadata


def test_a_failed_save_keeps_the_old_file(tmp_path):
    """Atomic: a savefig that dies half-way leaves the previous PNG as it was."""
    pytest.importorskip("matplotlib")
    path = plotting.usage_histogram([1, 2], tmp_path / "u.png")
    before = path.read_bytes()
    fig, _ = plotting.figure()

    def broken(f, **kwargs):
        f.write(b"half a png")
        raise RuntimeError("disk full")

    fig.savefig = broken
    with pytest.raises(RuntimeError, match="disk full"):
        plotting.save_png(fig, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["u.png"]
    assert not plotting.pyplot().get_fignums()


def test_bad_arguments_are_refused(tmp_path):
    pytest.importorskip("matplotlib")
    fig, _ = plotting.figure()
    with pytest.raises(ValueError, match=r"\.png"):
        plotting.save_png(fig, tmp_path / "a.jpg")
    assert not plotting.pyplot().get_fignums()
    with pytest.raises(ValueError, match="0 x 1"):
        plotting.figure(0, 1)
    with pytest.raises(ValueError, match="square"):
        plotting.matrix(torch.zeros(2, 3), tmp_path / "m.png")
    with pytest.raises(ValueError, match="3 entries"):
        plotting.matrix(torch.zeros(3, 3), tmp_path / "m.png", labels=["a"])
    with pytest.raises(ValueError, match="at least one"):
        plotting.label_histograms({}, tmp_path / "h.png")
    assert not (tmp_path / "m.png").exists() and not (tmp_path / "h.png").exists()


def test_every_plot_kind_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    written = [
        plotting.training_curves([{"step": 1, "mse": 2.0}, {"step": 2, "mse": 1.0}],
                                 tmp_path / "c.png"),
        plotting.rate_distortion({"VQ": [(8, 1.0), (16, 0.5)]}, tmp_path / "rd.png"),
        plotting.label_histograms({"a": torch.rand(8)}, tmp_path / "h.png", title="t"),
        plotting.matrix(torch.rand(3, 3), tmp_path / "m.png", labels=list("abc"), log2=True),
    ]
    assert all(p.read_bytes()[:8] == PNG for p in written)


def test_without_matplotlib_the_error_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        plotting.pyplot()
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        plotting.usage_histogram([1, 2], tmp_path / "u.png")
    assert not (tmp_path / "u.png").exists()


def test_importing_plotting_and_reporting_does_not_load_matplotlib():
    code = ("import sys, vqkit.plotting, vqkit.reporting; "
            "print(any(m.split('.')[0] == 'matplotlib' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
