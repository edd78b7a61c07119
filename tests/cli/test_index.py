"""``vqkit index build`` / ``vqkit index search`` end to end against a float64 brute force over
the decoded database, ``vqkit fit --beam``, and the user errors (exit 2, one line)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from vqkit.apps.ann.evaluate import recall_curve
from vqkit.quantizers.encoders import BeamSearch
from vqkit.training.checkpoint import load_quantizer

pytest.importorskip("faiss")


@pytest.fixture
def split(tmp_path):
    rng = np.random.default_rng(1)
    mix = rng.standard_normal((8, 8)) * np.linspace(2.0, 0.3, 8)
    x = (rng.standard_normal((1100, 8)) @ mix).astype(np.float32)
    np.save(tmp_path / "db.npy", x[:1000])
    np.save(tmp_path / "q.npy", x[1000:])
    return tmp_path, torch.from_numpy(x[:1000]), torch.from_numpy(x[1000:])


@pytest.mark.parametrize("argv", [
    ["--quantizer", "rvq", "--beam", "4"],
    ["--quantizer", "avq", "--beam", "3"],
    ["--quantizer", "pvq"],
])
def test_index_search_equals_float64_brute_force_over_the_decoded_database(vqkit, split, argv):
    folder, db, queries = split
    ckpt, index, ids, dist = (folder / n for n in ("q.ckpt", "db.faiss", "ids.npy", "d.npy"))
    # 2 x 256 codewords: 65,536 codes for 1,000 vectors, so (almost) no two share a code and
    # the ranking has no ties for FAISS and the reference to break differently.
    code, _, err = vqkit("fit", folder / "db.npy", *argv, "--num-codebooks", "2", "--bits", "8",
                         "--steps", "30", "-q", "-o", ckpt)
    assert code == 0, err
    code, out, err = vqkit("index", "build", ckpt, folder / "db.npy", "-o", index, "-q")
    assert code == 0 and "of 1000 vectors" in out, err
    code, out, err = vqkit("index", "search", index, folder / "q.npy", "-k", "10", "--out", ids,
                           "--distances", dist)
    assert code == 0 and "(100, 10) int64" in out, err
    found, found_d = torch.from_numpy(np.load(ids)), torch.from_numpy(np.load(dist))
    assert found.shape == (100, 10) and found.dtype == torch.int64

    quantizer, _ = load_quantizer(ckpt)
    quantizer.eval()
    with torch.no_grad():
        decoded = quantizer.decode(quantizer.encode(db)).double()
    d64 = torch.cdist(queries.double(), decoded).pow(2)
    reference = d64.topk(10, largest=False).indices
    truth = torch.cdist(queries.double(), db.double()).argmin(dim=1)
    # Recall@10 equal; at smaller T, fp32 near-ties may swap neighbouring ranks.
    assert recall_curve(found, truth)[-1] == recall_curve(reference, truth)[-1]
    # Each returned id is at the float64 distance FAISS reports, and no closer row was missed.
    torch.testing.assert_close(found_d.double(), d64.gather(1, found), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(found_d.double(), d64.gather(1, reference), rtol=1e-4,
                               atol=1e-3)


def test_fit_beam_reaches_the_checkpoint(vqkit, vectors, tmp_path):
    out = tmp_path / "q.ckpt"
    code, _, err = vqkit("fit", vectors, "--quantizer", "rvq", "--num-codebooks", "3",
                         "--bits", "3", "--beam", "5", "--steps", "5", "-q", "-o", out)
    assert code == 0, err
    assert load_quantizer(out)[0].encoder == BeamSearch(5)


def _error(vqkit, *argv):
    code, _, err = vqkit(*argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def test_user_errors_are_one_line_exit_2(vqkit, split, vectors, tmp_path, monkeypatch):
    folder, _, _ = split
    ckpt, index = folder / "rvq.ckpt", folder / "db.faiss"
    assert vqkit("fit", folder / "db.npy", "--quantizer", "rvq", "--num-codebooks", "2",
                 "--bits", "4", "--steps", "5", "-q", "-o", ckpt)[0] == 0
    assert vqkit("index", "build", ckpt, folder / "db.npy", "-o", index, "-q")[0] == 0
    out = folder / "ids.npy"
    assert "--beam applies to rvq and avq" in _error(
        vqkit, "fit", vectors, "--quantizer", "vq", "--beam", "2", "-q", "-o", tmp_path / "v")
    assert "dimension" in _error(vqkit, "index", "build", ckpt, vectors, "-o", tmp_path / "i")
    assert "k must be in [1, 1000]" in _error(vqkit, "index", "search", index,
                                              folder / "q.npy", "-k", "1001", "--out", out)
    assert "is not a FAISS index" in _error(vqkit, "index", "search", folder / "q.npy",
                                            folder / "q.npy", "--out", out)
    assert "dimension" in _error(vqkit, "index", "search", index, vectors, "--out", out)
    assert "no such FAISS index" in _error(vqkit, "index", "search", folder / "none.faiss",
                                           folder / "q.npy", "--out", out)
    fsq = tmp_path / "fsq.ckpt"
    assert vqkit("fit", vectors, "--quantizer", "fsq", "--levels", "5", "5", "5", "5", "5",
                 "5", "--steps", "2", "-q", "-o", fsq)[0] == 0
    assert "no FAISS equivalent" in _error(vqkit, "index", "build", fsq, vectors, "-o",
                                           tmp_path / "f")
    assert not out.exists()
    monkeypatch.setitem(sys.modules, "faiss", None)
    assert "pip install faiss-cpu" in _error(vqkit, "index", "build", ckpt, folder / "db.npy",
                                             "-o", tmp_path / "g")
