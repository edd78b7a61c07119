"""Progress of the long phases: k-means before ``fit`` trains, ``encode`` / ``decode`` /
``eval`` in chunks (the same results as all at once), bars only on a terminal."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import torch

import vqkit as vq
from vqkit.cli.main import main
from vqkit.io.codes_file import read_codes
from vqkit.training.evaluate import evaluate
from vqkit.training.fit import fit_trainer

#: What a tqdm bar writes: the percentage bar and carriage-return redraws.
BAR_MARKS = ("%|", "\r", "it/s", "vector/s")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal():
    """``terminal(*argv) -> (exit code, what went to stderr)`` with stderr a terminal."""

    def run(*argv: str) -> tuple[int, str]:
        screen = _Terminal()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "stderr", screen)
            code = main([str(a) for a in argv])
        return code, screen.getvalue()

    return run


@pytest.fixture
def quantizers(tmp_path, vectors):
    """``{name: path}`` of saved quantizers of 6-d vectors, k-means initialised."""
    x = torch.from_numpy(np.load(vectors))
    made = {"vq": vq.VectorQuantizer(6, 16), "rvq": vq.ResidualVQ(6, 8, 3),
            "pvq": vq.ProductVQ(6, 8, 2), "sfvq": vq.SpaceFillingVQ(6, 12)}
    paths = {}
    for name, q in made.items():
        q.init_codebook_(x, generator=torch.Generator().manual_seed(0))
        paths[name] = tmp_path / f"{name}.pt"
        vq.save(q, paths[name])
    return paths


@pytest.mark.parametrize("name", ["vq", "rvq", "pvq", "sfvq"])
def test_encode_decode_in_chunks_equal_the_library_all_at_once(vqkit, vectors, quantizers,
                                                                tmp_path, name):
    q = vq.load(quantizers[name]).eval()
    x = torch.from_numpy(np.load(vectors)).reshape(20, 30, 6)  # leading axes are kept
    np.save(tmp_path / "x3.npy", x.numpy())
    codes, out = tmp_path / "x.vqc", tmp_path / "y.npy"
    assert vqkit("encode", quantizers[name], tmp_path / "x3.npy", codes, "--chunk", "7")[0] == 0
    assert vqkit("decode", quantizers[name], codes, out, "--chunk", "11")[0] == 0
    indices = q.encode(x)
    assert torch.equal(read_codes(codes, q).indices, indices)
    assert torch.equal(torch.from_numpy(np.load(out)), q.decode(indices))


def test_eval_in_chunks_equals_the_library(vqkit, vectors, quantizers, tmp_path):
    q = vq.load(quantizers["rvq"])
    assert vqkit("eval", quantizers["rvq"], vectors, "--chunk", "7", "--json",
                 tmp_path / "e.json")[0] == 0
    got = json.loads((tmp_path / "e.json").read_text())["results"]
    whole = evaluate(q, torch.from_numpy(np.load(vectors)))
    assert got["vectors"] == whole["vectors"] == 600
    assert got["usage"] == whole["usage"] and got["perplexity"] == whole["perplexity"]
    assert got["mse"] == pytest.approx(whole["mse"], rel=1e-12)  # float64 sums, another order


def test_no_bars_when_stderr_is_not_a_terminal(vqkit, vectors, quantizers, tmp_path):
    ckpt, codes = tmp_path / "q.ckpt", tmp_path / "x.vqc"
    runs = [
        ("fit", vectors, "--bits", "3", "--steps", "20", "--batch", "64", "-o", ckpt),
        ("encode", quantizers["vq"], vectors, codes, "--chunk", "100"),
        ("decode", quantizers["vq"], codes, tmp_path / "y.npy", "--chunk", "100"),
        ("eval", quantizers["vq"], vectors, "--chunk", "100"),
    ]
    for argv in runs:
        code, _, err = vqkit(*argv)
        assert code == 0, err
        assert not any(mark in err for mark in BAR_MARKS), (argv[0], err)
    assert err == ""


def test_bars_on_a_terminal_end_at_the_total(terminal, vectors, quantizers, tmp_path):
    """The positive control of the test above: on a terminal the same commands draw bars, and
    each ends at its total (600 vectors; k-means: K seeded centres + 50 Lloyd iterations)."""
    ckpt, codes = tmp_path / "q.ckpt", tmp_path / "x.vqc"
    code, err = terminal("fit", vectors, "--bits", "3", "--steps", "20", "--batch", "64",
                         "-o", ckpt)
    assert code == 0, err
    assert err.index("fit: VectorQuantizer") < err.index("k-means init")  # says what runs first
    assert "58/58" in err and "20/20" in err and "eval: 100%" in err and "600/600" in err
    for argv in [("encode", quantizers["vq"], vectors, codes, "--chunk", "100"),
                 ("decode", quantizers["vq"], codes, tmp_path / "y.npy", "--chunk", "100"),
                 ("eval", quantizers["vq"], vectors, "--chunk", "100")]:
        code, err = terminal(*argv)
        assert code == 0 and f"{argv[0]}: 100%" in err and "600/600" in err, err
        code, err = terminal(*argv, "--quiet")
        assert code == 0 and err == ""


def test_fit_reports_kmeans_initialisation_to_its_callback(vectors):
    x = torch.from_numpy(np.load(vectors))
    settings = {"steps": 4, "batch": 32, "lr": 1e-3, "replace_every": 0,
                "replace_threshold": 0.01, "log_every": 2, "seed": 0, "init": "kmeans",
                "init_samples": 300, "codebook_size": 8}
    calls = []
    fit_trainer(vq.VectorQuantizer(6, 8), x, settings, device=torch.device("cpu"),
                init_progress=lambda d, t, i: calls.append((d, t)))
    assert calls and calls[-1] == (58, 58)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    calls.clear()
    rvq = vq.ResidualVQ(6, 8, 2)
    fit_trainer(rvq, x, settings, device=torch.device("cpu"),
                init_progress=lambda d, t, i: calls.append((d, t)))
    assert calls[-1] == (116, 116)
    calls.clear()
    fit_trainer(vq.SpaceFillingVQ(6, 8), x, settings, device=torch.device("cpu"),
                init_progress=lambda d, t, i: calls.append((d, t)))  # one pass: no reports
    fit_trainer(vq.VectorQuantizer(6, 8), x, {**settings, "init": "random"},
                device=torch.device("cpu"), init_progress=lambda d, t, i: calls.append((d, t)))
    assert calls == []
